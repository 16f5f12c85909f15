import { createPinoLogger, loadConfig, NodeIdentity } from '@messaging-server/core';
import { startNodeServer } from '@messaging-server/node';
import { createBackends } from './backends.js';
import { onShutdownSignal } from './lifecycle.js';
import { VERSION } from './version.js';

export async function runNode(env: Record<string, string | undefined>): Promise<void> {
  const config = loadConfig('node', env);
  // The node binds nodeId on its own lines; this process's lines get it once, through the child.
  const baseLogger = createPinoLogger({ level: config.logLevel, name: 'node' });
  const logger = baseLogger.child({ nodeId: config.nodeId });
  // A fresh key pair per process: a restart rotates it, and no other process ever holds the private half.
  const identity = new NodeIdentity(config.nodeId);
  const backends = createBackends(config, logger, 'distributed', identity);
  let started: Awaited<ReturnType<typeof startNodeServer>>;
  try {
    started = await startNodeServer({ config, ...backends, identity, logger: baseLogger, version: VERSION });
  } catch (error) {
    await backends.close();
    throw error;
  }
  logger.info({ publicPort: started.publicPort, internalPort: started.internalPort }, 'node listening');
  // One stop, whichever asks first: SIGTERM, or `msgctl drain` over the internal API (whose drain resolves `drained`).
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await started.node.drain();
      await started.close();
      await backends.close();
      logger.info({}, 'node drained, exiting');
    })());
  void started.node.drained.then(stop).then(() => process.exit(0));
  onShutdownSignal(
    async (signal) => {
      logger.info({ signal }, 'node draining');
      await stop();
    },
    (error) => logger.error({ err: error }, 'node stop failed'),
  );
}
