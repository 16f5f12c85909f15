import { expect } from 'chai';
import { MemoryRoomStore, silentLogger } from '@messaging-server/core';
import { waitFor } from '@messaging-server/testkit';
import type { ServerFrame } from '@messaging-server/protocol';
import { HeldBudget } from './held-budget.js';
import type { Presence } from './room-absence.js';
import { RoomHome } from './room-home.js';
import { RoomJournal, type TrackedCopy } from './room-journal.js';

const WINDOW = 1000;

interface HomeOptions {
  nodeId?: string;
  store?: MemoryRoomStore;
  /** This node's view of the registry: whether it is the room's home, and the version of that view. */
  registry?: { isHome: boolean; version: number };
  /** Members on this node whose connections have receipts on: their copies of room messages wait for receipts. */
  tracked?: Set<string>;
  /** Nodes that are gone: a fan-out to them fails. */
  dead?: Set<string>;
}

function home(
  presence: Map<string, Presence>,
  options: HomeOptions = {},
): { home: RoomHome; sent: Array<{ nodeId: string; to: string[]; frame: ServerFrame }>; gone: Set<string>; budget: HeldBudget; confirm: () => void; journal: RoomJournal } {
  const sent: Array<{ nodeId: string; to: string[]; frame: ServerFrame }> = [];
  const unconfirmed: Array<() => void> = [];
  const gone = new Set<string>();
  const budget = new HeldBudget({ totalBytes: 1 << 20, perSenderBytes: 1 << 20, perRecipientBytes: 1 << 20 });
  const registry = options.registry ?? { isHome: true, version: 0 };
  const nodeId = options.nodeId ?? 'n1';
  const store = options.store ?? new MemoryRoomStore();
  const journal = new RoomJournal({ store, nodeId, incarnation: `${nodeId}-incarnation`, ttlSeconds: 60, log: silentLogger });
  const h = new RoomHome({
    nodeId,
    store,
    journal,
    maxMembers: 10,
    ttlSeconds: 60,
    windowMs: WINDOW,
    perMemberMax: 100,
    budget,
    presence: (userId) => Promise.resolve(presence.get(userId) ?? { kind: 'gone' }),
    nodeAlive: () => true,
    isHome: () => registry.isHome,
    registryVersion: () => registry.version,
    log: silentLogger,
    fanOut: (to_node, _room, to, frame, copies?: TrackedCopy[]) => {
      if (options.dead?.has(to_node)) return Promise.reject(new Error(`${to_node} is gone`));
      sent.push({ nodeId: to_node, to, frame });
      const written = to.filter((u) => !gone.has(u));
      for (const userId of written) {
        if (to_node === nodeId && copies && options.tracked?.has(userId)) copies.push({ userId, safe: new Promise((resolve) => unconfirmed.push(resolve)) });
      }
      return Promise.resolve(to.filter((u) => gone.has(u)));
    },
  });
  const confirm = (): void => unconfirmed.splice(0).forEach((resolve) => resolve());
  return { home: h, sent, gone, budget, confirm, journal };
}

const contents = (sent: Array<{ to: string[]; frame: ServerFrame }>, to: string): unknown[] =>
  sent.filter((s) => s.to.includes(to)).map((s) => (s.frame.type === 'message' ? s.frame.content : `${s.frame.type}`));

