import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { EtcdRegistry, isBackendError, type LogFields, type Logger, type RegistryWatch } from '@messaging-server/core';
import {
  abandonRegistration,
  describeEntries,
  describeRegistryContract,
  nodeRecord,
  RegistryRecorder,
  startEtcd,
  uniquePrefix,
  waitFor,
  type EtcdServer,
} from '@messaging-server/testkit';

const TTL_SECONDS = 2;
const CHILD = fileURLToPath(new URL('./fixtures/registry-child.ts', import.meta.url));

let etcd: EtcdServer;

describe('Registry on etcd (one etcd for this file)', function () {
  before(async function () {
    this.timeout(30_000);
    etcd = await startEtcd();
  });
  after(async () => {
    await etcd.remove();
  });

  describeRegistryContract('etcd', async (prefix) => {
    const registry = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix, leaseTtlSeconds: TTL_SECONDS, dialTimeoutMs: 1000 });
    return {
      registry,
      leaseTtlSeconds: TTL_SECONDS,
      crash: (registration) => abandonRegistration(registry, registration),
      teardown: () => registry.close(),
    };
  });

  describe('EtcdRegistry with real etcd and real processes', function () {
    this.timeout(60_000);
    const cleanups: (() => Promise<unknown>)[] = [];

    beforeEach(async () => {
      if (!etcd.running) await etcd.restart();
    });
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });

    function registry(prefix: string, options: { endpoint?: string; logger?: Logger } = {}): EtcdRegistry {
      const created = new EtcdRegistry({
        endpoints: [options.endpoint ?? etcd.endpoint],
        prefix,
        leaseTtlSeconds: TTL_SECONDS,
        dialTimeoutMs: 1000,
        ...(options.logger ? { logger: options.logger } : {}),
      });
      cleanups.push(() => created.close());
      return created;
    }

    async function watch(target: EtcdRegistry, recorder: RegistryRecorder): Promise<RegistryWatch> {
      const handle = await target.watch(recorder.listener);
      cleanups.push(() => handle.close());
      return handle;
    }

    async function startChild(prefix: string, nodeId: string): Promise<{ child: Child; leaseId: string }> {
      const child = new Child([CHILD, etcd.endpoint, prefix, nodeId, String(TTL_SECONDS)]);
      cleanups.push(() => child.kill());
      const line = await waitFor(
        () => {
          if (!child.running) throw new Error(`${nodeId} exited: ${child.logs()}`);
          return /registered (\d+)/.exec(child.logs())?.[1];
        },
        { what: `${nodeId} registered`, timeoutMs: 20_000 },
      );
      return { child, leaseId: line };
    }

    it('a SIGKILLed owner leaves list() and the watch within TTL + 1 s', async () => {
      const prefix = uniquePrefix('sigkill');
      const observer = registry(prefix);
      const recorder = new RegistryRecorder();
      await watch(observer, recorder);
      const { child, leaseId } = await startChild(prefix, 'doomed');
      await waitFor(() => recorder.has('node', 'doomed') && recorder.has('load', 'doomed'), { what: 'child in the watch' });
      expect((await observer.list()).nodes.has('doomed')).to.equal(true);
      expect(await observer.leaseTimeToLive(leaseId)).to.be.above(0);

      const killedAt = Date.now();
      await child.kill();
      const limitMs = TTL_SECONDS * 1000 + 1000;
      await waitFor(async () => !(await observer.list()).nodes.has('doomed'), { what: 'gone from list', timeoutMs: limitMs + 500, intervalMs: 50 });
      const goneFromList = Date.now() - killedAt;
      await waitFor(() => !recorder.has('node', 'doomed') && !recorder.has('load', 'doomed'), { what: 'gone from watch', timeoutMs: 1000 });
      const goneFromWatch = Date.now() - killedAt;
      expect(goneFromList).to.be.below(limitMs);
      expect(goneFromWatch).to.be.below(limitMs);
      expect(await observer.leaseTimeToLive(leaseId)).to.equal(undefined);
    });

    it('one watch follows put/update/delete, an etcd outage with a death and a birth, and a compaction', async () => {
      const prefix = uniquePrefix('watch-outage');
      const proxy = await startProxy(etcd.clientPort);
      cleanups.push(() => proxy.close());
      const logger = new RecordingLogger();
      const watcherRegistry = registry(prefix, { endpoint: `http://127.0.0.1:${String(proxy.port)}`, logger });
      const writer = registry(prefix);
      const recorder = new RegistryRecorder();
      const watchHandle = await watch(watcherRegistry, recorder);

      // Put, update, delete, in order.
      const own = await writer.registerNode(nodeRecord('own'));
      await own.update(nodeRecord('own', { state: 'draining' }));
      await own.revoke();
      await waitFor(() => recorder.trail().length >= 3, { what: 'put, update, delete' });
      expect(recorder.trail()).to.deep.equal(['put node/own', 'put node/own', 'delete node/own']);

      // etcd goes away; a registered process dies meanwhile; etcd returns; another process registers.
      const dying = await startChild(prefix, 'dying');
      await waitFor(() => recorder.has('node', 'dying'), { what: 'dying registered' });
      await etcd.stop();
      await waitFor(() => recorder.trail().at(-1) === 'status false', { what: 'status false' });
      expect(watchHandle.synced).to.equal(false);
      await dying.child.kill();
      await etcd.restart();
      const newcomer = await startChild(prefix, 'newcomer');
      await waitFor(() => recorder.has('node', 'newcomer'), { what: 'newcomer put', timeoutMs: 10_000 });
      // etcd 3.4 restored the dead process's lease with a fresh TTL: its delete comes once that runs out.
      await waitFor(() => !recorder.has('node', 'dying') && !recorder.has('load', 'dying'), {
        what: 'dying deleted after its restored lease ran out',
        timeoutMs: TTL_SECONDS * 1000 + 3000,
      });
      await waitFor(() => watchHandle.synced, { what: 'synced again' });
      const afterOutage = recorder.trail().slice(3);
      expect(afterOutage).to.include.members(['put node/newcomer', 'delete node/dying', 'delete load/dying', 'status true']);
      expect(afterOutage.indexOf('status false')).to.be.below(afterOutage.indexOf('status true'));
      expect(recorder.describe()).to.deep.equal(describeEntries((await writer.list()).entries));

      // Cut only the watcher off, change things it cannot see, compact past its revision, reconnect it.
      const temp = await writer.registerNode(nodeRecord('temp'));
      await waitFor(() => recorder.has('node', 'temp'), { what: 'temp put' });
      proxy.pause();
      await waitFor(() => !watchHandle.synced, { what: 'watch cut off' });
      await temp.revoke();
      await writer.registerNode(nodeRecord('late'));
      await newcomer.child.kill();
      await waitFor(async () => !(await writer.list()).nodes.has('newcomer'), { what: 'newcomer expired', timeoutMs: 5000 });
      await etcd.compact();
      expect(recorder.has('node', 'temp'), 'the watcher has not seen the changes yet').to.equal(true);
      proxy.resume();
      await waitFor(() => watchHandle.synced, { what: 'watch back', timeoutMs: 10_000 });
      const expected = describeEntries((await writer.list()).entries);
      await waitFor(() => JSON.stringify(recorder.describe()) === JSON.stringify(expected), { what: 'view equals list()' });
      expect(expected.map((line) => line.split('=')[0])).to.deep.equal(['node/late']);
      expect(logger.messages()).to.include('registry watch resynchronised from a full read');
      expect(recorder.events.filter((event) => event.type === 'snapshot')).to.have.length(1);
    });

    it('lease loss: lost while etcd is away past the TTL, registered again on a live lease when it returns', async () => {
      const prefix = uniquePrefix('lease-loss');
      const owner = registry(prefix);
      const registration = await owner.registerNode(nodeRecord('survivor'));
      const oldLease = (await owner.list()).entries[0]?.leaseId;
      const recorder = new RegistryRecorder();
      await watch(registry(prefix), recorder);
      const events: string[] = [];
      registration.on('lost', () => events.push('lost'));
      registration.on('registered', () => events.push('registered'));

      await etcd.stop();
      const stoppedAt = Date.now();
      await waitFor(() => registration.state === 'lost', { what: 'lost', timeoutMs: TTL_SECONDS * 1000 + 2000 });
      expect(Date.now() - stoppedAt).to.be.below(TTL_SECONDS * 1000 + 1000);
      await registration.update(nodeRecord('survivor', { version: 'written-while-lost' }));
      await registration.putLoad({ connections: 5, pending: 1, updatedAt: new Date().toISOString() });
      let caught: unknown;
      const listStarted = Date.now();
      try {
        await owner.list();
      } catch (error) {
        caught = error;
      }
      expect(isBackendError(caught, 'REGISTRY_UNAVAILABLE'), String(caught)).to.equal(true);
      expect(Date.now() - listStarted).to.be.below(1500);

      await etcd.restart();
      await waitFor(() => registration.state === 'registered', { what: 'registered again', timeoutMs: 10_000 });
      expect(events).to.deep.equal(['lost', 'registered']);
      const list = await owner.list();
      expect(list.nodes.get('survivor')?.version).to.equal('written-while-lost');
      expect(list.loads.get('survivor')?.connections).to.equal(5);
      const newLease = list.entries.find((entry) => entry.kind === 'node')?.leaseId ?? '';
      expect(newLease).to.be.a('string').and.not.equal(oldLease);
      expect(list.entries.find((entry) => entry.kind === 'load')?.leaseId).to.equal(newLease);
      expect(await owner.leaseTimeToLive(oldLease ?? ''), 'the old lease was released').to.equal(undefined);
      // Kept alive: over more than two TTLs the key stays, on the same lease, with time left.
      for (let i = 0; i < 10; i++) {
        const ttl = await owner.leaseTimeToLive(newLease);
        expect(ttl, `ttl at sample ${String(i)}`).to.be.above(0);
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      // The key was taken over from the restored old lease, never deleted in between.
      expect(recorder.trail().filter((line) => line.startsWith('delete'))).to.deep.equal([]);
      const expectedView = JSON.stringify(describeEntries(list.entries));
      await waitFor(() => JSON.stringify(recorder.describe()) === expectedView, { what: 'watch view equals list()' });
      const later = await owner.list();
      expect(later.entries.find((entry) => entry.kind === 'node')?.leaseId).to.equal(newLease);
      expect(registration.state).to.equal('registered');
    });

    it('a write rejected during an etcd blip is still written once etcd answers again', async () => {
      const prefix = uniquePrefix('blip');
      const owner = registry(prefix);
      const registration = await owner.registerNode(nodeRecord('blip'));
      await etcd.stop();
      let caught: unknown;
      try {
        await registration.update(nodeRecord('blip', { state: 'draining' }));
      } catch (error) {
        caught = error;
      }
      expect(isBackendError(caught, 'REGISTRY_UNAVAILABLE'), String(caught)).to.equal(true);
      expect(registration.record.state).to.equal('draining');
      await etcd.restart();
      await waitFor(async () => (await owner.list()).nodes.get('blip')?.state === 'draining', { what: 'remembered write', timeoutMs: 8000 });
      await waitFor(() => registration.state === 'registered', { what: 'registered' });
    });

    it('fails fast with REGISTRY_UNAVAILABLE when etcd is down, and works again when it is back', async () => {
      const prefix = uniquePrefix('down');
      const client = registry(prefix);
      await etcd.stop();
      for (const attempt of [() => client.registerNode(nodeRecord('x')), () => client.list(), () => client.watch(() => undefined)]) {
        const started = Date.now();
        let caught: unknown;
        try {
          await attempt();
        } catch (error) {
          caught = error;
        }
        expect(isBackendError(caught, 'REGISTRY_UNAVAILABLE'), String(caught)).to.equal(true);
        expect(Date.now() - started).to.be.below(1500);
      }
      await etcd.restart();
      const registration = await waitFor(async () => client.registerNode(nodeRecord('x')), { what: 'register after restart', timeoutMs: 5000 });
      expect((await client.list()).nodes.has('x')).to.equal(true);
      await registration.revoke();
    });
  });

});

