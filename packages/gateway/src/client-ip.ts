import { BlockList, isIP } from 'node:net';

/**
 * `::ffff:10.0.0.1`, `::ffff:a00:1` and `0:0:0:0:0:ffff:10.0.0.1` → `10.0.0.1`, so an IPv4 client is one client
 * whichever socket family it arrived on and however its address is spelled.
 */
export function normalizeIp(address: string): string {
  const trimmed = address.trim().toLowerCase();
  if (isIP(trimmed) !== 6) return trimmed;
  return embeddedIpv4(trimmed, MAPPED_PREFIX) ?? trimmed;
}

/** IPv4-mapped IPv6 (RFC 4291): the same host as the IPv4 address in its last 32 bits. */
const MAPPED_PREFIX = '0:0:0:0:0:ffff';
/** NAT64's well-known prefix (RFC 6052): an IPv4 client translated to IPv6 on its way (SIIT, 464XLAT). */
const NAT64_PREFIX = '64:ff9b:0:0:0:0';

/** The IPv4 address in the last 32 bits of an IPv6 address under `prefix` (its first 96 bits), if it is one. */
function embeddedIpv4(ipv6: string, prefix: string): string | undefined {
  const groups = ipv6Groups(ipv6);
  if (groups.slice(0, 6).join(':') !== prefix) return undefined;
  const [high = 0, low = 0] = groups.slice(6).map((group) => parseInt(group, 16));
  return [high >> 8, high & 0xff, low >> 8, low & 0xff].join('.');
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

/** The eight 16-bit groups of an IPv6 address in lower case without leading zeros, `::` and a dotted IPv4 tail expanded. */
function ipv6Groups(address: string): string[] {
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  const hex = dotted
    ? `${address.slice(0, dotted.index)}${((Number(dotted[1]) << 8) | Number(dotted[2])).toString(16)}:${((Number(dotted[3]) << 8) | Number(dotted[4])).toString(16)}`
    : address;
  const [head = '', tail] = hex.toLowerCase().split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - left.length - right.length }, () => '0');
  return [...left, ...zeros, ...right].map((group) => group.replace(/^0+(?=.)/, ''));
}

/**
 * What one client is, for per-address limits: an IPv4 address (also when it arrives IPv4-mapped or through NAT64), or
 * an IPv6 address's /64 (one subscriber usually holds a whole /64, so counting single IPv6 addresses would let one
 * client come from 2^64 of them).
 */
export function ipLimitKey(address: string): string {
  const ip = normalizeIp(address);
  if (family(ip) !== 'ipv6') return ip;
  // Every IPv4 client behind NAT64 shares 64:ff9b::/64: each is counted as the IPv4 address it carries.
  return embeddedIpv4(ip, NAT64_PREFIX) ?? `${ipv6Groups(ip).slice(0, 4).join(':')}::/64`;
}
