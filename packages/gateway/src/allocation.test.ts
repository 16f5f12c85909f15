import { expect } from 'chai';
import type { RegistryEntry } from '@messaging-server/core';
import { NodeView } from './node-view.js';
import { nodeRecord, startHarness, type Harness } from './harness.test.js';

const load = (connections: number) => ({ connections, pending: 0, updatedAt: new Date().toISOString() });

describe('NodeView allocation', () => {
  let now: number;
  let view: NodeView;
  beforeEach(() => {
    now = 1_000_000;
    view = new NodeView({ now: () => now });
    const entries: RegistryEntry[] = [
      { kind: 'node', id: 'a', value: nodeRecord('a') },
      { kind: 'node', id: 'b', value: nodeRecord('b') },
      { kind: 'load', id: 'a', value: load(10) },
      { kind: 'load', id: 'b', value: load(2) },
    ];
    view.apply({ type: 'snapshot', entries });
  });

  it('picks the least-loaded active node', () => {
    expect(view.allocate()?.nodeId).to.equal('b');
  });

  it('counts its own assignments until the load catches up', () => {
    const picks = Array.from({ length: 16 }, () => view.allocate()?.nodeId);
    // b takes the first 8 (2 → 10), then they alternate.
    expect(picks.slice(0, 8)).to.deep.equal(Array(8).fill('b'));
    expect(picks.filter((id) => id === 'a')).to.have.length(4);
    expect(view.loadOf('b')).to.equal(14);
  });

  it('forgets assignments that a later load report includes', () => {
    for (let i = 0; i < 5; i += 1) view.allocate();
    expect(view.loadOf('b')).to.equal(7);
    now += 300;
    view.apply({ type: 'put', entry: { kind: 'load', id: 'b', value: load(7) } });
    expect(view.loadOf('b')).to.equal(7);
  });

  it('keeps counting assignments a load report does not show yet, however late the report', () => {
    for (let i = 0; i < 5; i += 1) view.allocate();
    now += 1500;
    // A slow handshake: the report comes long after the assignments, without them.
    view.apply({ type: 'put', entry: { kind: 'load', id: 'b', value: load(2) } });
    expect(view.loadOf('b')).to.equal(7);
    // Clients leaving meanwhile (the count falls) do not cover them either.
    view.apply({ type: 'put', entry: { kind: 'load', id: 'b', value: load(1) } });
    expect(view.loadOf('b')).to.equal(6);
    view.apply({ type: 'put', entry: { kind: 'load', id: 'b', value: load(4) } });
    expect(view.loadOf('b')).to.equal(6);
  });

  it('lets assignments decay when no load report shows them', () => {
    for (let i = 0; i < 5; i += 1) view.allocate();
    now += 5001;
    expect(view.loadOf('b')).to.equal(2);
  });

  describe('with several gateways', () => {
    beforeEach(() => {
      for (const id of ['gw-1', 'gw-2']) {
        view.apply({ type: 'put', entry: { kind: 'gateway', id, value: { gatewayId: id, address: `http://${id}`, startedAt: new Date().toISOString(), version: 'test' } } });
      }
    });

    it('counts its assignments once per gateway: the others hand out as many, unseen until the node reports', () => {
      view.allocate();
      expect(view.loadOf('b')).to.equal(4);
      // 2 → 10 takes 4 assignments here (and about 4 on the other gateway), not 8.
      const picks = Array.from({ length: 6 }, () => view.allocate()?.nodeId);
      expect(picks.slice(0, 3)).to.deep.equal(['b', 'b', 'b']);
      expect(view.loadOf('b')).to.be.at.least(10);
    });

    it('lets a rise in reported connections cover its share of the assignments', () => {
      for (let i = 0; i < 4; i += 1) view.allocate();
      expect(view.loadOf('b')).to.equal(10);
      // 4 arrived (about 2 of ours): 2 of ours are still on their way, and as many of the other gateway's.
      view.apply({ type: 'put', entry: { kind: 'load', id: 'b', value: load(6) } });
      expect(view.loadOf('b')).to.equal(10);
      view.apply({ type: 'put', entry: { kind: 'load', id: 'b', value: load(10) } });
      expect(view.loadOf('b')).to.equal(10);
    });

    it('counts one gateway again when the other leaves the registry', () => {
      view.allocate();
      view.apply({ type: 'delete', kind: 'gateway', id: 'gw-2' });
      expect(view.loadOf('b')).to.equal(3);
    });
  });

  it('breaks ties at random', () => {
    const seen = new Set<string | undefined>();
    for (let i = 0; i < 40; i += 1) {
      const tie = new NodeView({ now: () => now });
      tie.apply({ type: 'snapshot', entries: [{ kind: 'node', id: 'a', value: nodeRecord('a') }, { kind: 'node', id: 'b', value: nodeRecord('b') }] });
      seen.add(tie.allocate()?.nodeId);
    }
    expect([...seen].sort()).to.deep.equal(['a', 'b']);
  });

  it('skips avoided nodes unless they are the only ones', () => {
    expect(view.allocate(['b'])?.nodeId).to.equal('a');
    expect(view.allocate(['a', 'b'])?.nodeId).to.be.oneOf(['a', 'b']);
  });

  it('never picks a draining or deleted node', () => {
    view.apply({ type: 'put', entry: { kind: 'node', id: 'b', value: nodeRecord('b', 'draining') } });
    expect(view.allocate()?.nodeId).to.equal('a');
    view.apply({ type: 'delete', kind: 'node', id: 'a' });
    expect(view.allocate()).to.equal(undefined);
  });

  it('keeps its view while the watch is not synced', () => {
    view.apply({ type: 'status', synced: false });
    expect(view.allocate()?.nodeId).to.equal('b');
  });
});

