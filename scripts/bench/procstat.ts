/** CPU time and RSS of a process, from /proc (Linux only, like the rest of the harness). */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // The command name may contain spaces; the fields after it are fixed.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / clockTicks();
}

/** Resident set size in KiB. */
export function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/m.exec(status);
  return match ? Number(match[1]) : NaN;
}

export function cpuOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
}

export function rssOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + rssKiB(pid), 0);
}

/** Read and write system calls so far (from /proc/<pid>/io; on loopback each socket write also wakes the reader). */
export function syscallsOf(pid: number): { reads: number; writes: number } {
  const io = readFileSync(`/proc/${String(pid)}/io`, 'utf8');
  return { reads: Number(/^syscr: (\d+)/m.exec(io)?.[1] ?? NaN), writes: Number(/^syscw: (\d+)/m.exec(io)?.[1] ?? NaN) };
}
