/**
 * Runs one command with DOCKER_HOST pointing at a daemon of our own on the state `make image` left in .cache/docker,
 * then stops the daemon: `node --import tsx scripts/image/with-daemon.ts docker run --rm --network host messaging-server:dev --help`.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { startDockerDaemon } from './docker-daemon.js';

const [command, ...args] = process.argv.slice(2);
if (command === undefined) throw new Error('usage: with-daemon.ts COMMAND [ARG…]');
const daemon = await startDockerDaemon(join(import.meta.dirname, '..', '..', '.cache', 'docker'));
let status = 1;
try {
  status = spawnSync(command, args, { env: daemon.env, stdio: 'inherit' }).status ?? 1;
} finally {
  await daemon.stop();
}
process.exitCode = status;
