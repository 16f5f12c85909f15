import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const run = promisify(execFile);

/**
 * A throwaway network namespace with one non-loopback interface, for browser tests: Chromium gathers ICE candidates
 * only on non-loopback interfaces, and a namespace keeps the whole cluster and the browser off the host's network.
 *
 * Both ends of the veth pair live inside the namespace, so nothing is attached to the host: a packet routed out of
 * it arrives at the other end in the same namespace, which does not forward (a new namespace starts with forwarding
 * off), and is dropped. The addresses can therefore never clash with the host's.
 */
export interface Netns {
  readonly name: string;
  /** The namespace's non-loopback address; processes inside reach each other and themselves on it. */
  readonly address: string;
  /** `ip netns exec <name>`: prefix a command with these to run it inside. */
  readonly exec: readonly string[];
  /** PIDs of every process inside. */
  pids(): Promise<number[]>;
  /** Kills every process inside (SIGKILL), waits for them to go, and deletes the namespace. Never throws. */
  remove(): Promise<void>;
}

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: 10_000 });
  return stdout;
}

export const NETNS_ADDRESS = '10.203.0.2';

function namespaceHandle(name: string): Netns {
  const netns: Netns = {
    name,
    address: NETNS_ADDRESS,
    exec: ['ip', 'netns', 'exec', name],
    pids: async () => {
      const out = await ip('netns', 'pids', name).catch(() => '');
      return out.split('\n').filter(Boolean).map(Number);
    },
    remove: async () => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const pids = await netns.pids();
        if (pids.length === 0) break;
        for (const pid of pids) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        await sleep(100);
      }
      await ip('netns', 'del', name).catch(() => undefined);
    },
  };
  return netns;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces left by runs that were killed before their cleanup (named after a pid that is gone). */
async function sweepStale(): Promise<void> {
  const list = await ip('netns', 'list').catch(() => '');
  for (const match of list.matchAll(/^msg-e2e-(\d+)\b/gm)) {
    const pid = Number(match[1]);
    if (pid !== process.pid && !alive(pid)) await namespaceHandle(`msg-e2e-${String(pid)}`).remove();
  }
}

export async function createNetns(name = `msg-e2e-${String(process.pid)}`): Promise<Netns> {
  await sweepStale();
  try {
    await ip('netns', 'add', name);
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr?.trim() || (error as Error).message;
    throw new Error(
      `cannot create network namespace ${name} (${detail}). The browser end-to-end test needs root or CAP_NET_ADMIN ` +
        '(`ip netns add`, `ip link add … type veth`); CI runs it as root.',
    );
  }
  // Created straight inside the namespace, so these names cannot clash with the host's or another run's.
  const veth = 'e2e-veth';
  const netns = namespaceHandle(name);
  try {
    // IPv4 only: no IPv6 link-local candidates, so every run picks the same ICE pair (best effort: a kernel without
    // IPv6 has no such switch).
    await run('ip', ['netns', 'exec', name, 'sh', '-c', 'for f in all default; do echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done 2>/dev/null; true']);
    await ip('link', 'add', `${veth}a`, 'netns', name, 'type', 'veth', 'peer', 'name', `${veth}b`, 'netns', name);
    const inside = (...args: string[]): Promise<string> => ip('-n', name, ...args);
    await inside('addr', 'add', `${NETNS_ADDRESS}/30`, 'dev', `${veth}a`);
    await inside('link', 'set', `${veth}a`, 'up');
    await inside('link', 'set', `${veth}b`, 'up');
    await inside('link', 'set', 'lo', 'up');
    // WebRTC picks its default local address by routing towards a public address; without a route it finds none.
    await inside('route', 'add', 'default', 'dev', `${veth}a`);
  } catch (error) {
    await netns.remove();
    throw error;
  }
  return netns;
}
