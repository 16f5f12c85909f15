// Shared helpers for the gateway's unit tests (no tests here): a gateway on a real listener (port 0) over the
// memory registry and session store, a transport that records posts, and stores that fail on demand.
import type { NodeRecord, SessionRecord } from '@messaging-server/protocol';
import {
  BackendError,
  MemoryRegistry,
  MemorySessionStore,
  loadConfig,
  silentLogger,
  type GatewayConfig,
  type NodeRegistration,
  type PeerTransport,
  type SessionStore,
} from '@messaging-server/core';
import { memoryRegistryControl, waitFor, type MemoryRegistryControl } from '@messaging-server/testkit';
import { startGatewayServer, type GatewayDeps, type GatewayServer } from './gateway.js';
import { asNodeId } from '@messaging-server/protocol';

export class RecordingTransport implements PeerTransport {
  readonly posts: { peerAddress: string; path: string; body: unknown }[] = [];
  readonly forgotten: string[] = [];
  async post<T = unknown>(peerAddress: string, path: string, body: unknown): Promise<T> {
    this.posts.push({ peerAddress, path, body });
    return {} as T;
  }
  forget(peerAddress: string): void {
    this.forgotten.push(peerAddress);
  }
  async close(): Promise<void> {}
}

/**
 * A store that hangs (never settles) or fails at once while `mode` says so. `interleave` makes every operation take 5 ms,
 * as a network round trip does, so that concurrent requests interleave between them.
 */
export class FlakySessionStore implements SessionStore {
  mode: 'up' | 'hang' | 'fail' = 'up';
  interleave = false;
  constructor(readonly inner: SessionStore = new MemorySessionStore()) {}
  private guard<T>(operation: () => Promise<T>): Promise<T> {
    if (this.mode === 'hang') return new Promise<T>(() => undefined);
    if (this.mode === 'fail') return Promise.reject(new BackendError('SESSION_STORE_UNAVAILABLE', 'memcached is down'));
    if (this.interleave) return new Promise<void>((resolve) => setTimeout(resolve, 5)).then(operation);
    return operation();
  }
  get(userId: string): Promise<SessionRecord | undefined> {
    return this.guard(() => this.inner.get(userId));
  }
  create(record: SessionRecord, ttlSeconds: number): Promise<boolean> {
    return this.guard(() => this.inner.create(record, ttlSeconds));
  }
  put(record: SessionRecord, ttlSeconds: number): Promise<void> {
    return this.guard(() => this.inner.put(record, ttlSeconds));
  }
  touch(userId: string, ttlSeconds: number): Promise<boolean> {
    return this.guard(() => this.inner.touch(userId, ttlSeconds));
  }
  deleteIfMatches(userId: string, listeningKey: string): Promise<boolean> {
    return this.guard(() => this.inner.deleteIfMatches(userId, listeningKey));
  }
  updateIfMatches(userId: string, listeningKey: string, update: (current: SessionRecord) => SessionRecord | undefined, ttlSeconds: number): Promise<boolean> {
    return this.guard(() => this.inner.updateIfMatches(userId, listeningKey, update, ttlSeconds));
  }
  async close(): Promise<void> {}
}

export function gatewayConfig(env: Record<string, string> = {}): Readonly<GatewayConfig> {
  return loadConfig('gateway', { MSG_HOST: '127.0.0.1', MSG_PORT: '0', ...env });
}

export function nodeRecord(nodeId: string, state: NodeRecord['state'] = 'active'): NodeRecord {
  return {
    nodeId: asNodeId(nodeId),
    listeningAddress: `http://127.0.0.1:1/${nodeId}/ws`,
    internalAddress: `http://127.0.0.1:2/${nodeId}`,
    state,
    startedAt: new Date().toISOString(),
    version: 'test',
  };
}

export interface Harness {
  url: string;
  server: GatewayServer;
  registry: MemoryRegistry;
  /** Simulated etcd outages. */
  registryControl: MemoryRegistryControl;
  store: FlakySessionStore;
  transport: RecordingTransport;
  nodes: Map<string, NodeRegistration>;
  /** Registers a node (and its load) and waits until the gateway's view has it. */
  addNode(nodeId: string, connections?: number): Promise<NodeRegistration>;
  setState(nodeId: string, state: NodeRecord['state']): Promise<void>;
  setLoad(nodeId: string, connections: number): Promise<void>;
  removeNode(nodeId: string): Promise<void>;
  post(body: unknown, headers?: Record<string, string>): Promise<Response>;
  connect(userId: string, extra?: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

export async function startHarness(options: { env?: Record<string, string>; deps?: Partial<GatewayDeps> } = {}): Promise<Harness> {
  const registry = new MemoryRegistry({ leaseTtlSeconds: 30 });
  const store = new FlakySessionStore();
  const transport = new RecordingTransport();
  const server = await startGatewayServer({
    config: gatewayConfig(options.env),
    registry,
    sessions: store,
    transport,
    logger: silentLogger,
    version: 'test',
    defaultMetrics: false,
    ...options.deps,
  });
  const url = `http://127.0.0.1:${String(server.port)}`;
  const nodes = new Map<string, NodeRegistration>();
  const view = server.gateway.view;
  const harness: Harness = {
    url,
    server,
    registry,
    registryControl: memoryRegistryControl(registry),
    store,
    transport,
    nodes,
    async addNode(nodeId, connections = 0) {
      const registration = await registry.registerNode(nodeRecord(nodeId));
      nodes.set(nodeId, registration);
      await registration.putLoad({ connections, pending: 0, updatedAt: new Date().toISOString() });
      await waitFor(() => view.nodes.has(nodeId) && view.loads.get(nodeId)?.connections === connections, {
        what: `gateway sees ${nodeId}`,
      });
      return registration;
    },
    async setState(nodeId, state) {
      const registration = nodes.get(nodeId);
      if (!registration) throw new Error(`unknown node ${nodeId}`);
      await registration.update({ ...registration.record, state });
      await waitFor(() => view.nodes.get(nodeId)?.state === state, { what: `${nodeId} ${state}` });
    },
    async setLoad(nodeId, connections) {
      const registration = nodes.get(nodeId);
      if (!registration) throw new Error(`unknown node ${nodeId}`);
      await registration.putLoad({ connections, pending: 0, updatedAt: new Date().toISOString() });
      await waitFor(() => view.loads.get(nodeId)?.connections === connections, { what: `${nodeId} load` });
    },
    async removeNode(nodeId) {
      await nodes.get(nodeId)?.revoke();
      nodes.delete(nodeId);
      await waitFor(() => !view.nodes.has(nodeId), { what: `${nodeId} gone` });
    },
    post(body, headers = {}) {
      const init: RequestInit = { method: 'POST', headers, signal: AbortSignal.timeout(5000) };
      if (body !== undefined) init.body = typeof body === 'string' ? body : body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body);
      return fetch(`${url}/connect`, init);
    },
    async connect(userId, extra = {}) {
      const response = await harness.post({ userId, ...extra }, { 'content-type': 'application/json' });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    },
    async close() {
      for (const registration of nodes.values()) await registration.revoke();
      await server.close();
      await registry.close();
    },
  };
  return harness;
}
