import { expect } from 'chai';
import {
  isBackendError,
  type GatewayRegistration,
  type NodeRegistration,
  type Registry,
  type RegistryEntry,
  type RegistryEvent,
  type RegistryKind,
  type RegistryWatch,
} from '@messaging-server/core';
import type { GatewayRecord, LoadRecord, NodeRecord } from '@messaging-server/protocol';
import { uniquePrefix } from './etcd-server.js';
import { waitFor } from './wait-for.js';
import { asNodeId } from '@messaging-server/protocol';

export interface RegistryContractTarget {
  registry: Registry;
  leaseTtlSeconds: number;
  /** The owner dies without revoking (keepalive stops): its keys must vanish within one TTL. */
  crash(registration: NodeRegistration | GatewayRegistration): void | Promise<void>;
  teardown(): Promise<void>;
}

/** Builds a registry whose keys all live under `prefix` (unique per test). */
export type RegistryContractFactory = (prefix: string) => Promise<RegistryContractTarget>;

export function nodeRecord(nodeId: string, overrides: Partial<NodeRecord> = {}): NodeRecord {
  return {
    nodeId: asNodeId(nodeId),
    listeningAddress: `http://127.0.0.1:9000/${nodeId}`,
    internalAddress: `http://127.0.0.1:9100/${nodeId}`,
    state: 'active',
    startedAt: new Date().toISOString(),
    version: '0.1.0',
    ...overrides,
  };
}

export function gatewayRecord(gatewayId: string, overrides: Partial<GatewayRecord> = {}): GatewayRecord {
  return { gatewayId, address: `http://127.0.0.1:8000/${gatewayId}`, startedAt: new Date().toISOString(), version: '0.1.0', ...overrides };
}

export function loadRecord(connections: number): LoadRecord {
  return { connections, pending: 0, updatedAt: new Date().toISOString() };
}

/**
 * A watch listener that keeps "snapshot + events" as a view and the event log, for assertions. Pass
 * `recorder.listener` to `registry.watch`.
 */
export class RegistryRecorder {
  readonly events: RegistryEvent[] = [];
  readonly view = new Map<string, RegistryEntry>();
  readonly listener = (event: RegistryEvent): void => {
    this.events.push(event);
    if (event.type === 'snapshot') {
      this.view.clear();
      for (const entry of event.entries) this.view.set(`${entry.kind}/${entry.id}`, entry);
    } else if (event.type === 'put') {
      this.view.set(`${event.entry.kind}/${event.entry.id}`, event.entry);
    } else if (event.type === 'delete') {
      this.view.delete(`${event.kind}/${event.id}`);
    }
  };

  has(kind: RegistryKind, id: string): boolean {
    return this.view.has(`${kind}/${id}`);
  }

  /** Events after the snapshot, as short strings: `put node/a`, `delete load/a`, `status false`. */
  trail(): string[] {
    return this.events.flatMap((event) => {
      if (event.type === 'put') return [`put ${event.entry.kind}/${event.entry.id}`];
      if (event.type === 'delete') return [`delete ${event.kind}/${event.id}`];
      if (event.type === 'status') return [`status ${String(event.synced)}`];
      return [];
    });
  }

  /** The view as sorted `kind/id=json` strings, comparable with `describeEntries(list.entries)`. */
  describe(): string[] {
    return describeEntries([...this.view.values()]);
  }
}

export function describeEntries(entries: RegistryEntry[]): string[] {
  return entries.map((entry) => `${entry.kind}/${entry.id}=${JSON.stringify(entry.value)}`).sort();
}

/**
 * The Registry contract (packages/core/src/registry.ts) as a mocha suite, run against every implementation:
 * the memory registry in unit tests and real etcd in test/registry-etcd.test.ts.
 */
