import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The demo page and browser bundle, built by the client package (`npm run build:browser -w packages/client`). */
export function publicDir(): string | undefined {
  const dir = fileURLToPath(new URL('../../client/dist/browser/', import.meta.url));
  return existsSync(dir) ? dir : undefined;
}
