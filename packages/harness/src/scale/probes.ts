/** One-shot readings of the backing services: etcd's /metrics and memcached's `stats` (processes: ../proc.ts). */
import { connect } from 'node:net';

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
