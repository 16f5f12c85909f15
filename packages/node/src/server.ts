import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { NodeConfig } from '@messaging-server/core';
import { sendError, sendErrorAndClose } from './http-util.js';
import { createInternalServer } from './internal-server.js';
import { createNode, nodeInternalLimits, nodePublicLimits, type NodeDeps, type RelayNode } from './node.js';
import { createPublicServer } from './public-guard.js';

export interface NodeServer {
  node: RelayNode;
  publicPort: number;
  internalPort: number;
  /** Hard stop: node.close(), then both servers. Use node.drain() first for a graceful stop. */
  close(): Promise<void>;
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error) => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function stop(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** With port 0 the derived URLs name port 0; point them at the ports actually bound. */
function withBoundPorts(config: NodeConfig, publicPort: number, internalPort: number): NodeConfig {
  const fix = (url: string, configured: number, bound: number): string => {
    if (configured !== 0) return url;
    const parsed = new URL(url);
    if (parsed.port !== '0') return url;
    parsed.port = String(bound);
    return parsed.toString().replace(/\/$/, parsed.pathname === '/' ? '' : '/');
  };
  return {
    ...config,
    publicUrl: fix(config.publicUrl, config.port, publicPort),
    internalUrl: fix(config.internalUrl, config.internalPort, internalPort),
  };
}

/**
 * Runs one node: a public http.Server on config.host:config.port serving only SockJS behind the public guard
 * (everything else 404), and an
 * internal one on config.internalPort (internal API, health, readiness, metrics). Registers the node before it
 * resolves; rejects (with both servers closed) when a port is taken or the node id is already registered.
 */
export async function startNodeServer(deps: NodeDeps): Promise<NodeServer> {
  let node: RelayNode | undefined;
  const publicServer = createPublicServer(nodePublicLimits(deps));
  // Until the node puts its guard on (installSockJs replaces these), the port is up but serves nothing.
  publicServer.on('request', (_req, res) => sendError(res, 'NOT_READY', 'starting'));
  publicServer.on('upgrade', (_req, socket: Duplex) => socket.destroy());
  const internalServer = createInternalServer(nodeInternalLimits(deps), (req, res) => {
    if (!node) return sendError(res, 'NOT_READY', 'starting');
    if (!node.handleInternal(req, res)) sendErrorAndClose(res, 'NOT_FOUND', 'not found');
  });
  try {
    const publicPort = await listen(publicServer, deps.config.port, deps.config.host);
    const internalPort = await listen(internalServer, deps.config.internalPort, deps.config.host);
    const config = withBoundPorts(deps.config, publicPort, internalPort);
    const created = createNode({ ...deps, config });
    created.installSockJs(publicServer);
    node = created;
    await created.start();
    return {
      node: created,
      publicPort,
      internalPort,
      async close() {
        await created.close();
        await Promise.all([stop(publicServer), stop(internalServer)]);
      },
    };
  } catch (error) {
    if (node) await node.close().catch(() => undefined);
    await Promise.all([stop(publicServer), stop(internalServer)]);
    throw error;
  }
}
