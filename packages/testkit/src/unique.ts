import { randomBytes } from 'node:crypto';

let counter = 0;

/**
 * A name no other test (in this process, or in a parallel run) uses: `<label>-<pid>-<n>-<random>`. Tests use it
 * for key prefixes instead of flushing shared state. Only characters valid in memcached and etcd keys.
 */
export function uniqueName(label: string): string {
  counter += 1;
  return `${label}-${String(process.pid)}-${String(counter)}-${randomBytes(3).toString('hex')}`;
}