export function describeRegistryContract(name: string, factory: RegistryContractFactory): void {
  describe(`Registry contract: ${name}`, function () {
    this.timeout(20_000);
    let target: RegistryContractTarget;
    let registry: Registry;
    const watches: RegistryWatch[] = [];

    beforeEach(async function () {
      target = await factory(uniquePrefix(this.currentTest?.title ?? 'registry'));
      registry = target.registry;
    });
    afterEach(async () => {
      for (const watch of watches.splice(0)) await watch.close();
      await target.teardown();
    });

    async function watchWith(recorder: RegistryRecorder): Promise<RegistryWatch> {
      const watch = await registry.watch(recorder.listener);
      watches.push(watch);
      return watch;
    }

    it('starts empty: list and the watch snapshot have no entries', async () => {
      const list = await registry.list();
      expect(list.entries).to.deep.equal([]);
      expect(list.nodes.size + list.loads.size + list.gateways.size).to.equal(0);
      const recorder = new RegistryRecorder();
      await watchWith(recorder);
      expect(recorder.events).to.deep.equal([{ type: 'snapshot', entries: [] }]);
    });

    it('registers a node and a gateway under leases that list() reports', async () => {
      const node = await registry.registerNode(nodeRecord('n1'));
      const gateway = await registry.registerGateway(gatewayRecord('g1'));
      expect(node.state).to.equal('registered');
      expect(node.id).to.equal('n1');
      expect(gateway.id).to.equal('g1');
      const list = await registry.list();
      expect(list.nodes.get('n1')).to.deep.equal(nodeRecord('n1', { startedAt: node.record.startedAt }));
      expect(list.gateways.get('g1')?.gatewayId).to.equal('g1');
      const nodeEntry = list.entries.find((entry) => entry.kind === 'node' && entry.id === 'n1');
      const gatewayEntry = list.entries.find((entry) => entry.kind === 'gateway');
      expect(nodeEntry?.leaseId).to.be.a('string');
      expect(gatewayEntry?.leaseId).to.be.a('string').and.not.equal(nodeEntry?.leaseId);
      const ttl = await registry.leaseTimeToLive(nodeEntry?.leaseId ?? '');
      expect(ttl).to.be.a('number').within(1, target.leaseTtlSeconds);
    });

    it('refuses a second registration of a live id and leaves the first intact', async () => {
      const first = await registry.registerNode(nodeRecord('dup', { version: 'first' }));
      let caught: unknown;
      try {
        await registry.registerNode(nodeRecord('dup', { version: 'second' }));
      } catch (error) {
        caught = error;
      }
      expect(isBackendError(caught, 'ALREADY_REGISTERED'), String(caught)).to.equal(true);
      expect((await registry.list()).nodes.get('dup')?.version).to.equal('first');
      expect(first.state).to.equal('registered');
      await first.revoke();
      const again = await registry.registerNode(nodeRecord('dup', { version: 'third' }));
      expect((await registry.list()).nodes.get('dup')?.version).to.equal('third');
      await again.revoke();
    });

    it('refuses a duplicate gateway id too', async () => {
      await registry.registerGateway(gatewayRecord('gdup'));
      let caught: unknown;
      try {
        await registry.registerGateway(gatewayRecord('gdup'));
      } catch (error) {
        caught = error;
      }
      expect(isBackendError(caught, 'ALREADY_REGISTERED'), String(caught)).to.equal(true);
    });

    it('writes load on the node lease, and update() replaces the record', async () => {
      const node = await registry.registerNode(nodeRecord('n2'));
      await node.putLoad(loadRecord(7));
      await node.update(nodeRecord('n2', { state: 'draining' }));
      expect(node.record.state).to.equal('draining');
      const list = await registry.list();
      expect(list.loads.get('n2')?.connections).to.equal(7);
      expect(list.nodes.get('n2')?.state).to.equal('draining');
      const leases = list.entries.filter((entry) => entry.id === 'n2').map((entry) => entry.leaseId);
      expect(leases).to.have.length(2);
      expect(leases[0]).to.be.a('string').and.equal(leases[1]);
    });

    it('watch: snapshot of what exists, then put, update, load, delete in order', async () => {
      await registry.registerGateway(gatewayRecord('g-before'));
      const recorder = new RegistryRecorder();
      const watch = await watchWith(recorder);
      expect(watch.synced).to.equal(true);
      const first = recorder.events[0];
      expect(first?.type).to.equal('snapshot');
      expect(first?.type === 'snapshot' && first.entries.map((entry) => `${entry.kind}/${entry.id}`)).to.deep.equal(['gateway/g-before']);

      const node = await registry.registerNode(nodeRecord('w1'));
      await node.update(nodeRecord('w1', { state: 'draining' }));
      await node.putLoad(loadRecord(3));
      await node.revoke();
      await waitFor(() => recorder.trail().length >= 5, { what: 'five watch events', timeoutMs: 5000 });
      const trail = recorder.trail();
      expect(trail.slice(0, 3)).to.deep.equal(['put node/w1', 'put node/w1', 'put load/w1']);
      expect(trail.slice(3).sort()).to.deep.equal(['delete load/w1', 'delete node/w1']);
      const updates = recorder.events.filter((event) => event.type === 'put' && event.entry.kind === 'node');
      expect(updates.map((event) => event.type === 'put' && event.entry.kind === 'node' && event.entry.value.state)).to.deep.equal([
        'active',
        'draining',
      ]);
      expect(recorder.describe()).to.deep.equal(describeEntries((await registry.list()).entries));
    });

    it('a watch of one kind sees only that kind: a node watch never hears load reports or gateways', async () => {
      await registry.registerGateway(gatewayRecord('g-scope'));
      const before = await registry.registerNode(nodeRecord('k0'));
      await before.putLoad(loadRecord(1));
      const nodesOnly = new RegistryRecorder();
      const all = new RegistryRecorder();
      const watches = [await registry.watch(nodesOnly.listener, { kind: 'node' }), await registry.watch(all.listener)];
      const first = nodesOnly.events[0];
      expect(first?.type === 'snapshot' && first.entries.map((e) => `${e.kind}/${e.id}`)).to.deep.equal(['node/k0']);
      const node = await registry.registerNode(nodeRecord('k1'));
      await node.putLoad(loadRecord(2));
      await node.update(nodeRecord('k1', { state: 'draining' }));
      await node.revoke();
      // The unscoped watch is the positive signal that every event has been sent.
      await waitFor(() => all.trail().filter((t) => t.startsWith('delete')).length >= 2, { what: 'k1 gone from the full watch', timeoutMs: 5000 });
      await waitFor(() => nodesOnly.trail().includes('delete node/k1'), { what: 'k1 gone from the node watch', timeoutMs: 5000 });
      expect(nodesOnly.trail()).to.deep.equal(['put node/k1', 'put node/k1', 'delete node/k1']);
      for (const watch of watches) await watch.close();
    });

    it('revoke deletes the keys at once, fires revoked, and is idempotent', async () => {
      const node = await registry.registerNode(nodeRecord('r1'));
      await node.putLoad(loadRecord(1));
      const leaseId = (await registry.list()).entries.find((entry) => entry.kind === 'node')?.leaseId ?? '';
      const recorder = new RegistryRecorder();
      await watchWith(recorder);
      let revokedEvents = 0;
      node.on('revoked', () => revokedEvents++);
      const started = Date.now();
      await node.revoke();
      await node.revoke();
      expect(node.state).to.equal('revoked');
      expect(revokedEvents).to.equal(1);
      expect((await registry.list()).entries).to.deep.equal([]);
      await waitFor(() => !recorder.has('node', 'r1') && !recorder.has('load', 'r1'), { what: 'deletes', timeoutMs: 3000 });
      expect(Date.now() - started).to.be.below((target.leaseTtlSeconds * 1000) / 2);
      expect(await registry.leaseTimeToLive(leaseId)).to.equal(undefined);
    });

    it('keepalive holds a registration past its TTL', async () => {
      const node = await registry.registerNode(nodeRecord('k1'));
      await new Promise((resolve) => setTimeout(resolve, target.leaseTtlSeconds * 1000 * 1.6));
      const list = await registry.list();
      expect(list.nodes.has('k1')).to.equal(true);
      const leaseId = list.entries[0]?.leaseId ?? '';
      expect(await registry.leaseTimeToLive(leaseId)).to.be.above(0);
      expect(node.state).to.equal('registered');
    });

    it('a crashed owner disappears (node and load) within one TTL, and watchers see the deletes', async () => {
      const node = await registry.registerNode(nodeRecord('c1'));
      await node.putLoad(loadRecord(2));
      const recorder = new RegistryRecorder();
      await watchWith(recorder);
      expect(recorder.has('node', 'c1')).to.equal(true);
      const crashedAt = Date.now();
      await target.crash(node);
      expect((await registry.list()).nodes.has('c1'), 'keys stay until the lease runs out').to.equal(true);
      await waitFor(() => !recorder.has('node', 'c1') && !recorder.has('load', 'c1'), {
        what: 'deletes after lease expiry',
        timeoutMs: target.leaseTtlSeconds * 1000 + 2000,
      });
      expect(Date.now() - crashedAt).to.be.below(target.leaseTtlSeconds * 1000 + 1500);
      expect((await registry.list()).entries).to.deep.equal([]);
    });

    it('leaseTimeToLive of an unknown lease is undefined', async () => {
      expect(await registry.leaseTimeToLive('123456789')).to.equal(undefined);
    });

    it('every watcher gets the same events; a closed watch gets no more', async () => {
      const a = new RegistryRecorder();
      const b = new RegistryRecorder();
      await watchWith(a);
      const watchB = await watchWith(b);
      const node = await registry.registerNode(nodeRecord('m1'));
      await waitFor(() => a.has('node', 'm1') && b.has('node', 'm1'), { what: 'both watchers see m1', timeoutMs: 3000 });
      await watchB.close();
      const seenByB = b.events.length;
      await node.update(nodeRecord('m1', { state: 'draining' }));
      await registry.registerGateway(gatewayRecord('m-g'));
      await waitFor(() => a.has('gateway', 'm-g'), { what: 'watcher a sees the gateway', timeoutMs: 3000 });
      expect(b.events.length).to.equal(seenByB);
      expect(a.trail()).to.deep.equal(['put node/m1', 'put node/m1', 'put gateway/m-g']);
    });

    it('many registrations: the watch view converges to list()', async () => {
      const recorder = new RegistryRecorder();
      await watchWith(recorder);
      const registrations = await Promise.all(
        Array.from({ length: 12 }, (_, i) => registry.registerNode(nodeRecord(`bulk-${String(i)}`))),
      );
      await Promise.all(registrations.map((registration, i) => registration.putLoad(loadRecord(i))));
      await Promise.all(registrations.slice(0, 5).map((registration) => registration.revoke()));
      const expected = describeEntries((await registry.list()).entries);
      expect(expected).to.have.length(14);
      await waitFor(() => JSON.stringify(recorder.describe()) === JSON.stringify(expected), { what: 'view equals list', timeoutMs: 5000 });
    });
  });
}
