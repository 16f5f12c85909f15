import { expect } from 'chai';
import type { AckFrame, DeliveredMessageFrame, ErrorFrame, Session } from '@messaging-server/protocol';
import { connectUser, postConnect, requestSession, TestSocket, waitFor } from '@messaging-server/testkit';

/** What the protocol suite needs from a running deployment: a gateway, and a way to make unique user ids. */
export interface ProtocolTarget {
  gatewayUrl: string;
  /** Every listening address the deployment hands out (one for standalone, one per node for a cluster). */
  listeningAddresses: string[];
}

let counter = 0;
export function uid(label: string): string {
  counter += 1;
  return `${label}-${String(process.pid)}-${String(counter)}`;
}

export function messagesFrom(socket: TestSocket, from: string): DeliveredMessageFrame[] {
  // Direct messages only: a v1.2 room message has `room` instead of `to`.
  return socket.framesOfType('message').filter((f): f is DeliveredMessageFrame => f.from === from && 'to' in f);
}

export function ackIds(socket: TestSocket): Set<string> {
  return new Set(socket.framesOfType('ack').map((f: AckFrame) => f.id));
}

export function errorFor(socket: TestSocket, id: string): ErrorFrame | undefined {
  return socket.framesOfType('error').find((f) => f.id === id);
}

/**
 * Connects `userId` on the node `nodeId`: /connect with every other node seen so far in `avoid`, until it lands
 * there (one node: at once; least-loaded allocation otherwise picks among the rest).
 */
export async function connectOnNode(gatewayUrl: string, userId: string, nodeId: string, others: string[]): ReturnType<typeof connectUser> {
  const avoid = new Set(others.filter((id) => id !== nodeId));
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const session = await requestSession(gatewayUrl, userId, { avoid: [...avoid] });
    if (session.nodeId === nodeId) {
      const socket = TestSocket.forSession(session);
      await socket.welcomed();
      return { session, socket };
    }
    avoid.add(session.nodeId);
  }
  throw new Error(`${userId} never landed on ${nodeId}`);
}

const sockets: TestSocket[] = [];
export function track<T extends { socket: TestSocket }>(value: T): T {
  sockets.push(value.socket);
  return value;
}
export function closeTracked(): void {
  for (const s of sockets.splice(0)) s.close();
}

/**
 * The contract's protocol behaviour that every deployment must show, clustered or standalone
 * (issue 3, acceptance 3–6, 9 and 11 on any deployment).
 */
