import { createServer } from 'node:http';
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
  const gateway = createGateway({ config, ...backends, logger, version: VERSION, ...(dir === undefined ? {} : { publicDir: dir }) });
  const gatewayHandler = gateway.app.callback();
  node.installSockJs(server);
  server.on('request', (req, res) => {
    if (req.url?.startsWith('/internal/') && node.handleInternal(req, res)) return;
    if (res.headersSent || res.writableEnded) return; // answered by SockJS
    void gatewayHandler(req, res);
  });
  server.listen(config.port, config.host);
  await once(server, 'listening');
  await node.start();
  await gateway.start({ port: config.port });
  logger.info({ port: config.port }, 'standalone listening');
  onShutdownSignal(
    async () => {
      await node.drain();
      await gateway.close();
      server.close();
      await backends.close();
    },
    (error) => logger.error({ err: error }, 'standalone stop failed'),
  );
}
