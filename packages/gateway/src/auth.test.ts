import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';
import { loadConfig } from '@messaging-server/core';
import { freePort } from '@messaging-server/testkit';
import { createJwtAuthenticator } from './auth.js';
import { startHarness, type Harness } from './harness.test.js';

/** A certificate for 127.0.0.1 made by openssl for this run, and a fetch that trusts it (as NODE_EXTRA_CA_CERTS would). */
function testCertificate(): { key: Buffer; cert: Buffer; fetch: (url: string, init: RequestInit) => Promise<Response> } {
  const dir = mkdtempSync(join(tmpdir(), 'jwks-tls-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const key = readFileSync(join(dir, 'key.pem'));
    const cert = readFileSync(join(dir, 'cert.pem'));
    const dispatcher = new Agent({ connect: { ca: cert } });
    const fetch = (url: string, init: RequestInit): Promise<Response> =>
      undiciFetch(url, { ...(init as Record<string, unknown>), dispatcher } as Parameters<typeof undiciFetch>[1]) as unknown as Promise<Response>;
    return { key, cert, fetch };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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

describe('gateway /connect authentication: audience, issuer and exp', () => {
  let h: Harness;
  const sign = (claims: { aud?: string; iss?: string; exp?: number | undefined }): Promise<string> => {
    const jwt = new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt();
    if (claims.aud !== undefined) jwt.setAudience(claims.aud);
    if (claims.iss !== undefined) jwt.setIssuer(claims.iss);
    if (claims.exp !== undefined) jwt.setExpirationTime(claims.exp);
    return jwt.sign(new TextEncoder().encode(SECRET));
  };
  const inFiveMinutes = (): number => Math.floor(Date.now() / 1000) + 300;
  beforeEach(async () => {
    h = await startHarness({ env: { MSG_AUTH_JWT_SECRET: SECRET, MSG_AUTH_AUDIENCE: 'signaling,other-app', MSG_AUTH_ISSUER: 'https://issuer.example' } });
    await h.addNode('node-a');
  });
  afterEach(async () => h.close());

  it('accepts a token for a configured audience from the configured issuer, with exp', async () => {
    expect((await connectWith(h, 'alice', await sign({ aud: 'signaling', iss: 'https://issuer.example', exp: inFiveMinutes() }))).status).to.equal(200);
    expect((await connectWith(h, 'alice', await sign({ aud: 'other-app', iss: 'https://issuer.example', exp: inFiveMinutes() }))).status).to.equal(200);
  });

  it('401 for another audience, no audience, another issuer, no issuer, or no exp', async () => {
    for (const claims of [
      { aud: 'someone-else', iss: 'https://issuer.example', exp: inFiveMinutes() },
      { iss: 'https://issuer.example', exp: inFiveMinutes() },
      { aud: 'signaling', iss: 'https://evil.example', exp: inFiveMinutes() },
      { aud: 'signaling', exp: inFiveMinutes() },
      { aud: 'signaling', iss: 'https://issuer.example' },
    ]) {
      expect(await connectWith(h, 'alice', await sign(claims)), JSON.stringify(claims)).to.deep.equal({ status: 401, code: 'UNAUTHORIZED' });
    }
  });
});

describe('gateway /connect authentication with a JWKS URL (https only)', () => {
  const tls = testCertificate();
  let keyServer: Server;
  let jwksUrl: string;
  let answer: 'keys' | 'unavailable' = 'keys';
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
    keyServer = createServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
      if (answer === 'unavailable') return void res.writeHead(503).end();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
    const address = keyServer.address();
    jwksUrl = `https://127.0.0.1:${String(typeof address === 'object' && address ? address.port : 0)}/jwks.json`;
    sign = (sub) => new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setSubject(sub).setExpirationTime('5m').sign(privateKey);
  });
  after(async () => new Promise<void>((resolve) => keyServer.close(() => resolve())));
  beforeEach(async () => {
    answer = 'keys';
    h = await startHarness({ env: {}, deps: { authenticator: createJwtAuthenticator({ jwksUrl, jwksFetch: tls.fetch }) } });
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

  it('answers 503 AUTH_UNAVAILABLE (retryable), not 401, while the key set answers 503', async () => {
    answer = 'unavailable';
    const response = await h.post({ userId: 'alice' }, { 'content-type': 'application/json', authorization: `Bearer ${await sign('alice')}` });
    expect(response.status).to.equal(503);
    expect(await response.json()).to.deep.equal({ error: { code: 'AUTH_UNAVAILABLE', message: 'authentication is unavailable, retry later' } });
  });

  it('refuses a plain-http key set URL, in the authenticator and in the configuration', () => {
    expect(() => createJwtAuthenticator({ jwksUrl: 'http://127.0.0.1/jwks.json' })).to.throw(/https/);
    expect(() => loadConfig('gateway', { MSG_AUTH_JWKS_URL: 'http://127.0.0.1/jwks.json' })).to.throw(/MSG_AUTH_JWKS_URL must be an https URL/);
  });
});

describe('gateway /connect authentication with an unreachable JWKS URL', () => {
  it('answers 503 AUTH_UNAVAILABLE (retryable), not 401, and hides the cause', async () => {
    const port = await freePort();
    const authenticator = createJwtAuthenticator({ jwksUrl: `https://127.0.0.1:${String(port)}/jwks.json` });
    const h = await startHarness({ env: {}, deps: { authenticator } });
    try {
      await h.addNode('node-a');
      const response = await h.post({ userId: 'alice' }, { 'content-type': 'application/json', authorization: `Bearer ${await hs256('alice')}` });
      expect(response.status).to.equal(503);
      expect(await response.json()).to.deep.equal({ error: { code: 'AUTH_UNAVAILABLE', message: 'authentication is unavailable, retry later' } });
    } finally {
      await h.close();
    }
  });
});
