// Shared helpers for this package's unit tests: in-process nodes on the memory backends.
import { randomBytes } from 'node:crypto';
import { loadConfig, MemoryRegistry, MemorySessionStore, NodeIdentity, silentLogger, type UndiciPeerTransport, type NodeConfig } from '@messaging-server/core';
import type { SessionRecord } from '@messaging-server/protocol';
import { memoryRegistryControl, TestSocket, type TestSocketOptions } from '@messaging-server/testkit';
import { startNodeServer, type NodeServer } from '../index.js';
import { createPeerTransport } from '../peer/peer-transport.js';

export interface TestNode extends NodeServer {
  config: NodeConfig;
  publicUrl: string;
  internalUrl: string;
  transport: UndiciPeerTransport;
  identity: NodeIdentity;
}

export class TestWorld {
  readonly registry = new MemoryRegistry({ leaseTtlSeconds: 5 });
  /** Simulated lease loss and etcd outages. */
  readonly registryControl = memoryRegistryControl(this.registry);
  readonly sessions = new MemorySessionStore();
  private readonly nodes: TestNode[] = [];
  private readonly sockets: TestSocket[] = [];

  async startNode(nodeId: string, env: Record<string, string> = {}): Promise<TestNode> {
    const config = loadConfig('node', { MSG_HOST: '127.0.0.1', MSG_PORT: '0', MSG_INTERNAL_PORT: '0', MSG_NODE_ID: nodeId, ...env });
    // As run-node.ts does: each node signs with its own key pair, published in its registration.
    const identity = new NodeIdentity(config.nodeId);
    const transport = createPeerTransport({ signer: identity });
    const server = await startNodeServer({ config, registry: this.registry, sessions: this.sessions, transport, identity, logger: silentLogger });
    const node: TestNode = {
      ...server,
      config,
      transport,
      identity,
      publicUrl: `http://127.0.0.1:${String(server.publicPort)}/ws`,
      internalUrl: `http://127.0.0.1:${String(server.internalPort)}`,
    };
    this.nodes.push(node);
    return node;
  }

  /** What the gateway does on /connect: a fresh un-acked session assigned to `node`. */
  async session(userId: string, node: TestNode | string, publicUrl?: string): Promise<SessionRecord> {
    const record: SessionRecord = {
      userId,
      listeningAddress: typeof node === 'string' ? (publicUrl ?? 'http://127.0.0.1:1/ws') : node.publicUrl,
      listeningKey: randomBytes(24).toString('base64url'),
      acked: false,
      nodeId: typeof node === 'string' ? node : node.node.nodeId,
      createdAt: new Date().toISOString(),
    };
    await this.sessions.put(record, 30);
    return record;
  }

  socket(session: SessionRecord, options: TestSocketOptions = {}): TestSocket {
    const socket = TestSocket.forSession(session, options);
    this.sockets.push(socket);
    return socket;
  }

  /** A user with a session on `node` and an open, welcomed socket. */
  async online(userId: string, node: TestNode, options: TestSocketOptions = {}): Promise<{ session: SessionRecord; socket: TestSocket }> {
    const session = await this.session(userId, node);
    const socket = this.socket(session, options);
    await socket.welcomed();
    return { session, socket };
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.close();
    for (const node of this.nodes) {
      await node.close();
      await node.transport.close();
    }
    await this.registry.close();
  }
}

export function internalPost(node: TestNode, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${node.internalUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
}

/** A request to `node` signed by `signer`'s own key, as a node's transport sends it. */
export function signedPost(node: TestNode, signer: TestNode, path: string, body: unknown): Promise<Response> {
  const text = JSON.stringify(body);
  return fetch(`${node.internalUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signer.identity.headers('POST', path, text, node.internalUrl) },
    body: text,
    signal: AbortSignal.timeout(5000),
  });
}
