import { expect } from 'chai';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectUser, isProcessAlive, waitFor } from '@messaging-server/testkit';

const execFileAsync = promisify(execFile);
const ROOT = new URL('..', import.meta.url);

interface NodeStatus {
  nodeId: string;
  pid: number;
  state?: string;
  connections?: number | null;
}
interface Status {
  nodes: NodeStatus[];
  registry: string;
  registered: string[];
  etcd: { running: boolean };
  memcached: { running: boolean };
}


/** Issue 5: the local cluster manager starts a cluster, scales it, drains or kills named nodes, and stops. */
describe('local cluster manager (scripts/cluster.ts)', function () {
  this.timeout(120_000);
  let stateDir: string;
  let child: ChildProcess;
  let exited: Promise<unknown>;
  let output = '';
  let env: NodeJS.ProcessEnv;
  const seenPids = new Set<number>();

  /** Runs a manager command the way a user does, from another process. */
  async function cli(...args: string[]): Promise<{ code: number; body: unknown }> {
    try {
      const { stdout } = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', ...args], { cwd: ROOT, env, timeout: 60_000 });
      return { code: 0, body: JSON.parse(stdout) };
    } catch (error) {
      const e = error as { code: number; stdout: string };
      return { code: e.code, body: e.stdout ? JSON.parse(e.stdout) : undefined };
    }
  }

  /** The same commands straight at the control port (what `cli` does underneath, minus a process start). */
  async function control(...args: string[]): Promise<unknown> {
    const state = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as { controlUrl: string };
    const res = await fetch(`${state.controlUrl}/${args.join('/')}`, { method: 'POST', signal: AbortSignal.timeout(60_000) });
    return res.json();
  }

  async function status(): Promise<Status> {
    const body = (await control('status')) as Status;
    for (const n of body.nodes) seenPids.add(n.pid);
    return body;
  }

  before(async () => {
    stateDir = mkdtempSync(join(tmpdir(), 'cluster-manager-'));
    env = { ...process.env, CLUSTER_PORTS: 'auto', CLUSTER_NODES: '1', CLUSTER_STATE_DIR: stateDir, MSG_LEASE_TTL_SECONDS: '2' };
    child = spawn(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', 'run'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    exited = once(child, 'exit');
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    await waitFor(() => /^ready: /m.test(output), { timeoutMs: 60_000, what: `the ready line in:\n${output}` });
  });

  after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await exited;
    }
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('refuses a second `run` while one is alive, and rejects bad arguments with exit 2', async () => {
    const second = await execFileAsync(process.execPath, ['--import', 'tsx', 'scripts/cluster.ts', 'run'], { cwd: ROOT, env }).catch((e: unknown) => e as { code: number; stderr: string });
    expect((second as { code: number }).code).to.equal(1);
    expect((second as { stderr: string }).stderr).to.match(/already running/);
    const bad = await cli('scale', 'many');
    expect(bad.code).to.equal(2);
    expect(JSON.stringify(bad.body)).to.match(/integer/);
    expect((await cli('drain', 'node-99')).code).to.equal(1);
  });

  it('scales out; the registry shows every node active, and a client connects through the gateway', async () => {
    const scaled = await cli('scale', '3');
    expect(scaled.code, JSON.stringify(scaled.body)).to.equal(0);
    const s = await waitFor(
      async () => {
        const now = await status();
        return now.nodes.length === 3 && now.nodes.every((n) => n.state === 'active') ? now : undefined;
      },
      { timeoutMs: 10_000, what: '3 active nodes in the registry' },
    );
    expect(s.nodes.map((n) => n.nodeId)).to.deep.equal(['node-1', 'node-2', 'node-3']);
    const gatewayUrl = /demo (http:\/\/\S+)\//.exec(output)?.[1] as string;
    const alice = await connectUser(gatewayUrl, 'manager-alice');
    alice.socket.close();
  });

  it('kills a named node (gone from the registry within the lease) and drains another (exit 0)', async () => {
    expect(await control('kill', 'node-1')).to.deep.equal({ nodeId: 'node-1', killed: true });
    expect(await control('drain', 'node-2')).to.deep.equal({ nodeId: 'node-2', exit: 0 });
    const s = await status();
    expect(s.nodes.map((n) => n.nodeId)).to.deep.equal(['node-3']);
    await waitFor(async () => (await status()).registered.join() === 'node-3', { timeoutMs: 10_000, what: 'node-1 gone from the registry' });
    await waitFor(
      async () => {
        const state = JSON.parse(readFileSync(join(stateDir, 'cluster.json'), 'utf8')) as { nodes: unknown[] };
        return state.nodes.length === 1;
      },
      { what: 'the state file to list one node' },
    );
    expect(output).to.match(/node-1 exited \(SIGKILL\)/);
    expect(output).to.match(/node-2 exited \(code 0\)/);
  });

  it('takes etcd and memcached away and brings them back', async () => {
    expect(await control('etcd', 'stop')).to.deep.equal({ etcd: 'stopped' });
    const down = await status();
    expect(down.registry).to.match(/unavailable/);
    expect(down.etcd.running).to.equal(false);
    expect(await control('etcd', 'start')).to.deep.equal({ etcd: 'running' });
    expect(await control('memcached', 'restart')).to.deep.equal({ memcached: 'running' });
    // The surviving node registers again without a restart.
    await waitFor(async () => (await status()).nodes[0]?.state === 'active', { timeoutMs: 15_000, what: 'node-3 registered again' });
  });

  it('stops everything on `stop`', async () => {
    await status();
    const stopped = await cli('stop');
    expect(stopped.body).to.deep.equal({ stopping: true });
    await exited;
    expect(output).to.match(/^stopped$/m);
    for (const pid of seenPids) expect(isProcessAlive(pid), `pid ${String(pid)}`).to.equal(false);
  });
});
