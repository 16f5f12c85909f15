/**
 * `make image`: starts a Docker daemon of our own (state in .cache/docker, kept for the layer cache), makes or finds
 * the base images, builds the Dockerfile as `messaging-server:dev` (the tag the local overlay deploys), prints what
 * it did and the image's size, and stops the daemon. `IMAGE_TAR=<file>` also saves the image there (`docker load`).
 */
import { join } from 'node:path';
import { buildImage, mib } from './build-image.js';
import { startDockerDaemon } from './docker-daemon.js';
import { IMAGE_TAG } from './image-tag.js';

const root = join(import.meta.dirname, '..', '..');
const log = (line: string): void => console.log(`image: ${line}`);

const started = Date.now();
log(`starting dockerd (vfs, no bridge, no iptables; state in ${join(root, '.cache', 'docker')})`);
const daemon = await startDockerDaemon(join(root, '.cache', 'docker'));
try {
  const built = await buildImage(daemon, { root, tag: IMAGE_TAG, log });
  log(`built ${built.tag} in ${built.buildSeconds.toFixed(1)} s (base ${built.baseSeconds.toFixed(1)} s)`);
  log(`size ${mib(built.sizeBytes)} (base ${built.base.runtime}: ${mib(built.baseSizeBytes)}, the app ${mib(built.sizeBytes - built.baseSizeBytes)})`);
  const tar = process.env['IMAGE_TAR'];
  if (tar) {
    await daemon.docker(['save', '-o', tar, built.tag]);
    log(`saved to ${tar} (docker load -i ${tar})`);
  }
} finally {
  await daemon.stop();
}
log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