/** A registry-child.ts process; its exit is always awaited (PID 1 here does not reap orphans). */
class Child {
  private output = '';
  private exitedFlag = false;
  private readonly exited: Promise<void>;
  private readonly proc;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (chunk: Buffer): void => {
      this.output += chunk.toString();
    };
    this.proc.stdout.on('data', collect);
    this.proc.stderr.on('data', collect);
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', () => {
        this.exitedFlag = true;
        resolve();
      });
    });
  }

  get running(): boolean {
    return !this.exitedFlag;
  }

  logs(): string {
    return this.output;
  }

  async kill(): Promise<void> {
    if (this.running) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

class RecordingLogger implements Logger {
  readonly lines: { level: string; message: string; fields: LogFields }[] = [];
  debug(fields: LogFields, message: string): void {
    this.lines.push({ level: 'debug', message, fields });
  }
  info(fields: LogFields, message: string): void {
    this.lines.push({ level: 'info', message, fields });
  }
  warn(fields: LogFields, message: string): void {
    this.lines.push({ level: 'warn', message, fields });
  }
  error(fields: LogFields, message: string): void {
    this.lines.push({ level: 'error', message, fields });
  }
  child(): Logger {
    return this;
  }
  messages(): string[] {
    return this.lines.map((line) => line.message);
  }
}

/** A TCP relay to etcd that can cut its clients off (while etcd itself stays up). */
async function startProxy(targetPort: number): Promise<{ port: number; pause(): void; resume(): void; close(): Promise<void> }> {
  let paused = false;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (paused) {
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    port,
    pause() {
      paused = true;
      for (const socket of sockets) socket.destroy();
      sockets.clear();
    },
    resume() {
      paused = false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