describe('RoomHome: members outlive moves', () => {
  it('holds for an away member, sends what it held on its resume (to its new node) before answering, and no left', async () => {
    const { home: h, sent, budget } = home(new Map());
    await h.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n1' });
    await h.handle({ op: 'join', room: 'R', userId: 'bob', nodeId: 'n1' });
    const unconfirmed: ServerFrame = { type: 'message', from: 'alice', room: 'R', content: 0, id: 'a0' };
    await h.handle({ op: 'away', room: 'R', userId: 'bob', nodeId: 'n1', frames: [unconfirmed] });
    sent.length = 0;
    await h.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 1, id: 'a1' });
    expect(contents(sent, 'bob'), 'held, not sent').to.deep.equal([]);
    expect(budget.total).to.be.greaterThan(0);
    const answer = await h.handle({ op: 'resume', room: 'R', userId: 'bob', nodeId: 'n2' });
    expect(answer).to.deep.equal({ status: 'joined', members: ['alice', 'bob'] });
    expect(sent.filter((s) => s.to.includes('bob')).map((s) => s.nodeId)).to.deep.equal(['n2', 'n2']);
    expect(contents(sent, 'bob')).to.deep.equal([0, 1]);
    expect(budget.total, 'the held bytes were released').to.equal(0);
    expect(sent.some((s) => s.frame.type === 'member'), 'no left').to.equal(false);
  });

  it('a frame a node finds no connection for is held too; the sweep removes a member gone past the window, not before', async () => {
    const presence = new Map<string, Presence>([['alice', { kind: 'here', nodeId: 'n1' }]]);
    const { home: h, sent, gone } = home(presence);
    await h.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n1' });
    await h.handle({ op: 'join', room: 'R', userId: 'bob', nodeId: 'n1' });
    gone.add('bob');
    await h.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 1 });
    await h.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 2 });
    expect(contents(sent, 'bob'), 'the second is held at once').to.deep.equal([1]);
    sent.length = 0;
    await h.sweep(Date.now() + WINDOW / 2);
    expect(sent, 'nothing within the window').to.deep.equal([]);
    await h.sweep(Date.now() + WINDOW);
    expect(sent.map((s) => [s.to, s.frame])).to.deep.equal([[['alice'], { type: 'member', room: 'R', userId: 'bob', event: 'left' }]]);
    expect(await h.handle({ op: 'resume', room: 'R', userId: 'bob', nodeId: 'n2' })).to.deep.equal({ status: 'error', code: 'NOT_A_MEMBER' });
    await h.handle({ op: 'leave', room: 'R', userId: 'alice', nodeId: 'n1' });
    await h.sweep();
    expect(h.roomNames, 'an empty room is not kept').to.deep.equal([]);
  });
});

/** The counters `make scale` reads (msg_room_messages_homed_total, msg_room_fanout_copies_total). */
describe('RoomHome counts', () => {
  it('counts a message local when its sender and every other member are on the home node, crossed otherwise', async () => {
    const { home: h, sent } = home(new Map());
    await h.handle({ op: 'join', room: 'r', userId: 'alice', nodeId: 'n1' });
    await h.handle({ op: 'join', room: 'r', userId: 'bob', nodeId: 'n1' });
    await h.handle({ op: 'message', room: 'r', userId: 'alice', nodeId: 'n1', content: 1 });
    expect(h.counts).to.include({ messagesLocal: 1, messagesCrossed: 0 });
    // A sender on another node: the op itself crossed, though the copy to dave stays on the home node.
    await h.handle({ op: 'join', room: 'r2', userId: 'carol', nodeId: 'n2' });
    await h.handle({ op: 'join', room: 'r2', userId: 'dave', nodeId: 'n1' });
    await h.handle({ op: 'message', room: 'r2', userId: 'carol', nodeId: 'n2', content: 2 });
    // A sender on the home node with a member elsewhere: its copy crossed.
    await h.handle({ op: 'message', room: 'r2', userId: 'dave', nodeId: 'n1', content: 3 });
    expect(h.counts).to.include({ messagesLocal: 1, messagesCrossed: 2 });
    // Copies: one per node per frame, member events included (bob's join to alice, alice's message, dave's join to carol, then carol's and dave's messages).
    expect(sent.map((s) => s.nodeId)).to.deep.equal(['n1', 'n1', 'n2', 'n1', 'n2']);
    expect(h.counts).to.include({ copiesLocal: 3, copiesRemote: 2 });
  });
});

describe('RoomHome refresh', () => {
  it('writes a room record that is gone (memcached restarted empty) again from what the home holds', async () => {
    const store = new MemoryRoomStore();
    const { home: h } = home(new Map(), { store });
    await h.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n1' });
    await h.handle({ op: 'join', room: 'R', userId: 'bob', nodeId: 'n1' });
    await store.update('R', () => null, 60); // as an empty memcached after a restart
    expect(await store.get('R')).to.equal(undefined);
    await h.refresh();
    expect((await store.get('R'))?.members.map((m) => m.userId)).to.deep.equal(['alice', 'bob']);
  });
});

