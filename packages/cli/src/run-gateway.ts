import { createPinoLogger, loadConfig } from '@messaging-server/core';
import { startGatewayServer } from '@messaging-server/gateway';
import { createBackends } from './backends.js';
import { onShutdownSignal } from './lifecycle.js';
import { publicDir } from './public-dir.js';
import { VERSION } from './version.js';

export async function runGateway(env: Record<string, string | undefined>): Promise<void> {
  const config = loadConfig('gateway', env);
  const logger = createPinoLogger({ level: config.logLevel, name: 'gateway' });
  if (config.production) {
    // Allowed, but worth a line an operator sees at start: each is a documented risk (docs/security.md).
    if (config.authJwtSecret === undefined && config.authJwksUrl === undefined) {
      logger.warn({}, 'production mode without /connect authentication: userIds are unauthenticated');
    }
    if (config.allowedOrigins.includes('*')) logger.warn({}, 'production mode with MSG_ALLOWED_ORIGINS=*');
    if (config.connectRatePerIpPerMinute === 0) logger.warn({}, 'production mode without a per-IP /connect limit');
  }
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
