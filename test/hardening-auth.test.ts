// Issue 8, acceptance 4 and 5: /connect with JWT authentication on a real gateway process, tokens signed here.
import { expect } from 'chai';
import { SignJWT } from 'jose';
import type { Session } from '@messaging-server/protocol';
import { startCluster, TestSocket, type LocalCluster } from '@messaging-server/testkit';

const SECRET = 'hardening-auth-test-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);

let counter = 0;
const uid = (label: string): string => `${label}-${String(process.pid)}-${String(++counter)}`;

async function token(sub: string | undefined, options: { expiresAt?: number; issuedAt?: number; secret?: Uint8Array } = {}): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuedAt(options.issuedAt);
  if (sub !== undefined) jwt.setSubject(sub);
  jwt.setExpirationTime(options.expiresAt ?? Math.floor(Date.now() / 1000) + 300);
  return jwt.sign(options.secret ?? key);
}

describe('hardening: JWT authentication on /connect, real gateway process (issue 8, 4 and 5)', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  const tokens: string[] = [];
  const keys: string[] = [];
  const sockets: TestSocket[] = [];

  async function connect(userId: string, authorization?: string): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (authorization !== undefined) headers['authorization'] = authorization;
    const res = await fetch(`${cluster.gatewayUrl}/connect`, { method: 'POST', headers, body: JSON.stringify({ userId }), signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as Record<string, unknown>;
    if (typeof body['listeningKey'] === 'string') keys.push(body['listeningKey']);
    return { status: res.status, body, headers: res.headers };
  }
  async function bearer(sub: string | undefined, options: Parameters<typeof token>[1] = {}): Promise<string> {
    const value = await token(sub, options);
    tokens.push(value);
    return `Bearer ${value}`;
  }
  function expectUnauthorized(answer: { status: number; body: Record<string, unknown>; headers: Headers }): void {
    expect(answer.status).to.equal(401);
    expect(answer.headers.get('content-type')).to.match(/^application\/json/);
    expect(answer.body).to.have.keys('error');
    expect(answer.body['error']).to.include({ code: 'UNAUTHORIZED' });
    expect((answer.body['error'] as { message: unknown }).message).to.be.a('string');
  }

  before(async function () {
    this.timeout(60_000);
    // Debug level: even the chattiest logs must not carry a token or a key.
    cluster = await startCluster({ nodes: 1, env: { MSG_AUTH_JWT_SECRET: SECRET, MSG_LOG_LEVEL: 'debug', MSG_CLUSTER_SECRET: 'auth-cluster-secret' } });
  });
  after(async () => {
    for (const socket of sockets) socket.close();
    await cluster?.stop();
  });

  it('answers 401 JSON for a missing token, another scheme, or garbage', async () => {
    const userId = uid('alice');
    expectUnauthorized(await connect(userId));
    expectUnauthorized(await connect(userId, 'Basic YWxpY2U6c2VjcmV0'));
    expectUnauthorized(await connect(userId, 'Bearer not.a.jwt'));
    expectUnauthorized(await connect(userId, 'Bearer'));
  });

  it('answers 401 JSON for an expired token', async () => {
    const userId = uid('alice');
    const answer = await connect(userId, await bearer(userId, { expiresAt: Math.floor(Date.now() / 1000) - 120 }));
    expectUnauthorized(answer);
    expect(answer.body['error']).to.include({ message: 'token expired' });
  });

  it('answers 401 JSON for a token that lives past the maximum token age (1 h by default), however far its exp', async () => {
    const userId = uid('alice');
    const now = Math.floor(Date.now() / 1000);
    const forYears = await connect(userId, await bearer(userId, { expiresAt: now + 10 * 365 * 86400 }));
    expectUnauthorized(forYears);
    expect(forYears.body['error']).to.include({ message: 'token expires later than the maximum token age allows' });
    const issuedLongAgo = await connect(userId, await bearer(userId, { issuedAt: now - 2 * 3600, expiresAt: now + 300 }));
    expectUnauthorized(issuedLongAgo);
    expect(issuedLongAgo.body['error']).to.include({ message: 'token is older than the maximum token age' });
    // Within the bound on both sides: accepted.
    expect((await connect(userId, await bearer(userId, { issuedAt: now - 1800, expiresAt: now + 1700 }))).status).to.equal(200);
  });

  it('answers 401 JSON for a token of another user, signed with another key, or unsigned', async () => {
    const userId = uid('alice');
    const other = await connect(userId, await bearer(uid('mallory')));
    expectUnauthorized(other);
    expect(other.body['error']).to.include({ message: 'token is for another user' });
    expectUnauthorized(await connect(userId, await bearer(userId, { secret: new TextEncoder().encode('some-other-secret-of-enough-length!!') })));
    expectUnauthorized(await connect(userId, await bearer(undefined)));
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ sub: userId, exp: Math.floor(Date.now() / 1000) + 300 })).toString('base64url');
    tokens.push(`${header}.${payload}.`);
    expectUnauthorized(await connect(userId, `Bearer ${header}.${payload}.`));
  });

  it('gives a session for a valid token, and that session opens SockJS', async () => {
    const userId = uid('alice');
    const answer = await connect(userId, await bearer(userId));
    expect(answer.status).to.equal(200);
    const session = answer.body as unknown as Session;
    expect(session).to.include({ userId, acked: false });
    const socket = TestSocket.forSession(session);
    sockets.push(socket);
    await socket.welcomed();

    // Replacement needs the user's own token: someone else's /connect for this userId is refused, and the live
    // connection stays.
    expectUnauthorized(await connect(userId, await bearer(uid('mallory'))));
    socket.send({ type: 'ping', id: 'still-here' });
    await socket.waitForFrame((f) => f.type === 'pong' && f.id === 'still-here');
    expect(socket.closeEvent).to.equal(undefined);
  });

  it('logs no token and no listeningKey', () => {
    const logs = cluster.logs();
    expect(logs).to.match(/connect refused/);
    expect(tokens.length).to.be.greaterThan(4);
    expect(keys.length).to.be.greaterThan(0);
    expect(tokens.filter((t) => logs.includes(t) || logs.includes(t.split('.')[2] || '\u0000'))).to.deep.equal([]);
    expect(keys.filter((k) => logs.includes(k))).to.deep.equal([]);
    expect(logs.includes(SECRET)).to.equal(false);
  });
});
