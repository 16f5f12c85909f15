// Issue 23, acceptance 2 and 5 (server side): rooms on one node and across nodes, one order per room, and the
// limits and bad input of the contract (v1.2 "Rooms on the wire"), against a real 3-node cluster over raw SockJS.
import { expect } from 'chai';
import type { ServerFrame } from '@messaging-server/protocol';
import { requestSession, startCluster, TestSocket, waitFor, type LocalCluster } from '@messaging-server/testkit';

let counter = 0;
const unique = (label: string): string => `${label}-${String(process.pid)}-${String((counter += 1))}`;

interface Member {
  userId: string;
  nodeId: string;
  socket: TestSocket;
}

async function member(cluster: LocalCluster, label: string, room?: string): Promise<Member> {
  const userId = unique(label);
  const session = await requestSession(String(cluster.gateways[0]?.url), userId, room === undefined ? {} : { room });
  const socket = TestSocket.forSession(session);
  await socket.welcomed();
  return { userId, nodeId: session.nodeId, socket };
}

async function join(m: Member, room: string): Promise<string[]> {
  const id = unique('j');
  m.socket.send({ type: 'join', room, id });
  const answer = await m.socket.waitForFrame((f) => (f.type === 'joined' || f.type === 'error') && f.id === id, 10_000, `joined ${id}`);
  if (answer.type !== 'joined') throw new Error(`join of ${room} answered ${JSON.stringify(answer)}`);
  return answer.members;
}

async function answerOf(m: Member, frame: Record<string, unknown>): Promise<ServerFrame> {
  const id = unique('f');
  m.socket.send({ ...frame, id });
  return m.socket.waitForFrame((f) => (f.type === 'joined' || f.type === 'error' || f.type === 'ack') && 'id' in f && f.id === id, 10_000, `answer ${id}`);
}

function roomMessages(m: Member, room: string): Array<{ from: string; id: string | undefined }> {
  return m.socket.frames
    .filter((f) => f.type === 'message' && 'room' in f && f.room === room)
    .map((f) => ({ from: (f as { from: string }).from, id: (f as { id?: string }).id }));
}

function memberEvents(m: Member, room: string): string[] {
  return m.socket.framesOfType('member').filter((f) => f.room === room).map((f) => `${f.userId}:${f.event}`);
}

