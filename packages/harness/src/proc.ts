/**
 * The harness's one reader of /proc (Linux only, like the rest of the harness): a process's CPU time, RSS and system
 * calls, everyone else's CPU, the machine's totals, and which children of this process run a given command.
 */
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

/** /proc/<pid>/stat: the command name, and the fields after it (field 3, the state, first; see proc(5)). */
function stat(pid: number | string): { comm: string; fields: string[] } {
  const text = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
  // The command name may contain spaces and parentheses; the fields after its last ')' are fixed.
  const end = text.lastIndexOf(')');
  return { comm: text.slice(text.indexOf('(') + 1, end), fields: text.slice(end + 2).split(' ') };
}

/** User + system CPU seconds the process has used so far. */
export function cpuSeconds(pid: number): number {
  const { fields } = stat(pid);
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
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

/** RSS in KiB, or undefined when the process has gone (a drained node may exit between listing and reading). */
export function rssIfAlive(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const kib = rssKiB(pid);
    return Number.isFinite(kib) ? kib : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds used so far, or undefined when the process has gone. */
export function cpuIfAlive(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return cpuSeconds(pid);
  } catch {
    return undefined;
  }
}

/** Read and write system calls so far (from /proc/<pid>/io; on loopback each socket write also wakes the reader). */
export function syscallsOf(pid: number): { reads: number; writes: number } {
  const io = readFileSync(`/proc/${String(pid)}/io`, 'utf8');
  return { reads: Number(/^syscr: (\d+)/m.exec(io)?.[1] ?? NaN), writes: Number(/^syscw: (\d+)/m.exec(io)?.[1] ?? NaN) };
}

/** Pids of this process's direct children whose command name is `name` (etcd and memcached: the testkit starts them). */
export function childPids(name: string): number[] {
  const own = String(process.pid);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { comm, fields } = stat(entry);
      if (comm === name && fields[1] === own) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** CPU seconds of the whole machine so far, from /proc/stat's first line. */
export interface MachineCpu {
  /** Every process, ours and anyone else's, user and system time. */
  processes: number;
  /** Interrupts and softirqs: mostly the kernel moving loopback packets, for every process at once. */
  interrupts: number;
  /** Time the hypervisor gave to other guests. */
  steal: number;
  total: number;
}

export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const t = clockTicks();
  return { processes: (user + nice + system) / t, interrupts: (irq + softirq) / t, steal: steal / t, total: (user + nice + system + idle + iowait + irq + softirq + steal) / t };
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
      const { fields } = stat(entry);
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
    return othersCpu(new Set(ours)) + machineCpu().steal;
  } catch {
    return NaN;
  }
}
