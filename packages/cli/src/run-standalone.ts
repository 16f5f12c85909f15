import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { createPinoLogger, loadConfig } from '@messaging-server/core';
import { createGateway } from '@messaging-server/gateway';
import { httpStatusOf, type ErrorCode } from '@messaging-server/protocol';
import { createInternalServer, createNode, createPublicServer, nodeInternalLimits, nodePublicLimits, type RelayNode } from '@messaging-server/node';
import { createBackends } from './backends.js';
import { onShutdownSignal } from './lifecycle.js';
import { publicDir } from './public-dir.js';
import { VERSION } from './version.js';

/**
 * Gateway and node in one process on one public port, over the in-memory registry and session store: the contract's
 * "embedded default for trying it out". The public port has the node's guard in front: SockJS takes its own path,
 * everything else is the gateway's. The node's internal API (the gateway's replace notice) is not on that port but on
 * a loopback-only one of its own, so nobody outside the machine can call it.
 */
export async function runStandalone(env: Record<string, string | undefined>): Promise<void> {
  const loaded = loadConfig('standalone', env);
  const logger = createPinoLogger({ level: loaded.logLevel, name: 'standalone', bindings: { nodeId: loaded.nodeId } });
  const backends = createBackends(loaded, logger, 'memory');
  let node: RelayNode | undefined;
  const internal = createInternalServer(nodeInternalLimits({ config: loaded }), (req, res) => {
    if (!node?.handleInternal(req, res)) sendJsonError(res, 'NOT_FOUND', 'not found');
  });
  internal.listen(0, '127.0.0.1');
  await once(internal, 'listening');
  const config = { ...loaded, internalUrl: `http://127.0.0.1:${String((internal.address() as AddressInfo).port)}` };
  node = createNode({ config, ...backends, logger, version: VERSION });
  const dir = publicDir();
  // The node's registry already collects the process metrics; a second copy would repeat metric names.
  const gateway = createGateway({
    config,
    ...backends,
    logger,
    version: VERSION,
    defaultMetrics: false,
    ...(dir === undefined ? {} : { publicDir: dir }),
  });
  const gatewayHandler = gateway.app.callback();
  const server = createPublicServer(nodePublicLimits({ config }));
  const relay = node;
  relay.installSockJs(server, (req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      void servePrometheus(res, [gateway.metrics.registry.metrics(), relay.metricsText()]);
      return;
    }
    void gatewayHandler(req, res);
  });
  server.listen(config.port, config.host);
  await once(server, 'listening');
  await relay.start();
  await gateway.start({ port: config.port });
  logger.info({ port: config.port }, 'standalone listening');
  onShutdownSignal(
    async (signal) => {
      logger.info({ signal }, 'standalone stopping');
      await relay.drain();
      await gateway.close();
      server.close();
      internal.close();
      await backends.close();
      logger.info({}, 'standalone stopped');
    },
    (error) => logger.error({ err: error }, 'standalone stop failed'),
  );
}

function sendJsonError(res: ServerResponse, code: ErrorCode, message: string): void {
  res.writeHead(httpStatusOf(code), { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code, message } }));
}

/** One /metrics for both halves of the process. */
async function servePrometheus(res: ServerResponse, parts: Promise<string>[]): Promise<void> {
  try {
    const texts = await Promise.all(parts);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(texts.join('\n'));
  } catch {
    sendJsonError(res, 'INTERNAL', 'metrics unavailable');
  }
}
