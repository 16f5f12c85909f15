#!/usr/bin/env node
import { configVariables } from '@messaging-server/core';
import { flagNameOf, parseArgs, UsageError } from '../flags.js';
import { EXIT, failAndExit } from '../lifecycle.js';
import { runGateway } from '../run-gateway.js';
import { runNode } from '../run-node.js';
import { runStandalone } from '../run-standalone.js';

const USAGE = `usage: messaging-server <gateway|node|standalone> [--flag value …]

Every MSG_* variable is also a flag (flags win), e.g. MSG_ETCD_ENDPOINTS → --etcd-endpoints.
  gateway     POST /connect, demo page, health and metrics (etcd + memcached)
  node        SockJS relay node (etcd + memcached)
  standalone  gateway and node in one process, in-memory registry and sessions (for trying it out)

Variables: ${configVariables().join(', ')}
`;

const runners = { gateway: runGateway, node: runNode, standalone: runStandalone } as const;

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, { help: 'boolean' });
  const command = args.positionals[0];
  if (args.options['help'] || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    process.exit(command === undefined && !args.options['help'] ? EXIT.usage : EXIT.ok);
  }
  if (!(command in runners) || args.positionals.length > 1) {
    throw new UsageError(`unknown command ${args.positionals.join(' ')} (try --help; flags are ${flagNameOf('MSG_PORT')} style)`);
  }
  await runners[command as keyof typeof runners]({ ...process.env, ...args.configFlags });
}

main(process.argv.slice(2)).catch((error: unknown) => failAndExit('messaging-server', error));
