import { describeRoomStoreContract } from '@messaging-server/testkit';
import { MemoryRoomStore } from './memory-room-store.js';

// One store per prefix, so the suite's "two homes" share their records as two memcached clients do.
const stores = new Map<string, MemoryRoomStore>();
describeRoomStoreContract('memory', (prefix) => {
  const store = stores.get(prefix) ?? new MemoryRoomStore();
  stores.set(prefix, store);
  return store;
});
