import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { SessionStore } from '@messaging-server/core';
import type { SessionRecord } from '@messaging-server/protocol';
import { uniqueName } from './unique.js';
import { waitFor } from './wait-for.js';

/** Builds a store whose keys all start with `prefix` (unique per test, so tests never see each other's records). */
export type SessionStoreFactory = (prefix: string) => SessionStore | Promise<SessionStore>;

/** Every character a contract userId may contain. */
export const USER_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~@-';

export function sessionRecord(userId: string, listeningKey: string, overrides: Partial<SessionRecord> = {}): SessionRecord {
  return {
    userId,
    listeningAddress: 'http://127.0.0.1:8081/ws',
    listeningKey,
    acked: false,
    nodeId: 'node-a',
    createdAt: new Date().toISOString(),
    ...overrides,
  };
}

/** fast-check arbitrary of contract userIds (1–128 characters of USER_ID_ALPHABET). */
export function userIdArbitrary(): fc.Arbitrary<string> {
  return fc.string({ unit: fc.constantFrom(...USER_ID_ALPHABET), minLength: 1, maxLength: 128 });
}

/**
 * The SessionStore contract (packages/core/src/session-store.ts) as a mocha suite, run against every
 * implementation. TTL assertions allow for memcached's one-second clock: a record with TTL n seconds may vanish
 * anywhere in (n-1, n+1] seconds, so the suite only checks "gone after the short TTL" and "still there while a
 * longer TTL has ≥ 1 s to run".
 */
