#!/usr/bin/env node
import {
  EtcdRegistry,
  etcdCredentials,
  MemcachedRoomStore,
  MemcachedSessionStore,
  UndiciPeerTransport,
  isBackendError,
  loadConfig,
  silentLogger,
  type PeerTransport,
  type Registry,
  type RoomStore,
  type SessionStore,
} from '@messaging-server/core';
import { credentialsOption, memcachedOptions } from '../backends.js';
import { parseArgs, UsageError } from '../flags.js';
import { EXIT, failAndExit } from '../lifecycle.js';
import { withLocalCluster } from '../msgctl/local-cluster.js';
import {
  drainCommand,
  gatewaysCommand,
  NotFoundError,
  nodesCommand,
  roomCommand,
  sessionCommand,
  watchCommand,
  type MsgctlContext,
} from '../msgctl/commands.js';

const USAGE = `usage: msgctl <command> [--endpoints URLS] [--prefix PREFIX] [--json]

  nodes              live nodes: state, address, connections, lease time left, age
  gateways           live gateways
  session <userId>   the session record (without its key) and whether its node is alive; exit 1 if none
  room <room>        the room's members in join order and the node its placement picks now; exit 1 if no members
  watch              one JSON line per registry change, until Ctrl-C
  drain <nodeId>     the node drains as on SIGTERM; waits until it is gone (--no-wait to return at once)

Every command takes --endpoints (MSG_ETCD_ENDPOINTS) and --prefix (MSG_ETCD_PREFIX); --json prints JSON for
scripts instead of a table. Without an endpoint, msgctl uses the cluster of \`make run\` when it finds its
.run/cluster.json in this directory or one above it. Every other MSG_* variable is a flag too (--memcached-servers, --memcached-prefix,
--cluster-secret, …). drain needs the cluster secret when the nodes have one (MSG_CLUSTER_SECRET or --cluster-secret).

Exit codes:
  0   ok
  1   not found: no session for that userId, no live node with that id, no members in that room
  2   usage: unknown command or flag, wrong arguments
  3   a backend failed or refused: etcd, memcached or the node unreachable, or the node refused the request
  78  invalid configuration (a MSG_* value)
`;

/** msgctl's own code for "a backend failed", so scripts can tell it from "not found". */
const EXIT_BACKEND = 3;

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, { json: 'boolean', help: 'boolean', 'no-wait': 'boolean', endpoints: 'string', prefix: 'string' });
  const [command, operand, ...extra] = args.positionals;
  if (args.options['help'] || command === undefined) {
    process.stdout.write(USAGE);
    process.exit(command === undefined && !args.options['help'] ? EXIT.usage : EXIT.ok);
  }
  const given: Record<string, string | undefined> = { ...process.env, ...args.configFlags };
  if (typeof args.options['endpoints'] === 'string') given['MSG_ETCD_ENDPOINTS'] = args.options['endpoints'];
  if (typeof args.options['prefix'] === 'string') given['MSG_ETCD_PREFIX'] = args.options['prefix'];
  const { env, cluster } = withLocalCluster(given, process.cwd());
  if (cluster && args.options['json'] !== true) process.stderr.write(`msgctl: using the \`make run\` cluster in ${cluster.file}\n`);
  const config = loadConfig('gateway', env);
  const clusterSecret = env['MSG_CLUSTER_SECRET'];

  const opened: { close(): Promise<void> }[] = [];
  const lazy = <T extends { close(): Promise<void> }>(make: () => T): (() => T) => {
    let value: T | undefined;
    return () => {
      if (!value) opened.push((value = make()));
      return value;
    };
  };
  const ctx: MsgctlContext = {
    config,
    json: args.options['json'] === true,
    out: (text) => process.stdout.write(text),
    registry: lazy<Registry>(
      () =>
        new EtcdRegistry({
          endpoints: config.etcdEndpoints,
          prefix: config.etcdPrefix,
          leaseTtlSeconds: config.leaseTtlSeconds,
          logger: silentLogger,
          ...credentialsOption(etcdCredentials(config)),
        }),
    ),
    sessions: lazy<SessionStore>(
      () =>
        new MemcachedSessionStore(memcachedOptions(config, silentLogger)),
    ),
    rooms: lazy<RoomStore>(
      () =>
        new MemcachedRoomStore(memcachedOptions(config, silentLogger)),
    ),
    transport: lazy<PeerTransport>(() => new UndiciPeerTransport(clusterSecret ? { clusterSecret } : {})),
  };
  const needsOperand = command === 'session' || command === 'drain' || command === 'room';
  if ((needsOperand && (operand === undefined || extra.length > 0)) || (!needsOperand && operand !== undefined)) {
    throw new UsageError(`wrong arguments for ${command} (try --help)`);
  }
  try {
    switch (command) {
      case 'nodes':
        await nodesCommand(ctx);
        break;
      case 'gateways':
        await gatewaysCommand(ctx);
        break;
      case 'session':
        await sessionCommand(ctx, operand ?? '');
        break;
      case 'room':
        await roomCommand(ctx, operand ?? '');
        break;
      case 'drain':
        await drainCommand(ctx, operand ?? '', args.options['no-wait'] !== true);
        break;
      case 'watch': {
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        process.once('SIGTERM', () => stop.abort());
        await watchCommand(ctx, stop.signal);
        break;
      }
      default:
        throw new UsageError(`unknown command ${command} (try --help)`);
    }
  } finally {
    await Promise.allSettled(opened.map((o) => o.close()));
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(EXIT.ok),
  (error: unknown) => {
    if (error instanceof NotFoundError) {
      process.stderr.write(`msgctl: ${error.message}\n`);
      process.exit(EXIT.failure);
    }
    if (isBackendError(error)) {
      process.stderr.write(`msgctl: ${error.message}\n`);
      process.exit(EXIT_BACKEND);
    }
    failAndExit('msgctl', error);
  },
);
