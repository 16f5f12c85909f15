import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The demo page and browser bundle, built by the client package (`npm run build:browser -w packages/client`). */
export function publicDir(): string | undefined {
  const client = dirname(createRequire(import.meta.url).resolve('@messaging-server/client/package.json'));
  const dir = join(client, 'dist', 'browser');
  return existsSync(dir) ? dir : undefined;
}
