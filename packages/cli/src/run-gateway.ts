import { createPinoLogger, loadConfig } from '@messaging-server/core';
import { startGatewayServer } from '@messaging-server/gateway';
import { createBackends } from './backends.js';
import { onShutdownSignal } from './lifecycle.js';
import { publicDir } from './public-dir.js';
import { VERSION } from './version.js';

export async function runGateway(env: Record<string, string | undefined>): Promise<void> {
  const config = loadConfig('gateway', env);
  const logger = createPinoLogger({ level: config.logLevel, name: 'gateway' });
  // Authentication, origins and trusted proxies are enforced by loadConfig in production mode; this one is a
  // documented risk (docs/security.md), allowed but worth a line an operator sees at start.
  if (config.production && config.connectRatePerIpPerMinute === 0) logger.warn({}, 'production mode without a per-IP /connect limit');
  const backends = createBackends(config, logger, 'distributed');
  const dir = publicDir();
  // startGatewayServer logs its own 'gateway listening' line with port and gatewayId.
  const started = await startGatewayServer({ config, ...backends, logger, version: VERSION, ...(dir === undefined ? {} : { publicDir: dir }) });
  onShutdownSignal(
    async (signal) => {
      logger.info({ signal }, 'gateway stopping');
      await started.close();
      await backends.close();
      logger.info({}, 'gateway stopped');
    },
    (error) => logger.error({ err: error }, 'gateway stop failed'),
  );
}
