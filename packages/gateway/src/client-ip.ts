import { BlockList, isIP } from 'node:net';

/** `::ffff:10.0.0.1` → `10.0.0.1`, so an IPv4 client is one client whichever socket family it arrived on. */
export function normalizeIp(address: string): string {
  const trimmed = address.trim();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(trimmed);
  return mapped?.[1] ?? trimmed.toLowerCase();
}

function family(address: string): 'ipv4' | 'ipv6' | undefined {
  const kind = isIP(address);
  return kind === 4 ? 'ipv4' : kind === 6 ? 'ipv6' : undefined;
}

/**
 * Which address a request comes from. `X-Forwarded-For` is believed only hop by hop from the right, and only while
 * the hop that handed it to us is a trusted proxy (`MSG_TRUSTED_PROXIES`): a client cannot pick its own address by
 * sending the header itself.
 */
export class ClientIpResolver {
  private readonly trusted = new BlockList();
  private readonly any: boolean;

  constructor(trustedProxies: readonly string[] = []) {
    for (const entry of trustedProxies) {
      const [address = '', prefix] = entry.split('/');
      const kind = family(normalizeIp(address));
      if (kind === undefined) throw new Error(`not an IP or CIDR: ${entry}`);
      if (prefix === undefined) this.trusted.addAddress(normalizeIp(address), kind);
      else this.trusted.addSubnet(normalizeIp(address), Number(prefix), kind);
    }
    this.any = trustedProxies.length > 0;
  }

  private isTrusted(address: string): boolean {
    const kind = family(address);
    return kind !== undefined && this.trusted.check(address, kind);
  }

  resolve(remoteAddress: string | undefined, forwardedFor: string | string[] | undefined): string {
    let current = normalizeIp(remoteAddress ?? '');
    if (!this.any || forwardedFor === undefined) return current || 'unknown';
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
      .split(',')
      .map(normalizeIp)
      .filter((hop) => hop.length > 0);
    while (this.isTrusted(current) && hops.length > 0) {
      const next = hops.pop() as string;
      // A garbled entry ends the chain: the last good hop is the best we know.
      if (family(next) === undefined) break;
      current = next;
    }
    return current || 'unknown';
  }
}
