import { execFileSync } from 'node:child_process';

const prlimit = (...args: string[]): string => execFileSync('prlimit', ['--pid', String(process.pid), ...args], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();

/**
 * Ten thousand clients need more descriptors than a default shell allows, in the load generator and the nodes. The
 * children inherit this process's limit: raise it to 65536 where allowed (root), else to the hard limit. Returns the
 * soft limit now in force (0 when it cannot be read).
 */
export function raiseOpenFilesLimit(): number {
  const read = (): number[] => prlimit('--nofile', '--raw', '--noheadings', '--output', 'SOFT,HARD').trim().split(/\s+/).map(Number);
  try {
    prlimit('--nofile=65536:65536');
  } catch {
    try {
      const hard = read()[1] ?? 0;
      prlimit(`--nofile=${String(hard)}:${String(hard)}`);
    } catch {
      // keep what there is; the caller reports it
    }
  }
  try {
    return read()[0] ?? 0;
  } catch {
    return 0;
  }
}
