/**
 * BENCH_BASELINE: ours built from another commit, so before and after run side by side in one invocation.
 * The commit is checked out in a throwaway git worktree under .tmp/bench/, installed and compiled once; a stamp
 * file marks a finished build, so later runs against the same commit reuse it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

export interface BaselineBuild {
  ref: string;
  commit: string;
  dir: string;
  /** The baseline's `messaging-server` CLI, for testkit's LocalCluster `cli` option. */
  cli: string;
}

function git(root: string, args: string[]): string {
  return execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}

/** Runs a build step with its output appended to `logFile`; a failure quotes the log's tail. */
function step(command: string, args: string[], cwd: string, logFile: string): Promise<void> {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { cwd, stdio: ['ignore', fd, fd], env: process.env });
  closeSync(fd);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      if (code === 0) return resolve();
      const tail = readFileSync(logFile, 'utf8').slice(-2000);
      reject(new Error(`${command} ${args.join(' ')} in ${cwd} exited ${String(code ?? signal)}:\n${tail}`));
    });
  });
}

/** Resolves `ref` here, and builds that commit once (cached by commit) in `${tmp}/base-<commit>`. */
export async function buildBaseline(ref: string, root: string, tmp: string, log: (text: string) => void): Promise<BaselineBuild> {
  let commit: string;
  try {
    commit = git(root, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]);
  } catch {
    throw new Error(`BENCH_BASELINE=${ref} is not a commit in ${root}`);
  }
  const short = commit.slice(0, 12);
  const dir = `${tmp}/base-${short}`;
  const cli = `${dir}/packages/cli/dist/bin/messaging-server.js`;
  // Beside the checkout, not in it, so the checkout stays exactly the commit.
  const stamp = `${tmp}/base-${short}.built`;
  const build: BaselineBuild = { ref, commit, dir, cli };
  if (existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === commit && existsSync(cli)) {
    log(`baseline ${ref} (${short}): already built in ${dir}`);
    return build;
  }
  const started = Date.now();
  mkdirSync(tmp, { recursive: true });
  const logFile = `${tmp}/base-${short}.build.log`;
  rmSync(logFile, { force: true });
  rmSync(stamp, { force: true });
  // A directory without the stamp is a build that was interrupted: start it again from a clean checkout.
  if (existsSync(dir)) {
    log(`baseline ${ref} (${short}): removing an unfinished build in ${dir}`);
    try {
      git(root, ['worktree', 'remove', '--force', dir]);
    } catch {
      // not (or no longer) a registered worktree; the directory goes below
    }
    rmSync(dir, { recursive: true, force: true });
  }
  log(`baseline ${ref} (${short}): git worktree add --detach ${dir}`);
  // --force: the path may still be registered from a checkout whose directory was deleted by hand.
  git(root, ['worktree', 'add', '--force', '--detach', dir, commit]);
  log(`baseline ${ref} (${short}): npm ci --prefer-offline (output in ${logFile})`);
  await step('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund'], dir, logFile);
  log(`baseline ${ref} (${short}): tsc -b`);
  await step(`${dir}/node_modules/.bin/tsc`, ['-b'], dir, logFile);
  if (!existsSync(cli)) throw new Error(`baseline ${ref} (${short}) built, but has no ${cli}`);
  writeFileSync(stamp, `${commit}\n`);
  log(`baseline ${ref} (${short}): built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return build;
}
