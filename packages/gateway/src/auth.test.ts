import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { freePort } from '@messaging-server/testkit';
import { startHarness, type Harness } from './harness.test.js';

const SECRET = 'test-secret-that-is-long-enough-for-hs256';

async function hs256(sub: string, options: { secret?: string; expiresIn?: string | number } = {}): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '5m')
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

async function connectWith(h: Harness, userId: string, token?: string): Promise<{ status: number; code?: unknown }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
  const response = await h.post({ userId }, headers);
  const body = (await response.json()) as { error?: { code?: unknown } };
  return { status: response.status, code: body.error?.code };
}

describe('gateway /connect authentication with an HS256 secret', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness({ env: { MSG_AUTH_JWT_SECRET: SECRET } });
    await h.addNode('node-a');
  });
  afterEach(async () => h.close());

  it('accepts a token whose sub is the userId', async () => {
    expect(await connectWith(h, 'alice', await hs256('alice'))).to.deep.equal({ status: 200, code: undefined });
  });

  it('401 UNAUTHORIZED without a token, with a bad one, or for another user', async () => {
    expect(await connectWith(h, 'alice')).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
    expect(await connectWith(h, 'alice', 'not-a-jwt')).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
    expect(await connectWith(h, 'alice', await hs256('bob'))).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
    expect(await connectWith(h, 'alice', await hs256('alice', { secret: 'another-secret-another-secret-another' }))).to.deep.equal({
      status: 401,
      code: 'UNAUTHORIZED',
    });
  });

  it('401 UNAUTHORIZED for an expired token', async () => {
    const expired = await hs256('alice', { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    expect(await connectWith(h, 'alice', expired)).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
  });

  it('still answers 400 for a malformed body first', async () => {
    expect(await connectWith(h, 'not valid')).to.deep.equal({ status: 400, code: 'INVALID_USER_ID' });
  });
});

describe('gateway /connect authentication with a JWKS URL', () => {
  let jwksServer: Server;
  let jwksUrl: string;
  let sign: (sub: string) => Promise<string>;
  let signOutside: (kid: string) => Promise<string>;
  let h: Harness;
  before(async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256');
    // A key pair the set does not hold, of the same algorithm: what "refuses others" is about.
    const outsider = await generateKeyPair('ES256');
    signOutside = (kid) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid }).setSubject('alice').setExpirationTime('5m').sign(outsider.privateKey);
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    jwksServer = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => jwksServer.listen(0, '127.0.0.1', resolve));
    const address = jwksServer.address();
    jwksUrl = `http://127.0.0.1:${String(typeof address === 'object' && address ? address.port : 0)}/jwks.json`;
    sign = (sub) =>
      new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject(sub).setExpirationTime('5m').sign(privateKey);
  });
  after(async () => new Promise<void>((resolve) => jwksServer.close(() => resolve())));
  beforeEach(async () => {
    h = await startHarness({ env: { MSG_AUTH_JWKS_URL: jwksUrl } });
    await h.addNode('node-a');
  });
  afterEach(async () => h.close());

  it('accepts a token signed by a key of the set and refuses others', async () => {
    expect((await connectWith(h, 'alice', await sign('alice'))).status).to.equal(200);
    // Signed by a key outside the set: claiming the set's kid, or a kid the set does not have.
    expect(await connectWith(h, 'alice', await signOutside('k1'))).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
    expect(await connectWith(h, 'alice', await signOutside('k2'))).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
    // A symmetric token (another algorithm, no key of the set), and a good signature for another user.
    expect(await connectWith(h, 'alice', await hs256('alice'))).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
    expect(await connectWith(h, 'alice', await sign('bob'))).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
  });
});

describe('gateway /connect authentication with an unreachable JWKS URL', () => {
  it('answers 500 INTERNAL (retryable), not 401, and hides the cause', async () => {
    const port = await freePort();
    const h = await startHarness({ env: { MSG_AUTH_JWKS_URL: `http://127.0.0.1:${String(port)}/jwks.json` } });
    try {
      await h.addNode('node-a');
      const response = await h.post({ userId: 'alice' }, { 'content-type': 'application/json', authorization: `Bearer ${await hs256('alice')}` });
      expect(response.status).to.equal(500);
      expect(await response.json()).to.deep.equal({ error: { code: 'INTERNAL', message: 'internal error' } });
    } finally {
      await h.close();
    }
  });
});