describe('rooms on the nodes (contract v1.2)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;
  const sockets: TestSocket[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 3, nodeEnv: { MSG_ROOM_MAX_MEMBERS: '5', MSG_ROOMS_PER_USER: '2' } });
  });
  afterEach(() => {
    for (const socket of sockets.splice(0)) socket.close();
  });
  after(async () => {
    await cluster?.stop();
  });

  async function members(count: number, label: string, room?: string): Promise<Member[]> {
    const list: Member[] = [];
    for (let i = 0; i < count; i++) list.push(await member(cluster, `${label}${String(i)}`, room));
    sockets.push(...list.map((m) => m.socket));
    return list;
  }

  it('a room of 3 on one node: joined in join order, member events, messages to the others and not the sender', async () => {
    const room = unique('standup');
    const [alice, bob, carol] = (await members(3, 'one', room)) as [Member, Member, Member];
    expect(new Set([alice.nodeId, bob.nodeId, carol.nodeId]).size, 'placed on one node').to.equal(1);
    expect(await join(alice, room)).to.deep.equal([alice.userId]);
    expect(await join(bob, room)).to.deep.equal([alice.userId, bob.userId]);
    expect(await join(carol, room)).to.deep.equal([alice.userId, bob.userId, carol.userId]);
    expect(await join(carol, room), 'joining again changes nothing').to.deep.equal([alice.userId, bob.userId, carol.userId]);
    await waitFor(() => memberEvents(alice, room).length === 2, { what: 'alice sees bob and carol join' });
    expect(memberEvents(alice, room)).to.deep.equal([`${bob.userId}:joined`, `${carol.userId}:joined`]);
    expect(memberEvents(bob, room)).to.deep.equal([`${carol.userId}:joined`]);

    expect(await answerOf(bob, { type: 'message', room, content: { hello: 1 } })).to.include({ type: 'ack' });
    await waitFor(() => roomMessages(alice, room).length === 1 && roomMessages(carol, room).length === 1, { what: 'the broadcast' });
    expect(roomMessages(bob, room), 'not to the sender').to.deep.equal([]);
    const got = alice.socket.frames.find((f) => f.type === 'message' && 'room' in f);
    expect(got).to.deep.include({ from: bob.userId, room, content: { hello: 1 } });

    expect(await answerOf(carol, { type: 'leave', room })).to.include({ type: 'ack' });
    await waitFor(() => memberEvents(alice, room).includes(`${carol.userId}:left`), { what: 'carol left' });
    bob.socket.close();
    await waitFor(() => memberEvents(alice, room).includes(`${bob.userId}:left`), { what: 'a clean close leaves the room' });
  });

  it('a room of 5 across 3 nodes: one order per room seen identically while two members send at once', async () => {
    const room = unique('spread');
    const list = await members(5, 'spread');
    expect(new Set(list.map((m) => m.nodeId)).size, 'least-loaded placement spreads them').to.be.greaterThan(1);
    for (const m of list) await join(m, room);
    const [a, b, ...quiet] = list as [Member, Member, ...Member[]];
    const PER_SENDER = 40;
    for (let i = 0; i < PER_SENDER; i++) {
      a.socket.send({ type: 'message', room, content: i, id: `a${String(i)}` });
      b.socket.send({ type: 'message', room, content: i, id: `b${String(i)}` });
    }
    await waitFor(() => quiet.every((m) => roomMessages(m, room).length === 2 * PER_SENDER), { timeoutMs: 20_000, what: 'every message at every quiet member' });
    await waitFor(() => roomMessages(a, room).length === PER_SENDER && roomMessages(b, room).length === PER_SENDER, { what: 'each sender gets the other' });
    const order = roomMessages(quiet[0] as Member, room).map((m) => `${m.from}/${String(m.id)}`);
    for (const m of quiet) expect(roomMessages(m, room).map((x) => `${x.from}/${String(x.id)}`), `${m.userId}'s order`).to.deep.equal(order);
    const ofA = order.filter((k) => k.startsWith(a.userId)).map((k) => k.split('/')[1]);
    expect(ofA, "a sender's messages in the order sent").to.deep.equal(Array.from({ length: PER_SENDER }, (_, i) => `a${String(i)}`));
    expect(roomMessages(b, room).map((m) => m.id)).to.deep.equal(ofA, "b sees a's messages in the room's order");
  });

  it('a member outlives its replacement (4503, a move): no left, a fresh joined without id, traffic on its new node', async () => {
    const room = unique('move');
    const [alice, bob, carol] = (await members(3, 'mv')) as [Member, Member, Member];
    for (const m of [alice, bob, carol]) await join(m, room);
    const again = await requestSession(String(cluster.gateways[0]?.url), alice.userId);
    await waitFor(() => alice.socket.closeEvent?.code === 4503, { what: 'the old connection replaced' });
    const moved = TestSocket.forSession(again);
    sockets.push(moved);
    await moved.welcomed();
    const resync = await moved.waitForFrame((f) => f.type === 'joined' && f.room === room, 10_000, 'a fresh joined');
    expect(resync).to.not.have.property('id');
    expect((resync as { members: string[] }).members).to.deep.equal([alice.userId, bob.userId, carol.userId]);
    expect(await answerOf(bob, { type: 'message', room, content: 'after the move' })).to.include({ type: 'ack' });
    await waitFor(() => moved.frames.some((f) => f.type === 'message' && 'room' in f && f.content === 'after the move'), { what: 'the moved member gets the room' });
    expect(memberEvents(bob, room), 'no left for a move').to.deep.equal([`${carol.userId}:joined`]);
    moved.send({ type: 'message', room, content: 'from the new node', id: 'n1' });
    await waitFor(() => roomMessages(carol, room).some((m) => m.id === 'n1'), { what: 'the moved member still sends to the room' });
  });

  it('refuses INVALID_ROOM, ROOM_FULL, TOO_MANY_ROOMS and NOT_A_MEMBER without touching another room', async () => {
    const room = unique('full');
    const other = unique('other');
    const list = await members(6, 'lim', room);
    const [first, second] = list as [Member, Member];
    for (const m of list.slice(0, 5)) await join(m, room);
    expect(await answerOf(list[5] as Member, { type: 'join', room })).to.include({ type: 'error', code: 'ROOM_FULL' });
    expect(await answerOf(first, { type: 'join', room: 'bad room!' })).to.include({ type: 'error', code: 'INVALID_ROOM' });
    expect(await answerOf(first, { type: 'message', room: 'bad room!', content: 1 })).to.include({ type: 'error', code: 'INVALID_ROOM' });
    expect(await answerOf(list[5] as Member, { type: 'message', room, content: 1 })).to.include({ type: 'error', code: 'NOT_A_MEMBER' });
    expect(await answerOf(first, { type: 'message', to: 'x', room, content: 1 })).to.include({ type: 'error', code: 'INVALID_MESSAGE' });
    expect(await join(first, other)).to.deep.equal([first.userId]);
    expect(await answerOf(first, { type: 'join', room: unique('third') })).to.include({ type: 'error', code: 'TOO_MANY_ROOMS' });
    expect(await answerOf(list[5] as Member, { type: 'leave', room }), 'leaving a room you are not in is an ack').to.include({ type: 'ack' });
    // Both rooms still work after every refusal.
    expect(await answerOf(second, { type: 'message', room, content: 'still' })).to.include({ type: 'ack' });
    await waitFor(() => roomMessages(first, room).length === 1, { what: 'the full room still relays' });
    expect(await join(second, other)).to.deep.equal([first.userId, second.userId]);
    expect(await answerOf(first, { type: 'message', room: other, content: 'too' })).to.include({ type: 'ack' });
    await waitFor(() => roomMessages(second, other).length === 1, { what: 'the other room relays' });
  });
});
