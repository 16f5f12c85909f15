// Issue 23, acceptance 5 (FORBIDDEN_ROOM): a token's `rooms` claim, carried in the session record, limits the rooms a
// user may join on the node (exact names and `*` prefixes); a token without the claim grants every room.
import { expect } from 'chai';
import { SignJWT } from 'jose';
import type { ServerFrame, Session } from '@messaging-server/protocol';
import { startCluster, TestSocket, type LocalCluster } from '@messaging-server/testkit';

const SECRET = 'rooms-auth-test-secret-0123456789abcdef-xyz';
let counter = 0;
const uid = (label: string): string => `${label}-${String(process.pid)}-${String(++counter)}`;

async function token(sub: string, rooms?: string[]): Promise<string> {
  return new SignJWT(rooms === undefined ? {} : { rooms })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
    .sign(new TextEncoder().encode(SECRET));
}

describe('rooms: the token rooms claim on the node (contract v1.2, FORBIDDEN_ROOM)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  const sockets: TestSocket[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 1, env: { MSG_AUTH_JWT_SECRET: SECRET } });
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await cluster?.stop();
  });

  async function online(userId: string, rooms?: string[]): Promise<TestSocket> {
    const res = await fetch(`${cluster.gatewayUrl}/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${await token(userId, rooms)}` },
      body: JSON.stringify({ userId }),
      signal: AbortSignal.timeout(5000),
    });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as Session & Record<string, unknown>;
    expect(body, 'the grant stays server-side').to.not.have.property('roomGrants');
    const socket = TestSocket.forSession(body);
    sockets.push(socket);
    await socket.welcomed();
    return socket;
  }

  async function joinAnswer(socket: TestSocket, room: string): Promise<ServerFrame> {
    const id = uid('j');
    socket.send({ type: 'join', room, id });
    return socket.waitForFrame((f) => (f.type === 'joined' || f.type === 'error') && f.id === id);
  }

  it('grants exactly the claimed rooms and prefixes, refuses the rest, and a refusal does not touch a granted room', async () => {
    const team = uid('team');
    const alice = await online(uid('alice'), [`${team}-*`, 'lobby']);
    expect(await joinAnswer(alice, `${team}-standup`)).to.include({ type: 'joined' });
    expect(await joinAnswer(alice, 'lobby')).to.include({ type: 'joined' });
    expect(await joinAnswer(alice, 'lobby2')).to.include({ type: 'error', code: 'FORBIDDEN_ROOM' });
    expect(await joinAnswer(alice, 'other-team-standup')).to.include({ type: 'error', code: 'FORBIDDEN_ROOM' });
    const bob = await online(uid('bob'));
    const joined = await joinAnswer(bob, `${team}-standup`);
    expect(joined, 'a token without the claim grants every room').to.include({ type: 'joined' });
    expect((joined as { members: string[] }).members).to.have.length(2);
  });

  it('refuses at /connect a token whose rooms claim is not a list of names', async () => {
    const userId = uid('carol');
    const bad = await new SignJWT({ rooms: 'lobby' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt()
      .setSubject(userId)
      .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
      .sign(new TextEncoder().encode(SECRET));
    const res = await fetch(`${cluster.gatewayUrl}/connect`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${bad}` },
      body: JSON.stringify({ userId }),
    });
    expect(res.status).to.equal(401);
  });
});