describe('NodeView placement by room (v1.2)', () => {
  const at = new Date().toISOString();
  const viewOf = (loads: Record<string, { connections: number; maxConnections?: number }>, states: Record<string, 'active' | 'draining'> = {}): NodeView => {
    const view = new NodeView();
    const entries: RegistryEntry[] = Object.entries(loads).flatMap(([id, value]): RegistryEntry[] => [
      { kind: 'node', id, value: nodeRecord(id, states[id] ?? 'active') },
      { kind: 'load', id, value: { pending: 0, updatedAt: at, ...value } },
    ]);
    view.apply({ type: 'snapshot', entries });
    return view;
  };
  const rooms = Array.from({ length: 200 }, (_, i) => `room-${String(i)}`);

  it('puts every member of a room on one node whatever the loads, and two views choose alike', () => {
    const one = viewOf({ a: { connections: 0 }, b: { connections: 500 }, c: { connections: 9 } });
    const other = viewOf({ a: { connections: 300 }, b: { connections: 1 }, c: { connections: 50 } });
    const used = new Set<string | undefined>();
    for (const room of rooms) {
      const first = one.allocateForRoom(room)?.nodeId;
      used.add(first);
      for (let i = 0; i < 3; i += 1) expect(one.allocateForRoom(room)?.nodeId).to.equal(first);
      expect(other.allocateForRoom(room)?.nodeId, room).to.equal(first);
    }
    expect([...used].sort(), 'rooms spread over every node').to.deep.equal(['a', 'b', 'c']);
  });

  it('skips a full node, an avoided one (unless it is the only one left) and a draining one, keeping the order after it', () => {
    const view = viewOf({ a: { connections: 0 }, b: { connections: 0 }, c: { connections: 0 } });
    const room = rooms.find((r) => view.allocateForRoom(r)?.nodeId === 'a') as string;
    const second = viewOf({ b: { connections: 0 }, c: { connections: 0 } }).allocateForRoom(room)?.nodeId;
    expect(view.allocateForRoom(room, ['a'])?.nodeId).to.equal(second);
    expect(viewOf({ a: { connections: 2, maxConnections: 2 }, b: { connections: 0 }, c: { connections: 0 } }).allocateForRoom(room)?.nodeId).to.equal(second);
    expect(viewOf({ a: { connections: 0 }, b: { connections: 0 }, c: { connections: 0 } }, { a: 'draining' }).allocateForRoom(room)?.nodeId).to.equal(second);
    expect(view.allocateForRoom(room, ['a', 'b', 'c'])?.nodeId).to.equal('a');
    expect(viewOf({ a: { connections: 1, maxConnections: 1 } }).allocateForRoom(room)).to.equal(undefined);
  });
});

