import { createPinoLogger, loadConfig } from '@messaging-server/core';
import { startNodeServer } from '@messaging-server/node';
import { createBackends } from './backends.js';
import { onShutdownSignal } from './lifecycle.js';
import { VERSION } from './version.js';

export async function runNode(env: Record<string, string | undefined>): Promise<void> {
  const config = loadConfig('node', env);
  const logger = createPinoLogger({ level: config.logLevel, name: 'node', bindings: { nodeId: config.nodeId } });
  // Without a cluster secret, production mode already stopped in loadConfig.
  if (config.production && config.allowedOrigins.includes('*')) logger.warn({}, 'production mode with MSG_ALLOWED_ORIGINS=*');
  const backends = createBackends(config, logger, 'distributed');
  let started: Awaited<ReturnType<typeof startNodeServer>>;
  try {
    started = await startNodeServer({ config, ...backends, logger, version: VERSION });
  } catch (error) {
    await backends.close();
    throw error;
  }
  logger.info({ publicPort: started.publicPort, internalPort: started.internalPort }, 'node listening');
  const stop = async (): Promise<void> => {
    await started.node.drain();
    await started.close();
    await backends.close();
  };
  // `msgctl drain` reaches the node over its internal API; the process then exits exactly as after SIGTERM.
  void started.node.drained.then(async () => {
    await stop();
    logger.info({}, 'node drained, exiting');
    process.exit(0);
  });
  onShutdownSignal(
    async (signal) => {
      logger.info({ signal }, 'node draining');
      await stop();
      logger.info({}, 'node drained, exiting');
    },
    (error) => logger.error({ err: error }, 'node stop failed'),
  );
}
