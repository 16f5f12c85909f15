// Issue 23, "Membership outlives moves" and acceptance 4; issue 24, "Room messages too": a member whose connection
// ends without its clean close stays a member for the resume window; what the room sends it meanwhile, and what its
// connection left unconfirmed (receipts on), comes after its next welcome, on any node, in the room's order; the
// others see `left` only once the window has passed without it. Real 2-node cluster, raw SockJS and websocket users.
import { expect } from 'chai';
import WebSocket from 'ws';
import type { ServerFrame } from '@messaging-server/protocol';
import { requestSession, startCluster, TestSocket, waitFor, type LocalCluster } from '@messaging-server/testkit';
import { RawUser } from './support/raw-user.js';

const WINDOW_MS = 2000;
let counter = 0;
const unique = (label: string): string => `${label}-${String(process.pid)}-${String((counter += 1))}`;

/** A raw websocket user (RawUser), so the test can drop its TCP connection with no close frame (a network loss). */
class Wire extends RawUser {
  async answer(frame: Record<string, unknown>): Promise<ServerFrame> {
    const id = unique('f');
    this.send({ ...frame, id });
    await waitFor(() => this.frames.some((f) => 'id' in f && f.id === id && f.type !== 'message'), { what: `answer ${id}` });
    return this.frames.find((f) => 'id' in f && f.id === id && f.type !== 'message') as ServerFrame;
  }

  /** Room messages (content) of `room`, in arrival order, and whether each came after the `index`th welcome. */
  roomContents(room: string, afterWelcome = 0): unknown[] {
    const welcomes = this.frames.map((f, i) => (f.type === 'welcome' ? i : -1)).filter((i) => i >= 0);
    const from = welcomes[afterWelcome] ?? 0;
    return this.frames.slice(from).filter((f) => f.type === 'message' && 'room' in f && f.room === room).map((f) => (f as { content: unknown }).content);
  }

  memberEvents(room: string): string[] {
    return this.frames.filter((f) => f.type === 'member' && f.room === room).map((f) => `${(f as { userId: string }).userId}:${(f as { event: string }).event}`);
  }

  /** A network loss: the TCP connection goes without a close frame. */
  drop(): void {
    this.ws.terminate();
  }

  close(): void {
    this.ws.close();
  }
}

