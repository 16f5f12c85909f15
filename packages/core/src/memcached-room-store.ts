import { BackendError } from './errors.js';
import type { Logger } from './logger.js';
import {
  expiration,
  storeParts,
  type MemcachedConnection,
  type MemcachedStoreOptions,
  OP_ADD,
  OP_APPEND,
  OP_DELETE,
  OP_GET,
  OP_SET,
  OP_TOUCH,
  STATUS_NOT_FOUND,
  STATUS_OK,
  storageExtras,
  type MemjsResponse,
} from './memcached-connection.js';
import { decodeRoomRecord, journalLines, journalText, roomJournalKey, roomKey, type RoomRecord, type RoomStore, type RoomUpdate } from './room-store.js';

export type MemcachedRoomStoreOptions = MemcachedStoreOptions;

// Two homes of one room race only during a handover; a few re-reads settle it.
const MAX_CAS_ATTEMPTS = 8;

/**
 * RoomStore on memcached. An update reads the record with its CAS value and writes under it: ADD when there was no
 * record (so two creators cannot both win), SET or DELETE with the CAS otherwise. A conflict re-reads and re-applies.
 */
export class MemcachedRoomStore implements RoomStore {
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly connection: MemcachedConnection;

  constructor(options: MemcachedRoomStoreOptions) {
    ({ prefix: this.prefix, logger: this.logger, connection: this.connection } = storeParts(options, 'memcached-room-store'));
  }

  async get(room: string): Promise<RoomRecord | undefined> {
    const key = roomKey(this.prefix, room);
    return this.connection.operation('room get', async (call) => this.decode(room, await call(OP_GET, key)));
  }

  async update(room: string, update: RoomUpdate, ttlSeconds: number): Promise<RoomRecord | undefined> {
    const key = roomKey(this.prefix, room);
    const extras = storageExtras(ttlSeconds);
    return this.connection.operation('room update', async (call) => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const read = await call(OP_GET, key);
        const current = this.decode(room, read);
        const cas = read.header.status === STATUS_OK ? read.header.cas : undefined;
        const next = update(current);
        if (next === undefined) return current;
        let written: MemjsResponse;
        if (next === null) {
          if (cas === undefined) return undefined;
          written = await call(OP_DELETE, key, undefined, undefined, cas);
          if (written.header.status === STATUS_OK || written.header.status === STATUS_NOT_FOUND) return undefined;
          continue;
        }
        const json = JSON.stringify(next);
        written = cas === undefined ? await call(OP_ADD, key, extras, json) : await call(OP_SET, key, extras, json, cas);
        if (written.header.status === STATUS_OK) return decodeRoomRecord(room, json);
        // EXISTS (changed since the read, or created meanwhile) or NOT_FOUND (deleted meanwhile): read again.
      }
      this.logger.warn({ room }, 'room compare-and-set gave up after repeated conflicts');
      throw new BackendError('SESSION_STORE_UNAVAILABLE', `room update gave up after ${String(MAX_CAS_ATTEMPTS)} compare-and-set conflicts`);
    });
  }

  async touch(room: string, ttlSeconds: number): Promise<boolean> {
    const key = roomKey(this.prefix, room);
    const extras = expiration(ttlSeconds);
    return this.connection.operation('room touch', async (call) => (await call(OP_TOUCH, key, extras)).header.status === STATUS_OK);
  }

  /** APPEND needs the key to exist: the first line ADDs it; a writer that lost that race appends after all. */
  async appendJournal(room: string, writer: string, line: string, ttlSeconds: number): Promise<void> {
    const key = roomJournalKey(this.prefix, room, writer);
    const text = journalText([line]);
    return this.connection.operation('room journal append', async (call) => {
      if ((await call(OP_APPEND, key, undefined, text)).header.status === STATUS_OK) return;
      if ((await call(OP_ADD, key, storageExtras(ttlSeconds), text)).header.status === STATUS_OK) return;
      const again = await call(OP_APPEND, key, undefined, text);
      if (again.header.status !== STATUS_OK) throw new BackendError('SESSION_STORE_UNAVAILABLE', 'room journal append was not stored');
    });
  }

  async readJournal(room: string, writer: string): Promise<string[]> {
    const key = roomJournalKey(this.prefix, room, writer);
    return this.connection.operation('room journal read', async (call) => {
      const read = await call(OP_GET, key);
      return read.header.status === STATUS_OK ? journalLines(read.val.toString('utf8')) : [];
    });
  }

  async resetJournal(room: string, writer: string, lines: string[], ttlSeconds: number): Promise<void> {
    const key = roomJournalKey(this.prefix, room, writer);
    return this.connection.operation('room journal reset', async (call) => {
      if (lines.length === 0) await call(OP_DELETE, key);
      else await call(OP_SET, key, storageExtras(ttlSeconds), journalText(lines));
    });
  }

  async close(): Promise<void> {
    this.connection.close();
  }

  private decode(room: string, response: MemjsResponse): RoomRecord | undefined {
    if (response.header.status !== STATUS_OK) return undefined;
    const record = decodeRoomRecord(room, response.val.toString('utf8'));
    if (!record) this.logger.error({ room }, 'unreadable room record in memcached');
    return record;
  }
}
