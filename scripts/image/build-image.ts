/**
 * Builds the Dockerfile on a daemon: base images first (base-image.ts), the machine's CA bundle in the build stages
 * when it has one, the legacy builder (BuildKit would pull its own frontend image), host networking (the daemon
 * has no bridge). Used by `make image` and by the image test.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ensureBaseImages, type BaseImages } from './base-image.js';
import type { DockerDaemon } from './docker-daemon.js';

const execFileAsync = promisify(execFile);

/** The machine's trust store: npm in a build container trusts what this machine trusts (a TLS-inspecting proxy). */
const MACHINE_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
/** Where the Dockerfile's build stages look for it (git-ignored, removed after the build). */
const CONTEXT_CA = '.build-ca.pem';

export interface BuiltImage {
  tag: string;
  base: BaseImages;
  /** Seconds for the base images (0 when present) and for `docker build`. */
  baseSeconds: number;
  buildSeconds: number;
  /** Bytes, as `docker image inspect` reports them (the unpacked layers). */
  sizeBytes: number;
  /** The base image's share of sizeBytes. */
  baseSizeBytes: number;
}

export async function buildImage(daemon: DockerDaemon, options: { root: string; tag: string; log: (line: string) => void }): Promise<BuiltImage> {
  const { root, tag, log } = options;
  const baseStarted = Date.now();
  const base = await ensureBaseImages(daemon, { dockerfile: join(root, 'Dockerfile'), cacheDir: join(root, '.cache', 'image'), log });
  const baseSeconds = (Date.now() - baseStarted) / 1000;
  log(`base: ${base.how}`);
  const args = ['build', '--network', 'host', '--build-arg', `NODE_IMAGE=${base.node}`, '--build-arg', `RUNTIME_IMAGE=${base.runtime}`, '-t', tag];
  const ca = join(root, CONTEXT_CA);
  if (existsSync(MACHINE_CA_BUNDLE)) {
    copyFileSync(MACHINE_CA_BUNDLE, ca);
    args.push('--build-arg', `NODE_EXTRA_CA_CERTS=/app/${CONTEXT_CA}`);
  }
  log(`build: docker build (legacy builder, host network) -t ${tag} ${root}`);
  const started = Date.now();
  try {
    const { stdout } = await execFileAsync('docker', [...args, root], { env: daemon.env, timeout: 1_200_000, maxBuffer: 256 * 1024 * 1024 });
    // The builder's step log, for finding which step missed the cache.
    writeFileSync(join(root, '.cache', 'image', 'build.log'), stdout);
  } catch (error) {
    const output = error instanceof Error && 'stdout' in error ? `${String(error.stdout)}\n${String((error as { stderr?: unknown }).stderr)}` : '';
    throw new Error(`docker build failed:\n${output.slice(-6000)}`, { cause: error });
  } finally {
    rmSync(ca, { force: true });
  }
  const buildSeconds = (Date.now() - started) / 1000;
  const sizeBytes = await imageSize(daemon, tag);
  const baseSizeBytes = await imageSize(daemon, base.runtime);
  return { tag, base, baseSeconds, buildSeconds, sizeBytes, baseSizeBytes };
}

export async function imageSize(daemon: DockerDaemon, image: string): Promise<number> {
  return Number((await daemon.docker(['image', 'inspect', '--format', '{{.Size}}', image])).trim());
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
