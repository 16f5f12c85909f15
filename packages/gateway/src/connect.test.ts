import { expect } from 'chai';
import { request } from 'node:http';
import { startHarness, type Harness } from './harness.test.js';

async function errorOf(response: Response): Promise<{ status: number; code: unknown; message: unknown }> {
  const body = (await response.json()) as { error?: { code?: unknown; message?: unknown } };
  return { status: response.status, code: body.error?.code, message: body.error?.message };
}

/** Sends a chunked body (no content-length) so only the stream limit can stop it. */
function postChunked(url: string, contentType: string, chunks: Buffer[]): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/connect`, { method: 'POST', headers: { 'content-type': contentType }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('gateway POST /connect', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    await h.addNode('node-a');
  });
  afterEach(async () => h.close());

  it('answers 200 with a session and stores it un-acked', async () => {
    const { status, body } = await h.connect('alice');
    expect(status).to.equal(200);
    expect(Object.keys(body).sort()).to.deep.equal(['acked', 'listeningAddress', 'listeningKey', 'nodeId', 'userId']);
    expect(body).to.include({ userId: 'alice', acked: false, nodeId: 'node-a', listeningAddress: 'http://127.0.0.1:1/node-a/ws' });
    expect(body['listeningKey']).to.match(/^[A-Za-z0-9_-]{43}$/);
    const stored = await h.store.inner.get('alice');
    expect(stored).to.include({ userId: 'alice', acked: false, nodeId: 'node-a', listeningKey: body['listeningKey'] });
    expect(Date.parse(stored?.createdAt ?? '')).to.be.closeTo(Date.now(), 5000);
  });

  it('gives every session a different key', async () => {
    const first = await h.connect('alice');
    const second = await h.connect('bob');
    expect(first.body['listeningKey']).to.not.equal(second.body['listeningKey']);
  });

  it('accepts the seed form body', async () => {
    const response = await h.post('userId=alice', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(response.status).to.equal(200);
    expect(await response.json()).to.include({ userId: 'alice', nodeId: 'node-a' });
  });

  it('accepts JSON with a charset parameter', async () => {
    const response = await h.post({ userId: 'alice' }, { 'content-type': 'application/json; charset=utf-8' });
    expect(response.status).to.equal(200);
  });

  it('400 INVALID_REQUEST for an empty body without a content type', async () => {
    expect(await errorOf(await h.post(undefined))).to.include({ status: 400, code: 'INVALID_REQUEST' });
  });

  it('400 INVALID_REQUEST for an empty JSON body', async () => {
    expect(await errorOf(await h.post('', { 'content-type': 'application/json' }))).to.include({ status: 400, code: 'INVALID_REQUEST' });
  });

  it('400 INVALID_REQUEST for garbled JSON', async () => {
    const response = await h.post('{"userId": "al', { 'content-type': 'application/json' });
    expect(await errorOf(response)).to.include({ status: 400, code: 'INVALID_REQUEST' });
  });

  it('400 INVALID_REQUEST for a JSON array or a missing userId', async () => {
    expect(await errorOf(await h.post('[]', { 'content-type': 'application/json' }))).to.include({ code: 'INVALID_REQUEST' });
    expect(await errorOf(await h.post({ user: 'alice' }, { 'content-type': 'application/json' }))).to.include({
      status: 400,
      code: 'INVALID_REQUEST',
    });
    expect(await errorOf(await h.post('user=alice', { 'content-type': 'application/x-www-form-urlencoded' }))).to.include({
      status: 400,
      code: 'INVALID_REQUEST',
    });
  });

  it('400 INVALID_REQUEST for a malformed avoid list', async () => {
    const response = await h.post({ userId: 'alice', avoid: 'node-a' }, { 'content-type': 'application/json' });
    expect(await errorOf(response)).to.include({ status: 400, code: 'INVALID_REQUEST' });
  });

  for (const userId of ['', 'a b', 'x'.repeat(129), 'alice/bob', 'é', 42]) {
    it(`400 INVALID_USER_ID for ${JSON.stringify(userId).slice(0, 20)}`, async () => {
      const response = await h.post({ userId }, { 'content-type': 'application/json' });
      expect(await errorOf(response)).to.include({ status: 400, code: 'INVALID_USER_ID' });
    });
  }

  it('accepts every allowed userId character and 128 characters', async () => {
    expect((await h.connect('A-z.0_9~@x')).status).to.equal(200);
    expect((await h.connect('u'.repeat(128))).status).to.equal(200);
  });

  it('415 UNSUPPORTED_MEDIA_TYPE for other content types', async () => {
    expect(await errorOf(await h.post('userId=alice', { 'content-type': 'text/plain' }))).to.include({
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
    expect(await errorOf(await h.post('<x/>', { 'content-type': 'application/xml' }))).to.include({ status: 415 });
  });

  it('accepts a body of exactly 4096 bytes and answers 413 at 4097', async () => {
    const base = JSON.stringify({ userId: 'alice', pad: '' });
    const exact = JSON.stringify({ userId: 'alice', pad: 'x'.repeat(4096 - base.length) });
    expect(Buffer.byteLength(exact)).to.equal(4096);
    expect((await h.post(exact, { 'content-type': 'application/json' })).status).to.equal(200);
    const over = JSON.stringify({ userId: 'alice', pad: 'x'.repeat(4097 - base.length) });
    expect(await errorOf(await h.post(over, { 'content-type': 'application/json' }))).to.include({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
  });

  it('413 for a chunked body without content-length once it passes 4 KiB', async () => {
    const chunks = Array.from({ length: 64 }, () => Buffer.alloc(1024, 'x'));
    const { status, body } = await postChunked(h.url, 'application/json', [Buffer.from('{"userId":"alice","pad":"'), ...chunks]);
    expect(status).to.equal(413);
    expect(JSON.parse(body)).to.deep.equal({ error: { code: 'PAYLOAD_TOO_LARGE', message: 'body exceeds 4096 bytes' } });
  });

  it('503 NO_NODE_AVAILABLE when no node is active', async () => {
    await h.setState('node-a', 'draining');
    expect(await errorOf(await h.post({ userId: 'alice' }, { 'content-type': 'application/json' }))).to.include({
      status: 503,
      code: 'NO_NODE_AVAILABLE',
    });
    await h.removeNode('node-a');
    expect((await h.connect('alice')).status).to.equal(503);
  });

  it('503 SESSION_STORE_UNAVAILABLE within 1.2 s when the store hangs', async () => {
    h.store.mode = 'hang';
    const started = Date.now();
    const response = await h.post({ userId: 'alice' }, { 'content-type': 'application/json' });
    const elapsed = Date.now() - started;
    expect(await errorOf(response)).to.include({ status: 503, code: 'SESSION_STORE_UNAVAILABLE' });
    expect(elapsed).to.be.below(1200);
  });

  it('503 SESSION_STORE_UNAVAILABLE at once when the store fails, and recovers', async () => {
    h.store.mode = 'fail';
    const body = await errorOf(await h.post({ userId: 'alice' }, { 'content-type': 'application/json' }));
    expect(body).to.include({ status: 503, code: 'SESSION_STORE_UNAVAILABLE' });
    expect(String(body.message)).to.not.include('memcached');
    h.store.mode = 'up';
    expect((await h.connect('alice')).status).to.equal(200);
  });

  it('answers errors as JSON and unknown paths with 404 NOT_FOUND', async () => {
    const response = await fetch(`${h.url}/nope`, { signal: AbortSignal.timeout(5000) });
    expect(response.headers.get('content-type')).to.match(/^application\/json/);
    expect(await errorOf(response)).to.include({ status: 404, code: 'NOT_FOUND' });
    const wrongMethod = await fetch(`${h.url}/connect`, { signal: AbortSignal.timeout(5000) });
    expect(wrongMethod.status).to.equal(405);
    expect(wrongMethod.headers.get('allow')).to.equal('POST, OPTIONS');
  });

  it('allows any origin on /connect and answers the preflight', async () => {
    const response = await h.post({ userId: 'alice' }, { 'content-type': 'application/json', origin: 'http://example.test' });
    expect(response.headers.get('access-control-allow-origin')).to.equal('*');
    const failed = await h.post('x', { 'content-type': 'text/plain', origin: 'http://example.test' });
    expect(failed.headers.get('access-control-allow-origin')).to.equal('*');
    const preflight = await fetch(`${h.url}/connect`, {
      method: 'OPTIONS',
      headers: { origin: 'http://example.test', 'access-control-request-method': 'POST' },
      signal: AbortSignal.timeout(5000),
    });
    expect(preflight.status).to.equal(204);
    expect(preflight.headers.get('access-control-allow-methods')).to.include('POST');
    expect(preflight.headers.get('access-control-allow-headers')).to.include('content-type');
  });

  it('echoes a given x-request-id and generates one otherwise', async () => {
    const given = await h.post({ userId: 'alice' }, { 'content-type': 'application/json', 'x-request-id': 'req-123' });
    expect(given.headers.get('x-request-id')).to.equal('req-123');
    const generated = await h.post({ userId: 'bob' }, { 'content-type': 'application/json' });
    expect(generated.headers.get('x-request-id')).to.match(/^[0-9a-f-]{36}$/);
  });

  it('marks the answer as not cacheable', async () => {
    const response = await h.post({ userId: 'alice' }, { 'content-type': 'application/json' });
    expect(response.headers.get('cache-control')).to.equal('no-store');
  });
});