/** Found by `make chaos` with rooms: what a home held lived in its memory only, and went with the home. */
describe('RoomHome handover: what is held lives in the room record', () => {
  async function awayBobWithTwoHeld(store: MemoryRoomStore): Promise<ReturnType<typeof home>> {
    const first = home(new Map(), { nodeId: 'n1', store });
    await first.home.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n1' });
    await first.home.handle({ op: 'join', room: 'R', userId: 'bob', nodeId: 'n1' });
    const unconfirmed: ServerFrame = { type: 'message', from: 'alice', room: 'R', content: 0, id: 'a0' };
    await first.home.handle({ op: 'away', room: 'R', userId: 'bob', nodeId: 'n1', frames: [unconfirmed] });
    await first.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 1, id: 'a1' });
    return first;
  }

  it('a new home (the old one crashed, drained, or lost the room to a joining node) delivers what the old one held', async () => {
    const store = new MemoryRoomStore();
    await awayBobWithTwoHeld(store);
    expect(Object.keys((await store.get('R'))?.held ?? {})).to.deep.equal(['bob']);
    const next = home(new Map(), { nodeId: 'n2', store });
    await next.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 2, id: 'a2' });
    expect(contents(next.sent, 'bob'), 'bob is still away: held behind the others').to.deep.equal([]);
    expect(await next.home.handle({ op: 'resume', room: 'R', userId: 'bob', nodeId: 'n3' })).to.deep.equal({ status: 'joined', members: ['alice', 'bob'] });
    expect(contents(next.sent, 'bob')).to.deep.equal([0, 1, 2]);
    expect(next.sent.filter((s) => s.to.includes('bob')).map((s) => s.nodeId)).to.deep.equal(['n3', 'n3', 'n3']);
    expect((await store.get('R'))?.held, 'taken from the record').to.equal(undefined);
    expect(next.budget.total).to.equal(0);
  });

  it('an old home steps down on refresh, and reads the record again when the registry changed before it is home again', async () => {
    const store = new MemoryRoomStore();
    const registry = { isHome: true, version: 0 };
    const old = home(new Map(), { nodeId: 'n1', store, registry });
    await old.home.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n1' });
    registry.isHome = false;
    await old.home.refresh();
    expect(old.home.roomNames, 'forgotten once another node is home').to.deep.equal([]);
    // Meanwhile the other home changed the room; then the registry changes back.
    const other = home(new Map(), { nodeId: 'n2', store });
    await other.home.handle({ op: 'join', room: 'R', userId: 'carol', nodeId: 'n2' });
    registry.isHome = true;
    registry.version += 1;
    expect(await old.home.handle({ op: 'join', room: 'R', userId: 'dave', nodeId: 'n1' })).to.deep.equal({ status: 'joined', members: ['alice', 'carol', 'dave'] });
  });

  it('a home that does not know a sender reads the record again: another home took its join meanwhile (no NOT_A_MEMBER)', async () => {
    const store = new MemoryRoomStore();
    const mine = home(new Map(), { nodeId: 'n2', store });
    await mine.home.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n2' });
    // A node whose registry view lags still takes bob's join as the room's home.
    const lagging = home(new Map(), { nodeId: 'n1', store });
    await lagging.home.handle({ op: 'join', room: 'R', userId: 'bob', nodeId: 'n1' });
    expect(await mine.home.handle({ op: 'message', room: 'R', userId: 'bob', nodeId: 'n1', content: 1, id: 'b1' })).to.deep.equal({ status: 'ack' });
    expect(contents(mine.sent, 'alice')).to.include(1);
    expect(await mine.home.handle({ op: 'message', room: 'R', userId: 'carol', nodeId: 'n1', content: 2 })).to.deep.equal({ status: 'error', code: 'NOT_A_MEMBER' });
  });

  it('a home that kept the room reads the record again after a registry change, and adopts another home\'s holds', async () => {
    const store = new MemoryRoomStore();
    const registry = { isHome: true, version: 0 };
    const old = home(new Map(), { nodeId: 'n1', store, registry });
    await old.home.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n1' });
    await old.home.handle({ op: 'join', room: 'R', userId: 'bob', nodeId: 'n1' });
    // Another node was home for a while (this one never refreshed in between): bob went away and was held for.
    const other = home(new Map(), { nodeId: 'n2', store });
    await other.home.handle({ op: 'away', room: 'R', userId: 'bob', nodeId: 'n1', frames: [] });
    await other.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 7, id: 'a7' });
    registry.version += 1;
    await old.home.handle({ op: 'resume', room: 'R', userId: 'bob', nodeId: 'n3' });
    expect(contents(old.sent, 'bob').filter((c) => c === 7)).to.deep.equal([7]);
  });
});

