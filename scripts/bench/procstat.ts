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

/** Machine-wide CPU seconds so far: in processes (user, nice, system) and stolen by the hypervisor (from /proc/stat). */
export function machineCpu(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user, nice, system, , , , , steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return { busy: ((user ?? NaN) + (nice ?? NaN) + (system ?? NaN)) / clockTicks(), steal: (steal ?? NaN) / clockTicks() };
}

const PF_KTHREAD = 0x00200000;

/** CPU seconds of every kernel thread so far: ksoftirqd and kworkers carry the bench's own loopback traffic. */
export function kernelThreadsCpu(): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if ((Number(fields[6]) & PF_KTHREAD) !== 0) total += (Number(fields[11]) + Number(fields[12])) / clockTicks();
    } catch {
      // exited meanwhile
    }
  }
  return total;
}
