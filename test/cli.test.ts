import { expect } from 'chai';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort, ManagedProcess, startCluster, type LocalCluster } from '@messaging-server/testkit';

const CLI = fileURLToPath(new URL('../packages/cli/dist/bin/messaging-server.js', import.meta.url));

function runCli(args: string[], env: Record<string, string>): ManagedProcess {
  return new ManagedProcess('cli', process.execPath, [CLI, ...args], { PATH: process.env['PATH'], ...env });
}

describe('messaging-server command line', function () {
  this.timeout(30_000);

  const invalid: [string, string][] = [
    ['MSG_PORT', 'not-a-port'],
    ['MSG_INTERNAL_PORT', '70000'],
    ['MSG_LEASE_TTL_SECONDS', '0'],
    ['MSG_PENDING_TTL_MS', '-5'],
    ['MSG_PUBLIC_URL', 'ftp://example'],
    ['MSG_ETCD_ENDPOINTS', 'a, b'],
    ['MSG_SESSION_CONFLICT', 'maybe'],
    ['MSG_LOG_LEVEL', 'loud'],
    ['MSG_RATE_BURST', '1.5'],
  ];
  for (const [name, value] of invalid) {
    it(`refuses to start with an invalid ${name}, naming it, and exits non-zero`, async () => {
      const kind = name === 'MSG_SESSION_CONFLICT' ? 'gateway' : 'node';
      const proc = runCli([kind], { [name]: value });
      const status = await proc.exited;
      expect(status.code).to.equal(78);
      const lines = proc.logs().trim().split('\n');
      expect(lines).to.have.length(1);
      expect(lines[0]).to.contain(name);
    });
  }

  it('reports every invalid variable at once', async () => {
    const proc = runCli(['node'], { MSG_PORT: 'x', MSG_PENDING_MAX: '0', MSG_LOG_LEVEL: 'loud' });
    expect((await proc.exited).code).to.equal(78);
    for (const name of ['MSG_PORT', 'MSG_PENDING_MAX', 'MSG_LOG_LEVEL']) expect(proc.logs()).to.contain(name);
  });

  it('takes every variable as a flag too, and rejects unknown flags with usage exit 2', async () => {
    const bad = runCli(['node', '--pending-max', '0'], {});
    expect((await bad.exited).code).to.equal(78);
    expect(bad.logs()).to.contain('MSG_PENDING_MAX');
    const unknown = runCli(['node', '--no-such-flag', '1'], {});
    expect((await unknown.exited).code).to.equal(2);
    expect(unknown.logs()).to.contain('--no-such-flag');
  });

  it('refuses to start a node in --production mode without a cluster secret', async () => {
    for (const [args, env] of [
      [['node', '--production'], {}],
      [['node'], { NODE_ENV: 'production' }],
    ] as const) {
      const proc = runCli([...args], { ...env });
      expect((await proc.exited).code, args.join(' ')).to.equal(78);
      expect(proc.logs()).to.contain('MSG_CLUSTER_SECRET');
    }
  });

  it('refuses to start a gateway in production mode without authentication, explicit origins and trusted proxies', async () => {
    const proc = runCli(['gateway'], { NODE_ENV: 'production' });
    expect((await proc.exited).code).to.equal(78);
    for (const name of ['MSG_AUTH_JWT_SECRET or MSG_AUTH_JWKS_URL', 'MSG_ALLOWED_ORIGINS', 'MSG_TRUSTED_PROXIES']) expect(proc.logs()).to.contain(name);
  });

  it('refuses to start a node or gateway in production mode with a weak secret, naming the variable, exit 78', async () => {
    const settled = { MSG_ALLOWED_ORIGINS: 'https://app.example.com', MSG_TRUSTED_PROXIES: '10.0.0.0/8', MSG_TURN_URLS: 'turn:turn.example.com' };
    const cases: [string, Record<string, string>, string][] = [
      ['node', { MSG_CLUSTER_SECRET: 'k' }, 'MSG_CLUSTER_SECRET'],
      ['gateway', { MSG_AUTH_JWT_SECRET: 'k', MSG_TURN_SECRET: 'q3Jm0v8Yt4ZkQe9Rw1Lx5Np7Hb2Cd6Fg8Sj0Ua3Vi5T=' }, 'MSG_AUTH_JWT_SECRET'],
      ['gateway', { MSG_AUTH_JWT_SECRET: 'q3Jm0v8Yt4ZkQe9Rw1Lx5Np7Hb2Cd6Fg8Sj0Ua3Vi5T=', MSG_TURN_SECRET: 'turn-secret' }, 'MSG_TURN_SECRET'],
    ];
    for (const [kind, secrets, name] of cases) {
      const proc = runCli([kind], { NODE_ENV: 'production', ...settled, ...secrets });
      expect((await proc.exited).code, name).to.equal(78);
      const lines = proc.logs().trim().split('\n');
      expect(lines, name).to.have.length(1);
      expect(lines[0]).to.contain(`${name} is too weak`);
    }
  });

  describe('with etcd and memcached', () => {
    let cluster: LocalCluster;
    before(async function () {
      this.timeout(60_000);
      cluster = await startCluster({ nodes: 1, gateways: 1 });
    });
    after(async () => cluster?.stop());

    it('refuses a node id already registered by a live process, with one line, exit 1', async () => {
      const [existing] = [...cluster.nodes.values()];
      if (!existing) throw new Error('no node');
      const env = cluster.baseEnv() as Record<string, string>;
      const proc = runCli(['node'], { ...env, MSG_NODE_ID: existing.nodeId, MSG_PORT: String(await freePort()), MSG_INTERNAL_PORT: String(await freePort()) });
      const status = await proc.exited;
      expect(status.code).to.equal(1);
      expect(proc.logs()).to.match(new RegExp(`${existing.nodeId}.*(already|registered)`, 'i'));
      expect(existing.process.running).to.equal(true);
    });

    it('exits non-zero with one line when its port is in use', async () => {
      const blocker = createServer().listen(0, '127.0.0.1');
      await new Promise((r) => blocker.once('listening', r));
      const address = blocker.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      try {
        const env = cluster.baseEnv() as Record<string, string>;
        const proc = runCli(['gateway'], { ...env, MSG_PORT: String(port) });
        const status = await proc.exited;
        expect(status.code).to.equal(1);
        expect(proc.logs()).to.contain('EADDRINUSE');
      } finally {
        blocker.close();
      }
    });
  });
});
