// Issue 28: the per-IP /connect limit holds across gateways. Two gateway processes share one real memcached; one
// client address spread over both gets the limit once, not once per gateway (before: a bucket per process, so N
// gateways let an address make N × the limit). With memcached gone the limit fails open to each gateway's own bucket
// and says so in a metric, instead of blocking /connect on the store.
import { expect } from 'chai';
import { startCluster, type LocalCluster } from '@messaging-server/testkit';

const LIMIT = 6;

async function connect(gatewayUrl: string, userId: string, ip: string): Promise<Response> {
  return fetch(`${gatewayUrl}/connect`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': ip },
    body: JSON.stringify({ userId }),
    signal: AbortSignal.timeout(5000),
  });
}

/** Waits out the end of a minute, so the counts below fall in one fixed window. */
async function startOfAWindow(): Promise<void> {
  const intoMinute = Date.now() % 60_000;
  if (intoMinute > 45_000) await new Promise((resolve) => setTimeout(resolve, 60_000 - intoMinute + 100));
}

describe('the per-IP /connect limit across gateways (issue 28)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({
      nodes: 1,
      gateways: 2,
      gatewayEnv: { MSG_CONNECT_RATE_PER_IP_PER_MINUTE: String(LIMIT), MSG_TRUSTED_PROXIES: '127.0.0.1' },
    });
  });
  after(async () => {
    await cluster?.stop();
  });

  it('lets one address make the limit in total over two gateways, then refuses it at both', async function () {
    const [a, b] = cluster.gateways.map((g) => g.url) as [string, string];
    await startOfAWindow();
    const statuses: number[] = [];
    for (let i = 0; i < LIMIT; i += 1) statuses.push((await connect(i % 2 === 0 ? a : b, `spread-${String(i)}`, '198.51.100.7')).status);
    expect(statuses).to.deep.equal(Array.from({ length: LIMIT }, () => 200));
    for (const url of [a, b]) {
      const refused = await connect(url, 'one-more', '198.51.100.7');
      expect(refused.status, url).to.equal(429);
      expect(Number(refused.headers.get('retry-after'))).to.be.within(1, 60);
      expect(await refused.json()).to.deep.include({ error: { code: 'RATE_LIMITED', message: 'too many /connect requests from this address' } });
    }
    // Another address has its own count.
    expect((await connect(b, 'elsewhere', '198.51.100.8')).status).to.equal(200);
  });

  it('fails open to each gateway’s own bucket when memcached is gone, and counts it', async function () {
    const [a] = cluster.gateways.map((g) => g.url) as [string];
    const metric = async (): Promise<number> => Number(/^msg_connect_limit_fallbacks_total (\d+)/m.exec(await (await fetch(`${a}/metrics`)).text())?.[1] ?? NaN);
    expect(await metric()).to.equal(0);
    await cluster.memcached?.stop();
    // Not 429: the address's own bucket on this gateway is untouched (the session store being gone is another answer).
    const response = await connect(a, 'while-down', '198.51.100.9');
    expect(response.status).to.not.equal(429);
    expect(await metric()).to.equal(1);
  });
});
