/** One-shot readings of the backing services and processes: etcd's /metrics, memcached's `stats`, RSS from /proc. */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { cpuSeconds, rssKiB } from '../bench/procstat.js';

/** Cumulative etcd counters; rates come from the difference of two readings. */
export interface EtcdReading {
  /**
   * grpc_server_msg_received_total by method (those above zero): unary requests plus every message on a stream
   * (lease keepalives, watch requests).
   */
  received: Record<string, number>;
  /** etcd_debugging_mvcc_* counters and gauges: put_total, range_total, txn_total, delete_total, events_total, watcher_total. */
  mvcc: Record<string, number>;
}

const GRPC_LINE = /^grpc_server_msg_received_total\{([^}]*)\} ([0-9.e+]+)$/;
const MVCC_LINE = /^etcd_debugging_mvcc_([a-z_]+) ([0-9.e+]+)$/;
const MVCC_KEYS = new Set(['put_total', 'range_total', 'txn_total', 'delete_total', 'events_total', 'watcher_total', 'watch_stream_total', 'slow_watcher_total']);

export function parseEtcdMetrics(text: string): EtcdReading {
  const reading: EtcdReading = { received: {}, mvcc: {} };
  for (const line of text.split('\n')) {
    const grpc = GRPC_LINE.exec(line);
    if (grpc) {
      const method = /grpc_method="([^"]+)"/.exec(grpc[1] ?? '')?.[1] ?? '?';
      const value = Number(grpc[2]);
      if (value > 0) reading.received[method] = (reading.received[method] ?? 0) + value;
      continue;
    }
    const mvcc = MVCC_LINE.exec(line);
    if (mvcc && MVCC_KEYS.has(mvcc[1] as string)) reading.mvcc[mvcc[1] as string] = Number(mvcc[2]);
  }
  return reading;
}

export async function readEtcd(endpoint: string): Promise<EtcdReading> {
  const res = await fetch(`${endpoint}/metrics`, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`etcd /metrics answered ${String(res.status)}`);
  return parseEtcdMetrics(await res.text());
}

/** The counters of memcached's `stats` that a session store moves, plus its item count and size. */
export type MemcachedReading = Record<string, number>;

const MEMCACHED_KEYS = new Set(['cmd_get', 'cmd_set', 'cmd_touch', 'delete_hits', 'delete_misses', 'curr_items', 'bytes', 'curr_connections', 'total_connections']);

export function parseMemcachedStats(text: string): MemcachedReading {
  const stats: MemcachedReading = {};
  for (const match of text.matchAll(/^STAT (\S+) (\S+)\r?$/gm)) {
    const value = Number(match[2]);
    if (MEMCACHED_KEYS.has(match[1] as string) && Number.isFinite(value)) stats[match[1] as string] = value;
  }
  return stats;
}

export function readMemcached(address: string): Promise<MemcachedReading> {
  const [host = '127.0.0.1', port = '11211'] = address.split(':');
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: Number(port) });
    let text = '';
    const timer = setTimeout(() => socket.destroy(new Error('memcached stats timed out')), 2000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('stats\r\n'));
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (!text.endsWith('END\r\n')) return;
      clearTimeout(timer);
      socket.end();
      resolve(parseMemcachedStats(text));
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
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

/** Pids of this process's direct children whose command name is `name` (etcd and memcached: the testkit starts them). */
export function childPids(name: string): number[] {
  const own = String(process.pid);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1];
      if (comm === name && ppid === own) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
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

let ticks: number | undefined;

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
  ticks ??= Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number);
  const t = ticks;
  return { processes: (user + nice + system) / t, interrupts: (irq + softirq) / t, steal: steal / t, total: (user + nice + system + idle + iowait + irq + softirq + steal) / t };
}