export function describeProtocol(name: string, target: () => ProtocolTarget): void {
  describe(`protocol v1: ${name}`, function () {
    afterEach(closeTracked);

    it('relays a message with an ack, stamping from, and answers ping with pong', async () => {
      const { gatewayUrl } = target();
      const alice = track(await connectUser(gatewayUrl, uid('alice')));
      const bob = track(await connectUser(gatewayUrl, uid('bob')));
      alice.socket.send({ type: 'message', to: bob.session.userId, content: { sdp: 'v=0' }, id: 'm1' });
      const got = await bob.socket.waitForFrame<DeliveredMessageFrame>((f) => f.type === 'message');
      expect(got).to.deep.include({ type: 'message', from: alice.session.userId, to: bob.session.userId, content: { sdp: 'v=0' }, id: 'm1' });
      await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'm1');
      alice.socket.send({ type: 'ping', id: 'p1' });
      await alice.socket.waitForFrame((f) => f.type === 'pong' && f.id === 'p1');
    });

    it('answers PEER_UNAVAILABLE for an unknown user, and the sender stays connected', async () => {
      const alice = track(await connectUser(target().gatewayUrl, uid('alice')));
      alice.socket.send({ to: uid('nobody'), content: 'hi', id: 'x1' });
      const error = await alice.socket.waitForFrame<ErrorFrame>((f) => f.type === 'error' && f.id === 'x1');
      expect(error.code).to.equal('PEER_UNAVAILABLE');
      alice.socket.send({ type: 'ping', id: 'still-there' });
      await alice.socket.waitForFrame((f) => f.type === 'pong' && f.id === 'still-there');
      expect(alice.socket.closeEvent).to.equal(undefined);
    });

    it('holds messages for a recipient that has not opened SockJS yet and delivers them in order after welcome', async () => {
      const { gatewayUrl } = target();
      const alice = track(await connectUser(gatewayUrl, uid('alice')));
      const bobSession = await requestSession(gatewayUrl, uid('bob'));
      const carol = track(await connectOnNode(gatewayUrl, uid('carol'), bobSession.nodeId, [alice.session.nodeId]));
      for (let i = 0; i < 20; i++) alice.socket.send({ to: bobSession.userId, content: i, id: `p${String(i)}` });
      // Nothing is acked before the recipient's connection has it. Positive signals instead of a pause: the pong
      // shows alice's node has taken all 20 in; a later message to carol, on bob's node, goes the same way (lookup,
      // then bob's node), so by its ack the 20 have been handled there too, and none of them may have an ack.
      alice.socket.send({ type: 'ping', id: 'after-20' });
      await alice.socket.waitForFrame((f) => f.type === 'pong' && f.id === 'after-20');
      alice.socket.send({ to: carol.session.userId, content: 'marker', id: 'marker' });
      await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'marker');
      expect(alice.socket.framesOfType('ack').map((f) => f.id)).to.deep.equal(['marker']);
      const bob = TestSocket.forSession(bobSession);
      track({ socket: bob });
      await bob.welcomed();
      await waitFor(() => messagesFrom(bob, alice.session.userId).length === 20, { what: '20 pending messages' });
      expect(bob.frames[0]?.type).to.equal('welcome');
      expect(messagesFrom(bob, alice.session.userId).map((m) => m.content)).to.deep.equal([...Array(20).keys()]);
      await waitFor(() => ackIds(alice.socket).size === 21, { what: '20 acks after the marker' });
    });

    it('rejects a spoofed from with FORBIDDEN_SENDER and does not deliver it', async () => {
      const { gatewayUrl } = target();
      const alice = track(await connectUser(gatewayUrl, uid('alice')));
      const bob = track(await connectUser(gatewayUrl, uid('bob')));
      alice.socket.send({ from: bob.session.userId, to: bob.session.userId, content: 'fake', id: 'f1' });
      alice.socket.send({ to: bob.session.userId, content: 'real', id: 'f2' });
      const error = await alice.socket.waitForFrame<ErrorFrame>((f) => f.type === 'error' && f.id === 'f1');
      expect(error.code).to.equal('FORBIDDEN_SENDER');
      await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'f2');
      // The ack and the delivery travel on different sockets: wait for 'real' at bob, then nothing else is there.
      await waitFor(() => bob.socket.framesOfType('message').length >= 1, { what: "'real' at bob" });
      expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal(['real']);
    });

    it('closes a wrong key with 4500, a reused key with 4502, and an unknown user with 4500', async () => {
      const { gatewayUrl } = target();
      const session = await requestSession(gatewayUrl, uid('carol'));
      const wrong = TestSocket.forSession(session, { key: 'A'.repeat(43) });
      expect((await wrong.closed()).code).to.equal(4500);
      const missing = new TestSocket(`${session.listeningAddress}?userId=${session.userId}`);
      expect((await missing.closed()).code).to.equal(4500);
      const stranger = TestSocket.forSession({ ...session, userId: uid('stranger') });
      expect((await stranger.closed()).code).to.equal(4500);
      const first = TestSocket.forSession(session);
      track({ socket: first });
      await first.welcomed();
      const second = TestSocket.forSession(session);
      expect((await second.closed()).code).to.equal(4502);
      // The refused reuse cost the first connection nothing: it still answers.
      first.send({ type: 'ping', id: 'first-still-here' });
      await first.waitForFrame((f) => f.type === 'pong' && f.id === 'first-still-here');
      expect(first.closeEvent).to.equal(undefined);
    });

    it('replaces a session: the old connection gets 4503, the new one works, and the late close deletes nothing', async () => {
      const { gatewayUrl } = target();
      const userId = uid('dave');
      const old = track(await connectUser(gatewayUrl, userId));
      const newer = await requestSession(gatewayUrl, userId);
      expect((await old.socket.closed()).code).to.equal(4503);
      const fresh = TestSocket.forSession(newer);
      track({ socket: fresh });
      await fresh.welcomed();
      // The replaced connection's close happened before and after the new handshake; the new session must survive.
      const alice = track(await connectUser(gatewayUrl, uid('alice')));
      alice.socket.send({ to: userId, content: 'for the new one', id: 'n1' });
      await alice.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'n1');
      await fresh.waitForFrame((f) => f.type === 'message' && f.content === 'for the new one');
    });

    it('answers malformed frames with error frames, keeps the connection, and does not disturb others', async () => {
      const { gatewayUrl } = target();
      const alice = track(await connectUser(gatewayUrl, uid('alice')));
      const bob = track(await connectUser(gatewayUrl, uid('bob')));
      const bad: [unknown, string, string | undefined][] = [
        ['not json {', 'INVALID_MESSAGE', undefined],
        ['[1,2,3]', 'INVALID_MESSAGE', undefined],
        ['"just a string"', 'INVALID_MESSAGE', undefined],
        [{ content: 'no to', id: 'b1' }, 'INVALID_MESSAGE', 'b1'],
        [{ to: 42, content: 'x', id: 'b2' }, 'INVALID_MESSAGE', 'b2'],
        [{ to: bob.session.userId, content: 'x', id: 7 }, 'INVALID_MESSAGE', undefined],
        [{ type: 'launch', to: bob.session.userId, content: 'x', id: 'b3' }, 'INVALID_MESSAGE', 'b3'],
        [{ to: 'bad user id!', content: 'x', id: 'b4' }, 'INVALID_MESSAGE', 'b4'],
        [{ to: bob.session.userId, content: 'x'.repeat(70_000), id: 'b5' }, 'MESSAGE_TOO_LARGE', undefined],
      ];
      for (const [frame] of bad) alice.socket.send(frame);
      bob.socket.send({ to: alice.session.userId, content: 'unaffected', id: 'ok1' });
      await waitFor(() => alice.socket.framesOfType('error').length === bad.length, { what: `${String(bad.length)} error frames` });
      const errors = alice.socket.framesOfType('error');
      expect(errors.map((e) => e.code)).to.deep.equal(bad.map(([, code]) => code));
      for (const [, , id] of bad) if (id !== undefined) expect(errors.some((e) => e.id === id)).to.equal(true);
      await bob.socket.waitForFrame((f) => f.type === 'ack' && f.id === 'ok1');
      await alice.socket.waitForFrame((f) => f.type === 'message' && f.content === 'unaffected');
      // A good message from alice after the bad ones reaching bob shows the bad ones had their chance to; none did.
      alice.socket.send({ to: bob.session.userId, content: 'after the bad ones', id: 'ok2' });
      await bob.socket.waitForFrame((f) => f.type === 'message' && f.content === 'after the bad ones');
      expect(alice.socket.closeEvent).to.equal(undefined);
      expect(bob.socket.framesOfType('message').map((m) => m.content)).to.deep.equal(['after the bad ones']);
    });

    it('still serves the seed client: form /connect, the token alias, and frames without type', async () => {
      const { gatewayUrl } = target();
      const bob = track(await connectUser(gatewayUrl, uid('bob')));
      const seedUser = uid('seed');
      const answer = await postConnect(gatewayUrl, seedUser, { form: true });
      expect(answer.status).to.equal(200);
      const session = answer.body as Session;
      expect(session).to.include({ userId: seedUser, acked: false });
      const seed = TestSocket.forSession(session, { keyParam: 'token' });
      track({ socket: seed });
      await seed.welcomed();
      seed.send({ from: seedUser, to: bob.session.userId, content: 'hello from 2016' });
      const got = await bob.socket.waitForFrame<DeliveredMessageFrame>((f) => f.type === 'message');
      expect(got).to.include({ from: seedUser, content: 'hello from 2016' });
      // Sending to yourself is allowed (the seed's load test does it).
      seed.send({ to: seedUser, content: 'me', id: 's1' });
      await seed.waitForFrame((f) => f.type === 'message' && f.content === 'me');
      await seed.waitForFrame((f) => f.type === 'ack' && f.id === 's1');
    });
  });
}