export function describeSessionStoreContract(name: string, factory: SessionStoreFactory): void {
  describe(`SessionStore contract: ${name}`, function () {
    this.timeout(15_000);
    let store: SessionStore;

    beforeEach(async () => {
      store = await factory(`${uniqueName('ssc')}:`);
    });
    afterEach(async () => {
      await store.close();
    });

    it('get of an unknown user is undefined', async () => {
      assert.equal(await store.get('nobody'), undefined);
    });

    it('create adds a record once; a second create leaves the first in place', async () => {
      const first = sessionRecord('alice', 'k1');
      assert.equal(await store.create(first, 30), true);
      assert.equal(await store.create(sessionRecord('alice', 'k2'), 30), false);
      assert.deepEqual(await store.get('alice'), first);
    });

    it('updateIfMatches writes only over a record with the same key, never over a newer one or none', async () => {
      const first = sessionRecord('alice', 'k1');
      const ack = (): SessionRecord => ({ ...first, acked: true });
      assert.equal(await store.updateIfMatches('alice', 'k1', ack, 30), false);
      assert.equal(await store.get('alice'), undefined);
      await store.create(first, 30);
      assert.equal(await store.updateIfMatches('alice', 'k1', ack, 30), true);
      assert.equal((await store.get('alice'))?.acked, true);
      const newer = sessionRecord('alice', 'k2');
      await store.put(newer, 30);
      assert.equal(await store.updateIfMatches('alice', 'k1', ack, 30), false);
      assert.deepEqual(await store.get('alice'), newer);
    });

    it('put writes unconditionally, over an existing record or none', async () => {
      await store.put(sessionRecord('bob', 'k1'), 30);
      const acked = sessionRecord('bob', 'k2', { acked: true, nodeId: 'node-b' });
      await store.put(acked, 30);
      assert.deepEqual(await store.get('bob'), acked);
    });

    it('returned records are copies: changing one does not change the store', async () => {
      const record = sessionRecord('carol', 'k1');
      await store.put(record, 30);
      record.acked = true;
      const read = await store.get('carol');
      assert.equal(read?.acked, false);
      if (read) read.listeningKey = 'tampered';
      assert.equal((await store.get('carol'))?.listeningKey, 'k1');
    });

    it('touch is false without a record and keeps the value when there is one', async () => {
      assert.equal(await store.touch('dave', 30), false);
      assert.equal(await store.get('dave'), undefined);
      const record = sessionRecord('dave', 'k1', { acked: true });
      await store.put(record, 30);
      assert.equal(await store.touch('dave', 60), true);
      assert.deepEqual(await store.get('dave'), record);
    });

    it('deleteIfMatches deletes only the record with that listeningKey', async () => {
      assert.equal(await store.deleteIfMatches('erin', 'k1'), false);
      await store.put(sessionRecord('erin', 'k1'), 30);
      assert.equal(await store.deleteIfMatches('erin', 'other'), false);
      assert.equal((await store.get('erin'))?.listeningKey, 'k1');
      assert.equal(await store.deleteIfMatches('erin', 'k1'), true);
      assert.equal(await store.get('erin'), undefined);
      assert.equal(await store.deleteIfMatches('erin', 'k1'), false);
    });

    it('a delete for an older key never removes a newer session, even when racing its write', async () => {
      await store.put(sessionRecord('frank', 'k0'), 30);
      await store.put(sessionRecord('frank', 'k1'), 30);
      assert.equal(await store.deleteIfMatches('frank', 'k0'), false);
      assert.equal((await store.get('frank'))?.listeningKey, 'k1');
      // The late close of connection i races the /connect that replaces it; whatever the interleaving, the
      // replacement survives (a read-then-delete without CAS loses it when the write lands in between).
      for (let i = 1; i <= 20; i++) {
        const [deleted] = await Promise.all([
          store.deleteIfMatches('frank', `k${String(i)}`),
          store.put(sessionRecord('frank', `k${String(i + 1)}`), 30),
        ]);
        assert.equal(typeof deleted, 'boolean');
        assert.equal((await store.get('frank'))?.listeningKey, `k${String(i + 1)}`, `round ${String(i)}`);
      }
    });

    it('updateIfMatches rewrites only the record with that listeningKey, and only if the update returns one', async () => {
      assert.equal(await store.updateIfMatches('hank', 'k1', (r) => ({ ...r, acked: true }), 30), false);
      const record = sessionRecord('hank', 'k1');
      await store.put(record, 30);
      assert.equal(await store.updateIfMatches('hank', 'other', (r) => ({ ...r, acked: true }), 30), false);
      assert.equal((await store.get('hank'))?.acked, false);
      assert.equal(await store.updateIfMatches('hank', 'k1', () => undefined, 30), false);
      assert.equal(await store.updateIfMatches('hank', 'k1', (r) => ({ ...r, acked: true, moving: true }), 30), true);
      assert.deepEqual(await store.get('hank'), { ...record, acked: true, moving: true });
    });

    it('an update for an older key never overwrites a newer session, even when racing its write', async () => {
      await store.put(sessionRecord('ivy', 'k0'), 30);
      for (let i = 0; i < 20; i++) {
        const [updated] = await Promise.all([
          store.updateIfMatches('ivy', `k${String(i)}`, (r) => ({ ...r, moving: true }), 30),
          store.put(sessionRecord('ivy', `k${String(i + 1)}`), 30),
        ]);
        assert.equal(typeof updated, 'boolean');
        const stored = await store.get('ivy');
        assert.equal(stored?.listeningKey, `k${String(i + 1)}`, `round ${String(i)}`);
        assert.equal(stored?.moving, undefined, `round ${String(i)}: the newer session was marked`);
      }
    });

    it('of 20 racing creates for one user exactly one wins, and its record is stored', async () => {
      const attempts = Array.from({ length: 20 }, (_, i) => sessionRecord('grace', `k${String(i)}`));
      const results = await Promise.all(attempts.map((record) => store.create(record, 30)));
      const winners = results.flatMap((won, i) => (won ? [i] : []));
      assert.equal(winners.length, 1, `winners: ${winners.join(', ')}`);
      assert.equal((await store.get('grace'))?.listeningKey, `k${String(winners[0])}`);
    });

    it('honours TTLs: short un-acked records expire, longer and touched ones stay, create works again after expiry', async () => {
      await store.put(sessionRecord('short', 'k1'), 1);
      await store.create(sessionRecord('short2', 'k1'), 2);
      await store.put(sessionRecord('touched', 'k1'), 2);
      assert.equal(await store.touch('touched', 5), true);
      await store.put(sessionRecord('long', 'k1', { acked: true }), 5);

      await waitFor(async () => (await store.get('short')) === undefined && (await store.get('short2')) === undefined, {
        timeoutMs: 4000,
        what: 'the 1 s and 2 s records to expire',
      });
      assert.notEqual(await store.get('long'), undefined, 'acked record with the longer ttl');
      assert.notEqual(await store.get('touched'), undefined, 'record whose ttl touch extended');
      assert.equal(await store.touch('short', 30), false);
      assert.equal(await store.create(sessionRecord('short', 'k2'), 30), true);
      assert.equal((await store.get('short'))?.listeningKey, 'k2');
    });

    it('rejects a ttl of zero instead of storing forever', async () => {
      let error: unknown;
      await store.put(sessionRecord('zero', 'k1'), 0).catch((e: unknown) => (error = e));
      assert.ok(error instanceof RangeError, `want a RangeError, got ${String(error)}`);
      assert.equal(await store.get('zero'), undefined);
    });

    it('round-trips every allowed character, and ids differing only in case are distinct', async () => {
      const everyChar = USER_ID_ALPHABET;
      const longest = 'Z'.repeat(127) + '~';
      for (const userId of [everyChar, longest, 'a', 'A', '.', '-', '@', '~~', '_']) {
        await store.put(sessionRecord(userId, `key-of-${userId}`), 30);
      }
      for (const userId of [everyChar, longest, 'a', 'A', '.', '-', '@', '~~', '_']) {
        assert.equal((await store.get(userId))?.userId, userId);
        assert.equal((await store.get(userId))?.listeningKey, `key-of-${userId}`);
      }
    });

    it('maps distinct allowed userIds to distinct records (property)', async () => {
      await fc.assert(
        fc.asyncProperty(fc.uniqueArray(userIdArbitrary(), { minLength: 2, maxLength: 4 }), async (userIds) => {
          const tag = uniqueName('p');
          for (const userId of userIds) await store.put(sessionRecord(userId, `${tag}/${userId}`), 30);
          for (const userId of userIds) {
            const read = await store.get(userId);
            if (read?.userId !== userId || read.listeningKey !== `${tag}/${userId}`) return false;
          }
          return true;
        }),
        { numRuns: 40 },
      );
    });
  });
}
