import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EtcdRegistry, NodeIdentity, type NodeRegistration } from '@messaging-server/core';
import type { LocalCluster } from './cluster.js';
import { asNodeId } from '@messaging-server/protocol';

/**
 * A process that registers itself in a cluster's etcd as a node, with its own identity key, and MACs its requests
 * as a node does; it serves nothing but 200s on its internal address (where outcomes would go). What a rogue or a
 * test peer holding etcd access can do: speak as *itself*, never as another node or another node's users.
 */
export class SignedPeer {
  private constructor(
    readonly nodeId: string,
    readonly internalUrl: string,
    readonly identity: NodeIdentity,
    private readonly server: Server,
    private readonly registry: EtcdRegistry,
    private readonly registration: NodeRegistration,
  ) {}

  static async register(cluster: LocalCluster, nodeId: string): Promise<SignedPeer> {
    const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"accepted":0}'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const internalUrl = `http://127.0.0.1:${String((server.address() as AddressInfo).port)}`;
    const credentials = cluster.options.storeCredentials?.etcd;
    const registry = new EtcdRegistry({
      endpoints: [cluster.etcdEndpoint],
      prefix: cluster.prefix,
      leaseTtlSeconds: 5,
      ...(credentials ? { credentials } : {}),
    });
    const identity = new NodeIdentity(nodeId);
    const registration = await registry.registerNode({
      nodeId: asNodeId(nodeId),
      listeningAddress: 'http://127.0.0.1:1/ws',
      internalAddress: internalUrl,
      state: 'active',
      startedAt: new Date().toISOString(),
      version: 'test',
      identityKey: identity.publicKey,
    });
    return new SignedPeer(nodeId, internalUrl, identity, server, registry, registration);
  }

  /** POSTs `body` to a node's internal `path`, signed with this peer's key (extra headers on top). */
  post(nodeInternalUrl: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return this.postText(nodeInternalUrl, path, JSON.stringify(body), headers);
  }

  /** As post, with the body already serialized (as sent, byte for byte: the signature covers it). */
  async postText(nodeInternalUrl: string, path: string, text: string, headers: Record<string, string> = {}): Promise<Response> {
    // As a node's identity does from its registry view: the target's key, by its internal address, fresh each time.
    const { nodes } = await this.registry.list();
    this.identity.knowPeers((address) => [...nodes.values()].find((n) => n.internalAddress === address)?.identityKey);
    return fetch(`${nodeInternalUrl}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...this.identity.headers('POST', path, text, nodeInternalUrl), ...headers },
      body: text,
      signal: AbortSignal.timeout(5000),
    });
  }

  async close(): Promise<void> {
    await this.registration.revoke();
    await this.registry.close();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
