import { readFileSync } from 'node:fs';

/** The version recorded in etcd records and `/metrics`: the cli package's own. */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
