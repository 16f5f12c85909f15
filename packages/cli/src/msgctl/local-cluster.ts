import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Where `make run` (scripts/cluster.ts) describes the cluster it started, relative to the repository root. */
const LOCAL_CLUSTER_FILE = join('.run', 'cluster.json');

/** The part of that file msgctl needs: where etcd and memcached are, and the cluster's prefixes. */
export interface LocalClusterState {
  file: string;
  etcd: string;
  etcdPrefix?: string;
  memcached?: string;
  memcachedPrefix?: string;
}

const CONNECTION_VARIABLES = ['MSG_ETCD_ENDPOINTS', 'MSG_ETCD_PREFIX', 'MSG_MEMCACHED_SERVERS', 'MSG_MEMCACHED_PREFIX'];

/** The nearest `.run/cluster.json` in `dir` or a directory above it, if it names an etcd endpoint. */
export function findLocalCluster(dir: string): LocalClusterState | undefined {
  for (let current = dir; ; current = dirname(current)) {
    const file = join(current, LOCAL_CLUSTER_FILE);
    const state = readState(file);
    if (state) return state;
    if (dirname(current) === current) return undefined;
  }
}

function readState(file: string): LocalClusterState | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined; // absent, or being rewritten: as if there were no local cluster
  }
  const record = parsed as Record<string, unknown>;
  if (typeof record['etcd'] !== 'string') return undefined;
  const state: LocalClusterState = { file, etcd: record['etcd'] };
  if (typeof record['etcdPrefix'] === 'string') state.etcdPrefix = record['etcdPrefix'];
  if (typeof record['memcached'] === 'string') state.memcached = record['memcached'];
  if (typeof record['memcachedPrefix'] === 'string') state.memcachedPrefix = record['memcachedPrefix'];
  return state;
}

/**
 * msgctl's environment beside a `make run` cluster. Only when nothing names an etcd endpoint (neither
 * `MSG_ETCD_ENDPOINTS` nor `--endpoints`) does the local cluster fill in the connection settings, and then only those
 * not given: an explicit endpoint means another cluster, whose memcached and prefixes the file cannot know.
 */
export function withLocalCluster(
  env: Record<string, string | undefined>,
  cwd: string,
): { env: Record<string, string | undefined>; cluster?: LocalClusterState } {
  if (env['MSG_ETCD_ENDPOINTS'] !== undefined && env['MSG_ETCD_ENDPOINTS'] !== '') return { env };
  const cluster = findLocalCluster(cwd);
  if (!cluster) return { env };
  const fromFile: Record<string, string | undefined> = {
    MSG_ETCD_ENDPOINTS: cluster.etcd,
    MSG_ETCD_PREFIX: cluster.etcdPrefix,
    MSG_MEMCACHED_SERVERS: cluster.memcached,
    MSG_MEMCACHED_PREFIX: cluster.memcachedPrefix,
  };
  const merged = { ...env };
  for (const name of CONNECTION_VARIABLES) {
    if ((merged[name] === undefined || merged[name] === '') && fromFile[name] !== undefined) merged[name] = fromFile[name];
  }
  return { env: merged, cluster };
}
