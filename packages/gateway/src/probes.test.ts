import { expect } from 'chai';
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { waitFor } from '@messaging-server/testkit';
import { startHarness, type Harness } from './harness.test.js';

const get = (url: string): Promise<Response> => fetch(url, { signal: AbortSignal.timeout(5000) });

/** fetch normalises `..` away, so traversal attempts go out raw. */
function rawGet(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'GET', timeout: 5000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.path = path;
    req.on('error', reject);
    req.end();
  });
}

describe('gateway health, readiness and metrics', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
    await h.addNode('node-a');
  });
  afterEach(async () => h.close());

  it('registers gateways/<gatewayId> in the registry', async () => {
    const { gateways } = await h.registry.list();
    const id = h.server.gateway.gatewayId ?? '';
    expect(id).to.match(new RegExp(`^gw-.+-${String(h.server.port)}$`));
    expect(gateways.get(id)).to.include({ gatewayId: id, version: 'test' });
    expect(gateways.get(id)?.address).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('revokes its registration on close', async () => {
    const id = h.server.gateway.gatewayId ?? '';
    await h.server.close();
    const { gateways } = await h.registry.list();
    expect(gateways.has(id)).to.equal(false);
  });

  it('/healthz is 200 even with the registry and the store down', async () => {
    h.registryControl.setAvailable(false);
    h.store.mode = 'hang';
    const started = Date.now();
    const response = await get(`${h.url}/healthz`);
    expect(response.status).to.equal(200);
    expect(Date.now() - started).to.be.below(500);
    h.registryControl.setAvailable(true);
  });

  it('/readyz is 200 when synced and the store answers', async () => {
    expect(h.server.gateway.ready).to.equal(true);
    const response = await get(`${h.url}/readyz`);
    expect(response.status).to.equal(200);
    expect(await response.json()).to.deep.equal({ status: 'ready' });
  });

  it('/readyz is 503 while the registry watch is not synced, and 200 again after', async () => {
    h.registryControl.setAvailable(false);
    await waitFor(() => !h.server.gateway.ready, { what: 'gateway not ready' });
    const response = await get(`${h.url}/readyz`);
    expect(response.status).to.equal(503);
    expect(await response.json()).to.deep.equal({ status: 'not_ready', reasons: ['registry_not_synced'] });
    h.registryControl.setAvailable(true);
    await waitFor(async () => (await get(`${h.url}/readyz`)).status === 200, { what: 'ready again' });
  });

  it('/readyz is 503 within about a second when the store hangs, then cached', async () => {
    h.store.mode = 'hang';
    // The previous probe result may still be cached for up to 1 s.
    const response = await waitFor(async () => {
      const r = await get(`${h.url}/readyz`);
      return r.status === 503 ? r : undefined;
    }, { timeoutMs: 3000, what: 'not ready' });
    expect(await response.json()).to.deep.equal({ status: 'not_ready', reasons: ['session_store_unreachable'] });
    const started = Date.now();
    expect((await get(`${h.url}/readyz`)).status).to.equal(503);
    expect(Date.now() - started).to.be.below(1200);
    h.store.mode = 'up';
    await waitFor(async () => (await get(`${h.url}/readyz`)).status === 200, { timeoutMs: 3000, what: 'ready again' });
  });

  it('/metrics exposes the msg_* metrics in Prometheus text', async () => {
    await h.connect('alice');
    await h.post('x', { 'content-type': 'text/plain' });
    h.store.mode = 'fail';
    await h.connect('bob');
    const response = await get(`${h.url}/metrics`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.match(/^text\/plain/);
    const text = await response.text();
    expect(text).to.include('msg_connect_requests_total{result="ok"} 1');
    expect(text).to.include('msg_connect_requests_total{result="UNSUPPORTED_MEDIA_TYPE"} 1');
    expect(text).to.include('msg_connect_requests_total{result="SESSION_STORE_UNAVAILABLE"} 1');
    expect(text).to.include('msg_session_store_errors_total 1');
    expect(text).to.include('msg_connect_latency_seconds_count{result="ok"} 1');
    expect(text).to.include('msg_registry_synced 1');
    expect(text).to.include('msg_nodes{state="active"} 1');
    expect(text).to.include('msg_nodes{state="draining"} 0');
  });
});

describe('gateway process default metrics', () => {
  it('includes process metrics unless turned off', async () => {
    const h = await startHarness({ deps: { defaultMetrics: true } });
    try {
      const text = await (await get(`${h.url}/metrics`)).text();
      expect(text).to.include('process_cpu_user_seconds_total');
    } finally {
      await h.close();
    }
  });
});

describe('gateway demo page and static files', () => {
  let dir: string;
  let h: Harness;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gw-public-'));
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'app.js'), 'console.log(1)');
    await writeFile(join(dir, 'style.css'), 'body{}');
    await writeFile(join(dir, 'sub', 'data.json'), '{}');
    await writeFile(join(dir, '.secret'), 'x');
  });
  after(async () => rm(dir, { recursive: true, force: true }));
  afterEach(async () => h.close());

  it('serves a built-in page at / without a public directory', async () => {
    h = await startHarness();
    const response = await get(`${h.url}/`);
    expect(response.status).to.equal(200);
    expect(response.headers.get('content-type')).to.equal('text/html; charset=utf-8');
    expect(await response.text()).to.include('<form');
    expect((await get(`${h.url}/static/app.js`)).status).to.equal(404);
  });

  it('serves index.html and /static files from the public directory with their types', async () => {
    await writeFile(join(dir, 'index.html'), '<p>custom</p>');
    h = await startHarness({ deps: { publicDir: dir } });
    expect(await (await get(`${h.url}/`)).text()).to.equal('<p>custom</p>');
    const js = await get(`${h.url}/static/app.js`);
    expect(js.headers.get('content-type')).to.equal('text/javascript; charset=utf-8');
    expect(await js.text()).to.equal('console.log(1)');
    expect((await get(`${h.url}/static/style.css`)).headers.get('content-type')).to.equal('text/css; charset=utf-8');
    expect((await get(`${h.url}/static/sub/data.json`)).headers.get('content-type')).to.match(/^application\/json/);
    expect((await get(`${h.url}/static/missing.js`)).status).to.equal(404);
    expect((await get(`${h.url}/static/sub`)).status).to.equal(404);
    expect((await get(`${h.url}/static/.secret`)).status).to.equal(404);
  });

  it('does not serve files outside the public directory or hidden files', async () => {
    h = await startHarness({ deps: { publicDir: join(dir, 'sub') } });
    expect(await rawGet(h.url, '/static/data.json')).to.equal(200);
    for (const path of ['/static/../app.js', '/static/%2e%2e/app.js', '/static/..%2fapp.js', '/static/sub/../../app.js', '/static/%2Fetc%2Fpasswd']) {
      expect(await rawGet(h.url, path), path).to.equal(404);
    }
  });
});
