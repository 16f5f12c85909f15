// Issue 23, acceptance 3 (contract v1.2, "Rooms outlive nodes"): drain, and then SIGKILL, the node of a room whose
// members all connected with its name, while every member sends to the room every 20 ms. The members come back on
// one node, nobody sees `left`, nothing a sender saw acked is lost or out of order once repeats are dropped, and no
// member joins again. Real 3-node clusters; every member is the SDK (receipts on, its default).
import { expect } from 'chai';
import { MessagingClient, type Room } from '@messaging-server/client';
import { requestSession, startCluster, waitFor, type LocalCluster } from '@messaging-server/testkit';
import { RawUser } from './support/raw-user.js';

const SEND_EVERY_MS = 20;
const CLUSTER_ENV = { MSG_LEASE_TTL_SECONDS: '2', MSG_LOG_LEVEL: 'warn', MSG_PENDING_MAX: '1024' };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Party {
  userId: string;
  client: MessagingClient;
  room: Room;
  sent: number;
  acked: Set<number>;
  errors: string[];
  outcomes: Promise<void>[];
  /** What the app got from each sender, in order (the SDK dropped repeats). */
  got: Map<string, number[]>;
  events: string[];
  resyncs: number;
}

async function party(gatewayUrl: string, userId: string, roomName: string): Promise<Party> {
  const client = new MessagingClient({
    gatewayUrl,
    userId,
    room: roomName,
    sockjsOptions: { transports: ['websocket'], timeout: 10_000 },
    pingIntervalMs: 500,
    pingTimeoutMs: 1000,
    sendTimeoutMs: 30_000,
    connectTimeoutMs: 30_000,
  });
  await client.start();
  const room = await client.join(roomName);
  const p: Party = { userId, client, room, sent: 0, acked: new Set(), errors: [], outcomes: [], got: new Map(), events: [], resyncs: 0 };
  room.on('message', (m) => {
    const list = p.got.get(m.from) ?? [];
    list.push((m.content as { s: number }).s);
    p.got.set(m.from, list);
  });
  room.on('member', (e) => p.events.push(`${e.userId}:${e.event}`));
  room.on('members', () => (p.resyncs += 1));
  return p;
}

class RoomStreams {
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly parties: Party[]) {}

  start(): void {
    this.timer = setInterval(() => {
      for (const p of this.parties) {
        const s = p.sent++;
        p.outcomes.push(
          p.room.send({ s }).then(
            () => void p.acked.add(s),
            (error: unknown) => void p.errors.push(`${String(s)}:${(error as { code?: string }).code ?? String(error)}`),
          ),
        );
      }
    }, SEND_EVERY_MS);
  }

  async stopAndVerify(): Promise<string> {
    clearInterval(this.timer);
    await Promise.all(this.parties.flatMap((p) => p.outcomes));
    const receivedAll = (): boolean =>
      this.parties.every((sender) => this.parties.every((r) => r === sender || (r.got.get(sender.userId)?.length ?? 0) >= sender.acked.size));
    await waitFor(receivedAll, { what: 'every acked room message at every other member', timeoutMs: 15_000 }).catch(() => undefined);
    let sent = 0;
    for (const sender of this.parties) {
      sent += sender.sent;
      expect(sender.errors, `${sender.userId}: room messages answered with an error`).to.deep.equal([]);
      for (const r of this.parties) {
        if (r === sender) continue;
        const got = r.got.get(sender.userId) ?? [];
        const name = `${sender.userId} → ${r.userId}`;
        expect([...sender.acked].filter((s) => !got.includes(s)), `${name}: acked and never received`).to.deep.equal([]);
        expect(new Set(got).size, `${name}: received twice after repeats were dropped`).to.equal(got.length);
        expect(got.filter((s, i) => i > 0 && s < (got[i - 1] as number)), `${name}: out of order`).to.deep.equal([]);
      }
    }
    for (const p of this.parties) expect(p.events, `${p.userId}: member events (a left, or a re-join)`).to.deep.equal([]);
    for (const p of this.parties) expect(p.room.closed, `${p.userId}: removed from the room`).to.equal(false);
    return `${String(sent)} room messages sent, all acked, each received once in order by the 2 others`;
  }

  close(): void {
    clearInterval(this.timer);
    for (const p of this.parties) p.client.close();
  }
}