/** Found by rooms-failover (SIGKILL of the room's node): copies written to members' connections there and not yet confirmed died with it. */
describe('RoomHome handover: unconfirmed copies live in the journal', () => {
  async function roomOfThreeOnN1(store: MemoryRoomStore): Promise<ReturnType<typeof home>> {
    const first = home(new Map(), { nodeId: 'n1', store, tracked: new Set(['bob', 'carol']) });
    for (const userId of ['alice', 'bob', 'carol']) await first.home.handle({ op: 'join', room: 'R', userId, nodeId: 'n1' });
    return first;
  }

  it('a room message is answered once journaled; the next home sends the unconfirmed copies again, to each member\'s node', async () => {
    const store = new MemoryRoomStore();
    const first = await roomOfThreeOnN1(store);
    expect(await first.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 1, id: 'a1' })).to.deep.equal({ status: 'ack' });
    expect((await store.readJournal('R', 'n1')).length, 'journaled before the ack').to.equal(1);
    // n1 is gone (SIGKILL): nothing confirmed. The members come back on n2 and n3.
    const next = home(new Map(), { nodeId: 'n2', store, dead: new Set(['n1']) });
    await next.home.handle({ op: 'resume', room: 'R', userId: 'bob', nodeId: 'n2' });
    await next.home.handle({ op: 'resume', room: 'R', userId: 'carol', nodeId: 'n3' });
    expect(next.sent.filter((s) => s.frame.type === 'message').map((s) => [s.nodeId, s.to])).to.deep.equal([
      ['n2', ['bob']],
      ['n3', ['carol']],
    ]);
    expect(contents(next.sent, 'alice'), 'not to its sender').to.deep.equal([]);
    expect(await store.readJournal('R', 'n1'), 'the old home\'s journal is cleared once taken over').to.deep.equal([]);
    expect((await store.get('R'))?.home, 'the record names the new home, whose journal the next one reads').to.equal('n2');
  });

  it('a copy the old home could not reach its member with is held, ahead of what is held since, until the resume', async () => {
    const store = new MemoryRoomStore();
    const first = await roomOfThreeOnN1(store);
    await first.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 1, id: 'a1' });
    const next = home(new Map(), { nodeId: 'n2', store });
    next.gone.add('carol');
    await next.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n2', content: 2, id: 'a2' });
    await next.home.handle({ op: 'resume', room: 'R', userId: 'carol', nodeId: 'n3' });
    expect(contents(next.sent.filter((s) => s.nodeId === 'n3'), 'carol')).to.deep.equal([1, 2]);
  });

  it('confirmed copies leave the journal at the next rewrite; the next home then sends nothing again', async () => {
    const store = new MemoryRoomStore();
    const first = await roomOfThreeOnN1(store);
    await first.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 1, id: 'a1' });
    await first.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 2, id: 'a2' });
    first.confirm();
    await new Promise((resolve) => setImmediate(resolve));
    first.journal.compact();
    await waitFor(async () => (await store.readJournal('R', 'n1')).length === 0, { what: 'journal rewritten', timeoutMs: 2000 });
    expect(first.journal.size, 'nothing kept in memory either').to.equal(0);
    const next = home(new Map(), { nodeId: 'n2', store });
    await next.home.handle({ op: 'resume', room: 'R', userId: 'bob', nodeId: 'n2' });
    expect(next.sent.filter((s) => s.frame.type === 'message')).to.deep.equal([]);
  });

  it('a member that resumes away from its node gets first what that node\'s journal kept for it, once', async () => {
    const store = new MemoryRoomStore();
    const { home: h, sent } = home(new Map(), { nodeId: 'n1', store });
    await h.handle({ op: 'join', room: 'R', userId: 'alice', nodeId: 'n1' });
    await h.handle({ op: 'join', room: 'R', userId: 'bob', nodeId: 'n2' });
    const kept: ServerFrame = { type: 'message', from: 'alice', room: 'R', content: 1, id: 'a1' };
    // n2 wrote the copy to bob and journaled it (RoomMembers.deliverRemote), then died unconfirmed.
    await store.appendJournal('R', 'n2', JSON.stringify({ incarnation: 'n2-old', seq: 0, to: ['bob'], frame: kept }), 60);
    await store.appendJournal('R', 'n2', JSON.stringify({ incarnation: 'n2-old', seq: 0, to: ['carol'], frame: { ...kept, id: 'other' } }), 60);
    sent.length = 0;
    await h.handle({ op: 'resume', room: 'R', userId: 'bob', nodeId: 'n3' });
    expect(sent.map((s) => [s.nodeId, s.to, s.frame])).to.deep.equal([['n3', ['bob'], kept]]);
  });

  it('a copy to a member without receipts (v1.1) or a message without an id is not journaled', async () => {
    const store = new MemoryRoomStore();
    const first = home(new Map(), { nodeId: 'n1', store, tracked: new Set(['bob']) });
    for (const userId of ['alice', 'carol']) await first.home.handle({ op: 'join', room: 'R', userId, nodeId: 'n1' });
    await first.home.handle({ op: 'message', room: 'R', userId: 'alice', nodeId: 'n1', content: 1, id: 'a1' });
    expect(await store.readJournal('R', 'n1')).to.deep.equal([]);
  });
});