describe('rooms: members outlive moves (contract v1.2)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  const wires: Wire[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 2, env: { MSG_RESUME_WINDOW_MS: String(WINDOW_MS), MSG_LOG_LEVEL: 'warn' } });
  });
  afterEach(() => {
    for (const wire of wires.splice(0)) wire.close();
  });
  after(async () => {
    await cluster?.stop();
  });

  const gateway = (): string => String(cluster.gateways[0]?.url);

  async function user(label: string, options: { userId?: string; receipts?: boolean; room?: string; avoid?: string[] } = {}): Promise<Wire> {
    const userId = options.userId ?? unique(label);
    const session = await requestSession(gateway(), userId, { ...(options.room ? { room: options.room } : {}), ...(options.avoid ? { avoid: options.avoid } : {}) });
    const wire = new Wire(session, options.receipts ?? false);
    wires.push(wire);
    return wire.welcomed();
  }

  async function room3(label: string, bobReceipts = false): Promise<{ room: string; alice: Wire; bob: Wire; carol: Wire }> {
    const room = unique(label);
    const alice = await user('alice', { room });
    const bob = await user('bob', { room, receipts: bobReceipts });
    const carol = await user('carol', { room });
    for (const m of [alice, bob, carol]) expect(await m.answer({ type: 'join', room })).to.include({ type: 'joined' });
    await waitFor(() => alice.memberEvents(room).length === 2, { what: 'alice sees bob and carol join' });
    return { room, alice, bob, carol };
  }

  it('receipts on: room messages carry a seq; what a replaced (4503) connection left unconfirmed, and what was sent meanwhile, comes after its next welcome, in order', async () => {
    const { room, alice, bob, carol } = await room3('rcpt', true);
    for (const n of [1, 2]) expect(await alice.answer({ type: 'message', room, content: n })).to.include({ type: 'ack' });
    await waitFor(() => bob.roomContents(room).length === 2, { what: 'bob gets 1 and 2' });
    const seqs = bob.frames.filter((f) => f.type === 'message').map((f) => (f as { seq?: number }).seq);
    expect(seqs, 'room messages carry the connection seq').to.deep.equal([1, 2]);
    // Bob never confirms. A newer /connect replaces the connection: a move, not a leave.
    const again = await requestSession(gateway(), bob.userId);
    await waitFor(() => bob.ws.readyState === WebSocket.CLOSED, { what: 'the old connection closed (4503)' });
    expect(await carol.answer({ type: 'message', room, content: 3 })).to.include({ type: 'ack' });
    const moved = new Wire(again, true);
    wires.push(moved);
    await moved.welcomed();
    await waitFor(() => moved.roomContents(room).length >= 3, { what: 'bob gets 1, 2 and 3 after its welcome' });
    expect(moved.roomContents(room), 'unconfirmed first, then what was held, in order').to.deep.equal([1, 2, 3]);
    const resync = await waitFor(() => moved.frames.find((f) => f.type === 'joined' && f.room === room), { what: 'the resync' });
    expect(resync).to.not.have.property('id');
    for (const other of [alice, carol]) expect(other.memberEvents(room).filter((e) => e.endsWith(':left')), 'nobody left').to.deep.equal([]);
  });

  it('a member whose connection drops comes back on the other node: what the room sent meanwhile comes after its welcome; nobody sees left', async () => {
    const { room, alice, bob, carol } = await room3('drop');
    expect(await alice.answer({ type: 'message', room, content: 'before' })).to.include({ type: 'ack' });
    await waitFor(() => bob.roomContents(room).length === 1, { what: 'bob gets the first' });
    bob.drop();
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const n of [1, 2, 3]) expect(await (n === 2 ? carol : alice).answer({ type: 'message', room, content: n })).to.include({ type: 'ack' });
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS / 4));
    const back = await user('bob', { userId: bob.userId, avoid: [bob.session.nodeId] });
    expect(back.session.nodeId, 'bob lands on the other node').to.not.equal(bob.session.nodeId);
    await waitFor(() => back.roomContents(room).length >= 3, { what: 'what was held, after the welcome' });
    expect(back.roomContents(room)).to.deep.equal([1, 2, 3]);
    expect(await back.answer({ type: 'message', room, content: 'from the new node' })).to.include({ type: 'ack' });
    await waitFor(() => alice.roomContents(room).includes('from the new node'), { what: 'bob still sends to the room' });
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS + 1000));
    for (const other of [alice, carol]) expect(other.memberEvents(room).filter((e) => e.endsWith(':left')), 'nobody left').to.deep.equal([]);
    expect(back.frames.filter((f) => f.type === 'member' && (f as { userId: string }).userId === bob.userId), 'bob was never removed').to.deep.equal([]);
  });

  it('a member who never comes back is reported left once the window has passed, not before', async () => {
    const { room, alice, bob, carol } = await room3('gone');
    const droppedAt = Date.now();
    bob.drop();
    expect(await alice.answer({ type: 'message', room, content: 'while away' })).to.include({ type: 'ack' });
    await new Promise((resolve) => setTimeout(resolve, WINDOW_MS * 0.75));
    expect(alice.memberEvents(room), 'no left within the window').to.not.include(`${bob.userId}:left`);
    await waitFor(() => alice.memberEvents(room).includes(`${bob.userId}:left`) && carol.memberEvents(room).includes(`${bob.userId}:left`), {
      what: 'left for bob at both',
      timeoutMs: WINDOW_MS * 4,
    });
    const after = Date.now() - droppedAt;
    expect(after, 'left only after the window').to.be.at.least(WINDOW_MS);
    const members = await alice.answer({ type: 'join', room });
    expect((members as { members: string[] }).members).to.deep.equal([alice.userId, carol.userId]);
    console.log(`      left reported ${String(after)} ms after the drop (window ${String(WINDOW_MS)} ms)`);
  });
});