describe('rooms outlive their node (contract v1.2, issue 23 acceptance 3)', function () {
  this.timeout(180_000);
  let cluster: LocalCluster | undefined;
  let streams: RoomStreams | undefined;

  afterEach(async () => {
    streams?.close();
    streams = undefined;
    await cluster?.stop();
    cluster = undefined;
  });

  async function roomOf3(label: string, env: Record<string, string> = {}): Promise<{ c: LocalCluster; parties: Party[]; home: string }> {
    const c = await startCluster({ nodes: 3, env: { ...CLUSTER_ENV, ...env } });
    cluster = c;
    const run = `${label}-${String(process.pid)}`;
    const parties: Party[] = [];
    for (const name of ['a', 'b', 'c']) parties.push(await party(c.gatewayUrl, `${run}-${name}`, `room-${run}`));
    const nodes = new Set(parties.map((p) => p.client.nodeId));
    expect(nodes.size, 'members placed on one node').to.equal(1);
    await waitFor(() => parties.every((p) => p.room.members.length === 3), { what: 'everyone sees 3 members' });
    for (const p of parties) p.events.length = 0; // the joins of the set-up
    return { c, parties, home: [...nodes][0] as string };
  }

  async function cameBack(parties: Party[], lost: string): Promise<string> {
    await waitFor(() => parties.every((p) => p.client.nodeId !== undefined && p.client.nodeId !== lost && p.client.state === 'open'), {
      what: 'every member back on a live node',
      timeoutMs: 20_000,
    });
    const nodes = new Set(parties.map((p) => p.client.nodeId));
    expect(nodes.size, 'members back on one node').to.equal(1);
    return [...nodes][0] as string;
  }

  it('drain (SIGTERM) of the room’s node mid-stream', async () => {
    const { c, parties, home } = await roomOf3('rdrain');
    const s = new RoomStreams(parties);
    streams = s;
    s.start();
    await sleep(1000);
    const draining = c.drainNode(home);
    const now = await cameBack(parties, home);
    await draining;
    await sleep(1000);
    console.log(`      drain of ${home}: members on ${now}; ${await s.stopAndVerify()}`);
  });

  it('SIGKILL of the room’s node mid-stream', async () => {
    const { c, parties, home } = await roomOf3('rkill');
    const s = new RoomStreams(parties);
    streams = s;
    s.start();
    await sleep(1000);
    await c.killNode(home);
    const now = await cameBack(parties, home);
    await sleep(1000);
    console.log(`      SIGKILL of ${home}: members on ${now}; ${await s.stopAndVerify()}`);
  });

  // The room's record lives MSG_SESSION_TTL_SECONDS from its last write, and a room whose members stay the same
  // writes nothing: its home must keep the record alive, or the next home finds none and every member is out.
  it('SIGKILL of the node of a room older than its record’s TTL', async () => {
    const { c, parties, home } = await roomOf3('rold', { MSG_SESSION_TTL_SECONDS: '3' });
    const s = new RoomStreams(parties);
    streams = s;
    s.start();
    await sleep(4500);
    await c.killNode(home);
    const now = await cameBack(parties, home);
    await sleep(1000);
    console.log(`      SIGKILL of ${home} after 4.5 s (TTL 3 s): members on ${now}; ${await s.stopAndVerify()}`);
  });
});

// The deterministic case behind the SIGKILL test above: a member whose client has not confirmed a room message when
// the room's node dies gets it again on its next node, though its sender was acked (the home's journal).
describe('a room message acked while unconfirmed outlives the SIGKILL of the node holding the copy (issue 23, acceptance 3)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster | undefined;
  const users: RawUser[] = [];

  afterEach(async () => {
    for (const user of users.splice(0)) user.ws.terminate();
    await cluster?.stop();
    cluster = undefined;
  });

  /** Alice (no receipts) on the room's node, and bob (receipts on, never confirming) where `bobAvoids` lets him. */
  async function roomOfTwo(label: string, bobAvoidsHome: boolean) {
    const c = await startCluster({ nodes: 3, env: CLUSTER_ENV });
    cluster = c;
    const room = `${label}-${String(process.pid)}`;
    const connect = async (userId: string, options: { receipts: boolean; avoid?: string[] }): Promise<RawUser> => {
      const session = await requestSession(c.gatewayUrl, userId, { room, ...(options.avoid ? { avoid: options.avoid } : {}) });
      const user = new RawUser(session, options.receipts);
      users.push(user);
      return user.welcomed();
    };
    const alice = await connect(`${room}-alice`, { receipts: false });
    const home = alice.session.nodeId;
    const bob = await connect(`${room}-bob`, { receipts: true, ...(bobAvoidsHome ? { avoid: [home] } : {}) });
    expect(bob.session.nodeId === home, 'bob on the room’s node').to.equal(!bobAvoidsHome);
    for (const [user, id] of [[alice, 'ja'], [bob, 'jb']] as const) {
      user.send({ type: 'join', room, id });
      await waitFor(() => user.frames.some((f) => f.type === 'joined' && f.id === id), { what: `${user.userId} joined` });
    }
    alice.send({ type: 'message', room, content: 'keep me', id: 'm1' });
    await waitFor(() => alice.answersFor('m1').length === 1, { what: 'alice’s ack' });
    expect(alice.answersFor('m1')[0]).to.include({ type: 'ack' });
    await waitFor(() => bob.ofType('message').length === 1, { what: 'bob got it (and never confirms it)' });
    return { c, alice, bob, connect };
  }

  it('the room’s node: the member that never confirmed gets it after its next welcome elsewhere', async () => {
    const { c, alice, bob, connect } = await roomOfTwo('unconfirmed-home', false);
    await c.killNode(bob.session.nodeId);
    const back = await connect(bob.userId, { receipts: true, avoid: [bob.session.nodeId] });
    await waitFor(() => back.ofType('message').length >= 1, { what: 'the unconfirmed copy after bob’s next welcome', timeoutMs: 20_000 });
    expect(back.ofType('message').map((m) => [m.from, m.id, m.content])).to.deep.equal([[alice.userId, 'm1', 'keep me']]);
  });

  it('the member’s own node, not the room’s: it gets it after its next welcome elsewhere', async () => {
    const { c, alice, bob, connect } = await roomOfTwo('unconfirmed-member', true);
    await c.killNode(bob.session.nodeId);
    const back = await connect(bob.userId, { receipts: true, avoid: [bob.session.nodeId, alice.session.nodeId] });
    await waitFor(() => back.ofType('message').length >= 1, { what: 'the unconfirmed copy after bob’s next welcome', timeoutMs: 20_000 });
    expect(back.ofType('message').map((m) => [m.from, m.id, m.content])).to.deep.equal([[alice.userId, 'm1', 'keep me']]);
  });
});
