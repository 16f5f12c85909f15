import {
  BackendError,
  DRAIN_PATH,
  isBackendError,
  readRoomMembers,
  rendezvousOrder,
  type GatewayConfig,
  type PeerTransport,
  type Registry,
  type RegistryEvent,
  type RoomStore,
  type SessionStore,
} from '@messaging-server/core';
import { formatAge, renderTable } from './table.js';

export interface MsgctlContext {
  config: Readonly<GatewayConfig>;
  registry: () => Registry;
  sessions: () => SessionStore;
  rooms: () => RoomStore;
  transport: () => PeerTransport;
  json: boolean;
  out: (text: string) => void;
}

export class NotFoundError extends Error {
  override readonly name = 'NotFoundError';
}

export interface NodeRow {
  nodeId: string;
  state: string;
  listeningAddress: string;
  connections: number | null;
  leaseTtlSeconds: number | null;
  startedAt: string;
}

export async function listNodes(registry: Registry): Promise<NodeRow[]> {
  const { entries, loads } = await registry.list();
  const nodes = entries.filter((e) => e.kind === 'node');
  return Promise.all(
    nodes.map(async (entry) => ({
      nodeId: entry.value.nodeId,
      state: entry.value.state,
      listeningAddress: entry.value.listeningAddress,
      connections: loads.get(entry.id)?.connections ?? null,
      leaseTtlSeconds: entry.leaseId === undefined ? null : ((await registry.leaseTimeToLive(entry.leaseId)) ?? null),
      startedAt: entry.value.startedAt,
    })),
  ).then((rows) => rows.sort((a, b) => a.nodeId.localeCompare(b.nodeId)));
}

export async function nodesCommand(ctx: MsgctlContext): Promise<void> {
  const rows = await listNodes(ctx.registry());
  if (ctx.json) return ctx.out(JSON.stringify(rows) + '\n');
  const pretty = rows.map((r) => ({ ...r, lease: r.leaseTtlSeconds === null ? null : `${String(r.leaseTtlSeconds)}s`, age: formatAge(r.startedAt) }));
  ctx.out(renderTable(pretty, ['nodeId', 'state', 'listeningAddress', 'connections', 'lease', 'age']));
}

export async function gatewaysCommand(ctx: MsgctlContext): Promise<void> {
  const { gateways } = await ctx.registry().list();
  const rows = [...gateways.values()]
    .map((g) => ({ gatewayId: g.gatewayId, address: g.address, startedAt: g.startedAt }))
    .sort((a, b) => a.gatewayId.localeCompare(b.gatewayId));
  if (ctx.json) return ctx.out(JSON.stringify(rows) + '\n');
  ctx.out(renderTable(rows.map((r) => ({ ...r, age: formatAge(r.startedAt) })), ['gatewayId', 'address', 'age']));
}

export async function sessionCommand(ctx: MsgctlContext, userId: string): Promise<void> {
  const record = await ctx.sessions().get(userId);
  if (!record) throw new NotFoundError(`no session for ${userId}`);
  const { listeningKey: _secret, ...session } = record;
  const { nodes } = await ctx.registry().list();
  const nodeAlive = nodes.has(record.nodeId);
  if (ctx.json) return ctx.out(JSON.stringify({ session, nodeAlive }) + '\n');
  ctx.out(renderTable([{ ...session, nodeAlive }], ['userId', 'nodeId', 'acked', 'listeningAddress', 'createdAt', 'nodeAlive']));
}

/**
 * The room's members in join order (from its record in memcached) and the node a gateway would place it on now:
 * the first node in the room's rendezvous order over the active nodes that are not at their `maxConnections`, as
 * the gateway's NodeView picks it (without that gateway's own sessions in flight). `placement` is null with no active
 * node. NotFoundError (exit 1) when the room has no members.
 */
export async function roomCommand(ctx: MsgctlContext, room: string): Promise<void> {
  const [members, { nodes, loads }] = await Promise.all([readRoomMembers(ctx.rooms(), room), ctx.registry().list()]);
  if (members.length === 0) throw new NotFoundError(`room ${room} has no members`);
  const open = [...nodes.values()]
    .filter((node) => node.state === 'active')
    .filter((node) => {
      const load = loads.get(node.nodeId);
      const max = load?.maxConnections;
      return max === undefined || max <= 0 || (load?.connections ?? 0) < max;
    })
    .map((node) => node.nodeId);
  const placement = rendezvousOrder(room, open)[0] ?? null;
  if (ctx.json) return ctx.out(JSON.stringify({ room, members, placement }) + '\n');
  ctx.out(renderTable([{ room, members: members.join(','), placement }], ['room', 'members', 'placement']));
}

/** Streams one JSON line per registry change until interrupted. */
export async function watchCommand(ctx: MsgctlContext, signal: AbortSignal): Promise<void> {
  const registry = ctx.registry();
  const print = (event: RegistryEvent): void => {
    const at = new Date().toISOString();
    if (event.type === 'snapshot') {
      for (const entry of event.entries) ctx.out(JSON.stringify({ at, type: 'put', kind: entry.kind, id: entry.id, value: entry.value }) + '\n');
    } else if (event.type === 'put') {
      ctx.out(JSON.stringify({ at, type: 'put', kind: event.entry.kind, id: event.entry.id, value: event.entry.value }) + '\n');
    } else if (event.type === 'delete') {
      ctx.out(JSON.stringify({ at, type: 'delete', kind: event.kind, id: event.id }) + '\n');
    } else {
      ctx.out(JSON.stringify({ at, type: 'status', synced: event.synced }) + '\n');
    }
  };
  const watch = await registry.watch(print);
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await watch.close();
}

/**
 * Asks the node to drain over its internal API (exactly as SIGTERM would), then follows the registry until the
 * node is gone, unless `wait` is false.
 */
export async function drainCommand(ctx: MsgctlContext, nodeId: string, wait: boolean): Promise<void> {
  const registry = ctx.registry();
  const { nodes } = await registry.list();
  const node = nodes.get(nodeId);
  if (!node) throw new NotFoundError(`no live node ${nodeId}`);
  try {
    await ctx.transport().post(node.internalAddress, DRAIN_PATH, {});
  } catch (error) {
    if (isBackendError(error, 'PEER_REJECTED') && error.status === 401) {
      throw new BackendError('PEER_REJECTED', `${nodeId} refused the drain: set MSG_CLUSTER_SECRET (or --cluster-secret) to the cluster's secret`, {
        cause: error,
        status: 401,
      });
    }
    throw error;
  }
  ctx.out(ctx.json ? JSON.stringify({ nodeId, state: 'draining' }) + '\n' : `${nodeId}: draining\n`);
  if (!wait) return;
  await new Promise<void>((resolve, reject) => {
    const stopAt = Date.now() + 10 * 60_000;
    const poll = (): void => {
      registry.list().then(({ nodes: now }) => {
        if (!now.has(nodeId)) return resolve();
        if (Date.now() > stopAt) return reject(new BackendError('REGISTRY_UNAVAILABLE', `${nodeId} still registered after 10 minutes`));
        setTimeout(poll, 250);
      }, reject);
    };
    poll();
  });
  ctx.out(ctx.json ? JSON.stringify({ nodeId, state: 'gone' }) + '\n' : `${nodeId}: gone\n`);
}
