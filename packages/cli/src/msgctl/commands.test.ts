import { expect } from 'chai';
import {
  BackendError,
  loadConfig,
  MemoryRegistry,
  MemoryRoomStore,
  MemorySessionStore,
  type PeerTransport,
} from '@messaging-server/core';
import { drainCommand, gatewaysCommand, listNodes, NotFoundError, nodesCommand, sessionCommand, type MsgctlContext } from './commands.js';
import { formatAge, renderTable } from './table.js';
import { asNodeId } from '@messaging-server/protocol';

const STARTED = '2026-01-01T00:00:00.000Z';

function node(nodeId: string, state: 'active' | 'draining' = 'active') {
  return { nodeId: asNodeId(nodeId), listeningAddress: `http://${nodeId}/ws`, internalAddress: `http://${nodeId}:9081`, state, startedAt: STARTED, version: '1' } as const;
}

function context(registry: MemoryRegistry, sessions: MemorySessionStore, json: boolean, transport?: PeerTransport): { ctx: MsgctlContext; output: () => string } {
  let text = '';
  const ctx: MsgctlContext = {
    config: loadConfig('gateway', {}),
    registry: () => registry,
    sessions: () => sessions,
    rooms: () => new MemoryRoomStore(),
    transport: () => transport ?? ({} as PeerTransport),
    json,
    out: (chunk) => {
      text += chunk;
    },
  };
  return { ctx, output: () => text };
}

describe('msgctl commands (memory registry and session store)', () => {
  let registry: MemoryRegistry;
  let sessions: MemorySessionStore;
  beforeEach(() => {
    registry = new MemoryRegistry({ leaseTtlSeconds: 5 });
    sessions = new MemorySessionStore();
  });
  afterEach(async () => {
    await registry.close();
    await sessions.close();
  });

  it('nodes: sorted rows with state, connections from load, lease time left; null connections before any load', async () => {
    const b = await registry.registerNode(node('node-b', 'draining'));
    await b.putLoad({ connections: 7, pending: 0, updatedAt: STARTED });
    await registry.registerNode(node('node-a'));
    const rows = await listNodes(registry);
    expect(rows.map((r) => [r.nodeId, r.state, r.connections])).to.deep.equal([
      ['node-a', 'active', null],
      ['node-b', 'draining', 7],
    ]);
    for (const row of rows) expect(row.leaseTtlSeconds).to.be.within(1, 5);

    const { ctx, output } = context(registry, sessions, true);
    await nodesCommand(ctx);
    expect((JSON.parse(output()) as { nodeId: string }[]).map((r) => r.nodeId)).to.deep.equal(['node-a', 'node-b']);
  });

  it('gateways: the contract fields only', async () => {
    await registry.registerGateway({ gatewayId: 'gw-1', address: 'http://gw:8080', startedAt: STARTED, version: '1' });
    const { ctx, output } = context(registry, sessions, true);
    await gatewaysCommand(ctx);
    expect(JSON.parse(output())).to.deep.equal([{ gatewayId: 'gw-1', address: 'http://gw:8080', startedAt: STARTED }]);
  });

  it('session: the record without its key, nodeAlive from the registry; NotFoundError when there is none', async () => {
    await registry.registerNode(node('node-a'));
    const record = { userId: 'alice', listeningAddress: 'http://node-a/ws', listeningKey: 'secret-key-123', acked: true, nodeId: 'node-a', createdAt: STARTED };
    await sessions.put(record, 60);
    await sessions.put({ ...record, userId: 'bob', nodeId: 'node-gone' }, 60);

    const alive = context(registry, sessions, true);
    await sessionCommand(alive.ctx, 'alice');
    expect(alive.output()).to.not.contain('secret-key-123');
    const { listeningKey: _key, ...withoutKey } = record;
    expect(JSON.parse(alive.output())).to.deep.equal({ session: withoutKey, nodeAlive: true });

    const dead = context(registry, sessions, false);
    await sessionCommand(dead.ctx, 'bob');
    expect(dead.output()).to.match(/NODEALIVE/).and.match(/false/).and.not.contain('secret-key-123');

    let thrown: unknown;
    await sessionCommand(context(registry, sessions, true).ctx, 'nobody').catch((error: unknown) => (thrown = error));
    expect(thrown).to.be.instanceOf(NotFoundError);
  });

  it('drain: NotFoundError for an unknown node; a 401 from the node names the cluster secret', async () => {
    let thrown: unknown;
    await drainCommand(context(registry, sessions, true).ctx, 'node-x', false).catch((error: unknown) => (thrown = error));
    expect(thrown).to.be.instanceOf(NotFoundError);

    await registry.registerNode(node('node-a'));
    const refusing: PeerTransport = {
      post: () => Promise.reject(new BackendError('PEER_REJECTED', 'peer answered 401', { status: 401 })),
      forget: () => undefined,
      close: () => Promise.resolve(),
    };
    thrown = undefined;
    await drainCommand(context(registry, sessions, true, refusing).ctx, 'node-a', false).catch((error: unknown) => (thrown = error));
    expect(thrown).to.be.instanceOf(BackendError);
    expect((thrown as Error).message).to.contain('MSG_CLUSTER_SECRET');

    const posted: string[] = [];
    const accepting: PeerTransport = {
      post: (address, path) => {
        posted.push(`${address}${path}`);
        return Promise.resolve({ draining: true } as never);
      },
      forget: () => undefined,
      close: () => Promise.resolve(),
    };
    const { ctx, output } = context(registry, sessions, true, accepting);
    await drainCommand(ctx, 'node-a', false);
    expect(posted).to.deep.equal(['http://node-a:9081/internal/v1/drain']);
    expect(JSON.parse(output())).to.deep.equal({ nodeId: 'node-a', state: 'draining' });
  });
});

describe('msgctl table', () => {
  it('aligns columns under upper-case headers and shows missing values as -', () => {
    const text = renderTable(
      [
        { id: 'node-1', connections: 12 },
        { id: 'n2', connections: null },
      ],
      ['id', 'connections'],
    );
    expect(text).to.equal('ID      CONNECTIONS\nnode-1  12\nn2      -\n');
  });

  it('formats ages in s, m+s, h+m', () => {
    const now = Date.parse(STARTED);
    expect(formatAge(new Date(now - 42_000).toISOString(), now)).to.equal('42s');
    expect(formatAge(new Date(now - 192_000).toISOString(), now)).to.equal('3m12s');
    expect(formatAge(new Date(now - 3_725_000).toISOString(), now)).to.equal('1h2m');
    expect(formatAge('not a date', now)).to.equal('-');
  });
});