describe('gateway allocation over HTTP', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => h.close());

  it('spreads a burst of 200 connects over two nearly idle nodes', async () => {
    // One reported connection of difference: load reports alone would send the whole burst to node-a.
    await h.addNode('node-a', 0);
    await h.addNode('node-b', 1);
    const counts = new Map<string, number>();
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => h.connect(`user-${String(i)}`)));
    for (const { status, body } of results) {
      expect(status).to.equal(200);
      const nodeId = String(body['nodeId']);
      counts.set(nodeId, (counts.get(nodeId) ?? 0) + 1);
    }
    expect(counts.get('node-a')).to.be.within(80, 120);
    expect(counts.get('node-b')).to.be.within(80, 120);
  });

  it('sends new sessions to the least-loaded node', async () => {
    await h.addNode('node-a', 50);
    await h.addNode('node-b', 10);
    for (let i = 0; i < 20; i += 1) expect((await h.connect(`u${String(i)}`)).body['nodeId']).to.equal('node-b');
  });

  it('honours avoid when another node is active', async () => {
    await h.addNode('node-a', 0);
    await h.addNode('node-b', 100);
    expect((await h.connect('alice', { avoid: ['node-a'] })).body['nodeId']).to.equal('node-b');
    await h.removeNode('node-b');
    expect((await h.connect('alice', { avoid: ['node-a'] })).body['nodeId']).to.equal('node-a');
  });

  it('never picks a draining node, and a vanished one at once', async () => {
    await h.addNode('node-a', 0);
    await h.addNode('node-b', 100);
    await h.addNode('node-c', 200);
    await h.setState('node-a', 'draining');
    for (let i = 0; i < 10; i += 1) expect((await h.connect(`u${String(i)}`)).body['nodeId']).to.equal('node-b');
    await h.removeNode('node-b');
    for (let i = 0; i < 10; i += 1) expect((await h.connect(`v${String(i)}`)).body['nodeId']).to.equal('node-c');
  });

  it('places by room, and answers a room name outside the rule with 400 INVALID_ROOM', async () => {
    await h.addNode('node-a', 0);
    await h.addNode('node-b', 0);
    await h.addNode('node-c', 0);
    const nodes = await Promise.all(['alice', 'bob', 'carol'].map(async (user) => (await h.connect(user, { room: 'standup' })).body['nodeId']));
    expect(new Set(nodes).size).to.equal(1);
    for (const room of ['', 'a b', 'x'.repeat(129), 42]) {
      const answer = await h.connect('dave', { room });
      expect(answer.status, JSON.stringify(room)).to.equal(400);
      expect((answer.body['error'] as { code?: string }).code).to.equal(room === 42 ? 'INVALID_REQUEST' : 'INVALID_ROOM');
    }
  });

  it('makes a new node eligible as soon as its registration arrives', async () => {
    await h.addNode('node-a', 100);
    expect((await h.connect('alice')).body['nodeId']).to.equal('node-a');
    await h.addNode('node-new', 0);
    expect((await h.connect('bob')).body['nodeId']).to.equal('node-new');
  });

  it('keeps allocating from its last view while the registry is away', async () => {
    await h.addNode('node-a');
    h.registryControl.setAvailable(false);
    const { status, body } = await h.connect('alice');
    expect(status).to.equal(200);
    expect(body['nodeId']).to.equal('node-a');
    h.registryControl.setAvailable(true);
  });

  it('counts allocations per node in /metrics', async () => {
    await h.addNode('node-a');
    await h.connect('alice');
    await h.connect('bob');
    const text = await (await fetch(`${h.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    expect(text).to.include('msg_allocations_total{node_id="node-a"} 2');
    expect(text).to.include('msg_nodes{state="active"} 1');
  });
});
