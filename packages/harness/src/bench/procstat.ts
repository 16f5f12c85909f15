/** CPU time and RSS of a process, from /proc (Linux only, like the rest of the harness). */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

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

/** CPU seconds the hypervisor has stolen from this machine so far (from /proc/stat). */
export function stolenCpu(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  return Number(line.trim().split(/\s+/)[8]) / clockTicks();
}

const PF_KTHREAD = 0x00200000;

/**
 * CPU seconds used so far by every process except kernel threads (ksoftirqd and kworkers carry the bench's own
 * loopback traffic) and the pids in `exclude`, their reaped children included (cutime, cstime). Over a window the
 * difference is everyone else's work: a process that exits meanwhile moves its whole time into its parent's
 * children's time, and the sum at the start already holds the part it used before. The same per-task accounting as
 * the watched processes' figures: /proc/stat's machine totals are tick samples, which on this VM disagreed with it by
 * 0.4-1.3 cores under loopback traffic. A watched process that exits inside the window would be counted here through
 * its parent; none does (the servers and the load generator outlive their runs).
 */
export function othersCpu(exclude: ReadonlySet<number>): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || exclude.has(Number(entry))) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if ((Number(fields[6]) & PF_KTHREAD) !== 0) continue;
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / clockTicks();
    } catch {
      // exited meanwhile
    }
  }
  return total;
}

/** Everyone else's CPU seconds so far (all but `ours` and the kernel's threads) plus the hypervisor's steal; NaN if unread. */
export function elsewhereCpu(ours: number[]): number {
  try {
    return othersCpu(new Set(ours)) + stolenCpu();
  } catch {
    return NaN;
  }
}
