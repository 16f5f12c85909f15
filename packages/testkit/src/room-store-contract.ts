import assert from 'node:assert/strict';
import { readRoomMembers, type RoomRecord, type RoomStore } from '@messaging-server/core';
import { uniqueName } from './unique.js';
import { waitFor } from './wait-for.js';

/** Builds a store whose keys all start with `prefix`; two calls with one prefix share the records (two homes). */
export type RoomStoreFactory = (prefix: string) => RoomStore | Promise<RoomStore>;

export function roomRecord(room: string, members: string[], seq = 0, home = 'node-a'): RoomRecord {
  const now = new Date().toISOString();
  return { room, members: members.map((userId) => ({ userId, joinedAt: now })), seq, home, updatedAt: now };
}

/** Appends `userId` to the room's members (creating the record), advancing seq: what a home's join does. */
function join(room: string, userId: string, home: string) {
  return (current: RoomRecord | undefined): RoomRecord => {
    const base = current ?? roomRecord(room, [], 0, home);
    return { ...base, members: [...base.members, { userId, joinedAt: base.updatedAt }], seq: base.seq + 1, home };
  };
}

/** The RoomStore contract (packages/core/src/room-store.ts) as a mocha suite, run against every implementation. */
export function describeRoomStoreContract(name: string, factory: RoomStoreFactory): void {
  describe(`RoomStore contract: ${name}`, function () {
    this.timeout(15_000);
    let prefix: string;
    let store: RoomStore;

    beforeEach(async () => {
      prefix = `${uniqueName('rsc')}:`;
      store = await factory(prefix);
    });
    afterEach(async () => {
      await store.close();
    });

    it('get of an unknown room is undefined, and it has no members', async () => {
      assert.equal(await store.get('nowhere'), undefined);
      assert.deepEqual(await readRoomMembers(store, 'nowhere'), []);
    });

    it('update creates, changes and (with null) deletes the record, resolving with what is stored', async () => {
      const created = await store.update('R', () => roomRecord('R', ['alice']), 30);
      assert.deepEqual(created?.members.map((m) => m.userId), ['alice']);
      const joined = await store.update('R', (current) => current && { ...current, members: [...current.members, { userId: 'bob', joinedAt: current.updatedAt }], seq: 2 }, 30);
      assert.equal(joined?.seq, 2);
      assert.deepEqual(await readRoomMembers(store, 'R'), ['alice', 'bob']);
      assert.equal(await store.update('R', () => null, 30), undefined);
      assert.equal(await store.get('R'), undefined);
      assert.equal(await store.update('R', () => null, 30), undefined, 'deleting no record is a no-op');
    });

    it('an update that declines (undefined) leaves the record and resolves with it', async () => {
      await store.update('R', () => roomRecord('R', ['alice'], 5), 30);
      const kept = await store.update('R', () => undefined, 30);
      assert.equal(kept?.seq, 5);
      assert.deepEqual(await store.get('R'), kept);
    });

    it('rooms are independent, and the update sees the record of its own room only', async () => {
      await store.update('R1', () => roomRecord('R1', ['alice']), 30);
      const seen: Array<RoomRecord | undefined> = [];
      await store.update('R2', (current) => {
        seen.push(current);
        return roomRecord('R2', ['bob']);
      }, 30);
      assert.deepEqual(seen, [undefined]);
      assert.deepEqual(await readRoomMembers(store, 'R1'), ['alice']);
      assert.deepEqual(await readRoomMembers(store, 'R2'), ['bob']);
    });

    it('two stores racing on one room (two homes in a handover) lose none of each other\'s changes', async () => {
      const other = await factory(prefix);
      try {
        const run = async (s: RoomStore, home: string, users: string[]): Promise<void> => {
          for (const user of users) await s.update('R', join('R', user, home), 30);
        };
        await Promise.all([run(store, 'a', ['a1', 'a2', 'a3', 'a4', 'a5']), run(other, 'b', ['b1', 'b2', 'b3', 'b4', 'b5'])]);
        const record = await store.get('R');
        assert.equal(record?.seq, 10);
        const members = record?.members.map((m) => m.userId) ?? [];
        assert.deepEqual([...members].sort(), ['a1', 'a2', 'a3', 'a4', 'a5', 'b1', 'b2', 'b3', 'b4', 'b5']);
        assert.deepEqual(members.filter((m) => m.startsWith('a')), ['a1', 'a2', 'a3', 'a4', 'a5'], 'each writer\'s order kept');
      } finally {
        await other.close();
      }
    });

    it('a record expires after its TTL unless touched; touch of no record is false', async () => {
      await store.update('short', () => roomRecord('short', ['alice']), 1);
      await store.update('kept', () => roomRecord('kept', ['bob']), 1);
      assert.equal(await store.touch('kept', 30), true);
      assert.equal(await store.touch('none', 30), false);
      await waitFor(async () => (await store.get('short')) === undefined, { timeoutMs: 5000 });
      assert.deepEqual(await readRoomMembers(store, 'kept'), ['bob']);
    });

    it('a journal keeps its lines in order per writer, apart from the record and from other writers and rooms', async () => {
      assert.deepEqual(await store.readJournal('R', 'node-a'), []);
      await store.update('R', () => roomRecord('R', ['alice']), 30);
      for (const line of ['one', 'two', '{"three":3}']) await store.appendJournal('R', 'node-a', line, 30);
      await store.appendJournal('R', 'node-b', 'other writer', 30);
      await store.appendJournal('R2', 'node-a', 'other room', 30);
      assert.deepEqual(await store.readJournal('R', 'node-a'), ['one', 'two', '{"three":3}']);
      assert.deepEqual(await store.readJournal('R', 'node-b'), ['other writer']);
      assert.deepEqual(await store.readJournal('R2', 'node-a'), ['other room']);
      assert.deepEqual(await readRoomMembers(store, 'R'), ['alice'], 'the record is untouched');
    });

    it('two writers appending to one journal at once lose no line (the first ADD races)', async () => {
      const other = await factory(prefix);
      try {
        const lines = (who: string): string[] => Array.from({ length: 10 }, (_, i) => `${who}${String(i)}`);
        await Promise.all([
          Promise.all(lines('a').map((line) => store.appendJournal('R', 'node-a', line, 30))),
          Promise.all(lines('b').map((line) => other.appendJournal('R', 'node-a', line, 30))),
        ]);
        assert.deepEqual((await store.readJournal('R', 'node-a')).sort(), [...lines('a'), ...lines('b')].sort());
      } finally {
        await other.close();
      }
    });

    it('resetJournal replaces the lines, and with none deletes the journal; a journal expires after its TTL', async () => {
      for (const line of ['1', '2', '3']) await store.appendJournal('R', 'w', line, 30);
      await store.resetJournal('R', 'w', ['3'], 30);
      assert.deepEqual(await store.readJournal('R', 'w'), ['3']);
      await store.appendJournal('R', 'w', '4', 30);
      assert.deepEqual(await store.readJournal('R', 'w'), ['3', '4']);
      await store.resetJournal('R', 'w', [], 30);
      assert.deepEqual(await store.readJournal('R', 'w'), []);
      await store.appendJournal('short', 'w', 'gone soon', 1);
      await waitFor(async () => (await store.readJournal('short', 'w')).length === 0, { timeoutMs: 5000 });
    });

    it('room names with every allowed character are distinct records', async () => {
      const names = ['a.b', 'a_b', 'a~b', 'a@b', 'a-b', 'A-B'];
      for (const room of names) await store.update(room, () => roomRecord(room, [room]), 30);
      for (const room of names) assert.deepEqual(await readRoomMembers(store, room), [room]);
    });
  });
}
