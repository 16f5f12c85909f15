import { createServer, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import { createPinoLogger, loadConfig } from '@messaging-server/core';
import { createGateway } from '@messaging-server/gateway';
import { createNode } from '@messaging-server/node';
import { createBackends } from './backends.js';
import { onShutdownSignal } from './lifecycle.js';
import { publicDir } from './public-dir.js';
import { VERSION } from './version.js';

/**
 * Gateway and node in one process on one port, over the in-memory registry and session store: the contract's
 * "embedded default for trying it out". SockJS takes its own path first; `/internal/` goes to the node (the
 * gateway's replace notice reaches it there); everything else is the gateway's.
 */
export async function runStandalone(env: Record<string, string | undefined>): Promise<void> {
  const config = loadConfig('standalone', env);
  const logger = createPinoLogger({ level: config.logLevel, name: 'standalone', bindings: { nodeId: config.nodeId } });
  const backends = createBackends(config, logger, 'memory');
  const server = createServer();
  const node = createNode({ config, ...backends, logger, version: VERSION });
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
  // Registered before SockJS installs itself, so SockJS hands this listener only the requests outside its prefix.
  server.on('request', (req, res) => {
    if (req.url?.startsWith('/internal/') && node.handleInternal(req, res)) return;
    if (req.method === 'GET' && req.url === '/metrics') {
      void servePrometheus(res, [gateway.metrics.registry.metrics(), node.metricsText()]);
      return;
    }
    void gatewayHandler(req, res);
  });
  node.installSockJs(server);
  server.listen(config.port, config.host);
  await once(server, 'listening');
  await node.start();
  await gateway.start({ port: config.port });
  logger.info({ port: config.port }, 'standalone listening');
  onShutdownSignal(
    async (signal) => {
      logger.info({ signal }, 'standalone stopping');
      await node.drain();
      await gateway.close();
      server.close();
      await backends.close();
      logger.info({}, 'standalone stopped');
    },
    (error) => logger.error({ err: error }, 'standalone stop failed'),
  );
}

/** One /metrics for both halves of the process. */
async function servePrometheus(res: ServerResponse, parts: Promise<string>[]): Promise<void> {
  try {
    const texts = await Promise.all(parts);
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(texts.join('\n'));
  } catch {
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":{"code":"INTERNAL","message":"metrics unavailable"}}');
  }
}
