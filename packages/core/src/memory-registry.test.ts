import { expect } from 'chai';
import {
  describeRegistryContract,
  loadRecord,
  nodeRecord,
  RegistryRecorder,
  waitFor,
} from '@messaging-server/testkit';
import { isBackendError } from './errors.js';
import { MemoryRegistry } from './memory-registry.js';
import { memoryRegistryControl } from './testing.js';

describeRegistryContract('memory', async () => {
  const registry = new MemoryRegistry({ leaseTtlSeconds: 1 });
  return {
    registry,
    leaseTtlSeconds: 1,
    crash: (registration) => memoryRegistryControl(registry).crash(registration),
    teardown: () => registry.close(),
  };
});

describe('MemoryRegistry', function () {
  this.timeout(10_000);
  let registry: MemoryRegistry;

  beforeEach(() => {
    registry = new MemoryRegistry({ leaseTtlSeconds: 1 });
  });
  afterEach(async () => {
    await registry.close();
  });

  it('lease loss: lost, then registered again by itself with the latest record and load', async () => {
    const node = await registry.registerNode(nodeRecord('a'));
    await node.putLoad(loadRecord(1));
    const recorder = new RegistryRecorder();
    await registry.watch(recorder.listener);
    const states: string[] = [];
    node.on('lost', () => states.push('lost'));
    node.on('registered', () => states.push('registered'));

    memoryRegistryControl(registry).simulateLeaseLoss('a');
    expect(node.state).to.equal('lost');
    await node.update(nodeRecord('a', { state: 'draining' }));
    await node.putLoad(loadRecord(9));

    await waitFor(() => node.state === 'registered', { what: 're-registration' });
    expect(states).to.deep.equal(['lost', 'registered']);
    const list = await registry.list();
    expect(list.nodes.get('a')?.state).to.equal('draining');
    expect(list.loads.get('a')?.connections).to.equal(9);
    const leases = new Set(list.entries.map((entry) => entry.leaseId));
    expect(leases.size).to.equal(1);
    await waitFor(async () => recorder.has('node', 'a') && (await registry.list()).loads.get('a')?.connections === 9 && JSON.stringify(recorder.view.get('load/a')?.value).includes('"connections":9'), { what: 'watch view' });
    expect(recorder.trail().slice(0, 2).sort()).to.deep.equal(['delete load/a', 'delete node/a']);
  });

  it('outage: calls fail with REGISTRY_UNAVAILABLE, watches report status, registrations survive a short one', async () => {
    const node = await registry.registerNode(nodeRecord('b'));
    const recorder = new RegistryRecorder();
    const watch = await registry.watch(recorder.listener);
    memoryRegistryControl(registry).setAvailable(false);
    await waitFor(() => recorder.trail().includes('status false'), { what: 'status false' });
    expect(watch.synced).to.equal(false);
    let caught: unknown;
    try {
      await registry.list();
    } catch (error) {
      caught = error;
    }
    expect(isBackendError(caught, 'REGISTRY_UNAVAILABLE')).to.equal(true);
    caught = undefined;
    try {
      await node.update(nodeRecord('b', { state: 'draining' }));
    } catch (error) {
      caught = error;
    }
    expect(isBackendError(caught, 'REGISTRY_UNAVAILABLE'), 'a write during a short outage rejects').to.equal(true);
    memoryRegistryControl(registry).setAvailable(true);
    await waitFor(() => recorder.trail().includes('status true'), { what: 'status true' });
    expect(node.state).to.equal('registered');
    expect((await registry.list()).nodes.get('b')?.state, 'and is written once the backend is back').to.equal('draining');
  });

  it('outage longer than the TTL: lost, then registered again on the old key without a delete', async () => {
    const node = await registry.registerNode(nodeRecord('c'));
    const recorder = new RegistryRecorder();
    await registry.watch(recorder.listener);
    memoryRegistryControl(registry).setAvailable(false);
    await waitFor(() => node.state === 'lost', { what: 'lost', timeoutMs: 3000 });
    await node.update(nodeRecord('c', { version: 'during-outage' }));
    memoryRegistryControl(registry).setAvailable(true);
    await waitFor(() => node.state === 'registered', { what: 'registered again', timeoutMs: 3000 });
    expect((await registry.list()).nodes.get('c')?.version).to.equal('during-outage');
    await waitFor(() => recorder.view.get('node/c')?.value, { what: 'view' });
    expect(recorder.trail().filter((line) => line.startsWith('delete'))).to.deep.equal([]);
  });

  it('crash by id: keys expire after the TTL', async () => {
    await registry.registerGateway({ gatewayId: 'g', address: 'http://x', startedAt: '', version: '1' });
    memoryRegistryControl(registry).crash('g', 'gateway');
    expect((await registry.list()).gateways.has('g')).to.equal(true);
    await waitFor(async () => !(await registry.list()).gateways.has('g'), { what: 'expiry', timeoutMs: 2500 });
  });
});
