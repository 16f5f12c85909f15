import { setTimeout as sleep } from 'node:timers/promises';
import { MessagingClient, isMessagingError, type ConnectOptions } from '@messaging-server/client';
import type { Ledger } from './ledger.js';
import type { NodeProxies } from './proxies.js';
import { Vanisher } from './vanisher.js';

/** One welcome: which node a user's session landed on, and when (ms since the run's start). */
export interface SessionEvent {
  at: number;
  userId: string;
  nodeId: string;
  /** The join wave the user belongs to (`initial`, `scale-out`, …). */
  cohort: string;
}

/** One reconnect episode, from the SDK's `reconnecting` to its next `open`. */
export interface ReconnectEpisode {
  userId: string;
  startedAt: number;
  ms?: number;
}

/** A close the SDK will not recover from by itself (anything but the client's own close). */
export interface TerminalClose {
  userId: string;
  reason: string;
  code?: number;
}

/** A message frame that reached a client it was not addressed to. */
export interface Misdelivery {
  receiver: string;
  to: string;
  from: string;
}

export interface FleetOptions {
  gatewayUrls: string[];
  ledger: Ledger;
  /** ms since the run's start. */
  clock: () => number;
  /** Every open client sends one message to its partner per tick. */
  intervalMs: number;
  /** A stream with this many unanswered sends skips a tick (keeps a stalled partner from piling up sends). */
  maxInflightPerStream: number;
  sdk?: Partial<ConnectOptions>;
  /**
   * Issue 24: the second users of the first `proxiedPairs` receipted pairs reach their nodes through these proxies
   * (the silent-death fault freezes them). Without proxies nobody is routed.
   */
  proxies?: NodeProxies;
  proxiedPairs?: number;
  /** The half whose pairs are routed (default receipts; v1.1 only to show what receipts prevent). */
  proxiedHalf?: Half;
}

/** The two halves of the fleet: receipts on (contract v1.2) and off (a v1.1 client). */
export type Half = 'receipts' | 'v1.1';

/** Odd pairs confirm what they receive (receipts on), even pairs do not: half the clients each, in every cohort. */
export function halfOfPair(pair: number): Half {
  return pair % 2 === 1 ? 'receipts' : 'v1.1';
}

interface Member {
  client: MessagingClient;
  partner: string;
  stream: string;
  inflight: number;
  /** No sends while paused, nor after `stopAt` (ms on the run's clock). */
  paused: boolean;
  stopAt: number;
  half: Half;
}

/**
 * K pairs of SDK clients that send each other numbered messages and record every fate in the ledger. The clients
 * reconnect by themselves (close codes, backoff, avoid); the fleet only observes them.
 */
export class Fleet {
  readonly sessions: SessionEvent[] = [];
  readonly reconnects: ReconnectEpisode[] = [];
  readonly connectErrors: Record<string, number> = {};
  readonly terminalCloses: TerminalClose[] = [];
  readonly misdelivered: Misdelivery[] = [];
  private readonly members = new Map<string, Member>();
  /** Users welcomed at least once: a joining client waits for its partner, as a real app waits for its peer. */
  private readonly arrived = new Set<string>();
  private readonly vanishers = new Map<string, Vanisher>();
  private readonly openEpisodes = new Map<string, ReconnectEpisode>();
  private timer: NodeJS.Timeout | undefined;
  private pairCount = 0;
  /** Users whose connections pass through the proxies. */
  readonly proxied: string[] = [];
  /** Streams into a user of each half (pairs are one half each, so both directions of a pair share it). */
  private readonly halves = new Map<string, Half>();

  constructor(private readonly options: FleetOptions) {}

  get size(): number {
    return this.members.size;
  }

  get openCount(): number {
    let open = 0;
    for (const m of this.members.values()) if (m.client.state === 'open') open++;
    return open;
  }

  /** Open connections per node, as the clients see them. */
  clientView(): Record<string, number> {
    const view: Record<string, number> = {};
    for (const m of this.members.values()) {
      const nodeId = m.client.nodeId;
      if (nodeId !== undefined) view[nodeId] = (view[nodeId] ?? 0) + 1;
    }
    return view;
  }

  /**
   * Connects `count` new pairs, `concurrency` clients at a time and, with `perSecond`, no faster than that;
   * resolves once all are welcomed.
   */
  async addPairs(count: number, cohort: string, concurrency = 8, perSecond = Number.POSITIVE_INFINITY): Promise<string[]> {
    const userIds: string[] = [];
    const pairs: number[] = [];
    for (let i = 0; i < count; i++) {
      const pair = ++this.pairCount;
      pairs.push(pair);
      userIds.push(`pair${String(pair)}-a`, `pair${String(pair)}-b`);
    }
    let next = 0;
    const startedAt = Date.now();
    const worker = async (): Promise<void> => {
      while (next < userIds.length) {
        const index = next++;
        const due = startedAt + (index * 1000) / perSecond - Date.now();
        if (due > 0) await sleep(due);
        const userId = userIds[index] as string;
        const partner = index % 2 === 0 ? (userIds[index + 1] as string) : (userIds[index - 1] as string);
        const gatewayUrl = this.options.gatewayUrls[Math.floor(index / 2) % this.options.gatewayUrls.length] as string;
        await this.startClient(userId, partner, gatewayUrl, cohort, halfOfPair(pairs[Math.floor(index / 2)] as number));
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, userIds.length) }, worker));
    return userIds;
  }

  /**
   * Connects `count` pairs whose second user drops off the network later (`vanish`) and never comes back; the first
   * one is an ordinary SDK client sending to it. Returns the vanishing users.
   */
  async addVanishingPairs(count: number, gatewayUrl: string): Promise<string[]> {
    const gone: string[] = [];
    for (let i = 0; i < count; i++) {
      const pair = ++this.pairCount;
      const [a, b] = [`pair${String(pair)}-a`, `pair${String(pair)}-gone`];
      const vanisher = new Vanisher(b, (from, content) => this.received(b, b, from, content));
      await vanisher.start(gatewayUrl);
      this.vanishers.set(b, vanisher);
      this.arrived.add(b);
      // The vanisher is a raw v1.1 connection; its partner's half only decides how the partner confirms (it gets nothing).
      await this.startClient(a, b, gatewayUrl, 'vanishing pairs', halfOfPair(pair));
      gone.push(b);
    }
    return gone;
  }

  /** The streams that send to a vanishing user. */
  streamsTo(userIds: readonly string[]): string[] {
    return [...this.members.values()].filter((m) => userIds.includes(m.partner)).map((m) => m.stream);
  }

  /** Holds the streams' sends until `resume`. */
  pause(streams: readonly string[]): void {
    for (const m of this.members.values()) if (streams.includes(m.stream)) m.paused = true;
  }

  resume(streams: readonly string[], stopAt = Number.POSITIVE_INFINITY): void {
    for (const m of this.members.values()) {
      if (!streams.includes(m.stream)) continue;
      m.paused = false;
      m.stopAt = stopAt;
    }
  }

  vanish(userIds: readonly string[]): void {
    for (const userId of userIds) this.vanishers.get(userId)?.vanish();
  }

  /** Messages the SDKs received a second time and dropped (re-deliveries after a move or a silent death). */
  repeatsDropped(half?: Half): number {
    let n = 0;
    for (const m of this.members.values()) if (half === undefined || m.half === half) n += m.client.repeatsDropped;
    return n;
  }

  repeatsDroppedBy(userIds: readonly string[]): number {
    let n = 0;
    for (const userId of userIds) n += this.members.get(userId)?.client.repeatsDropped ?? 0;
    return n;
  }

  /** The half a stream (`from>to`) belongs to: that of its recipient. */
  halfOf(stream: string): Half | undefined {
    return this.halves.get(stream);
  }

  clientsOf(half: Half): number {
    return [...this.members.values()].filter((m) => m.half === half).length;
  }

  isOpen(userId: string): boolean {
    return this.members.get(userId)?.client.state === 'open';
  }

  /** Welcomes a user got after `sinceMs` (on the run's clock). */
  sessionsSince(userId: string, sinceMs: number): SessionEvent[] {
    return this.sessions.filter((s) => s.userId === userId && s.at >= sinceMs);
  }

  /** Receipt is recorded under the client that got the frame, never under the frame's own `to`. */
  private received(receiver: string, to: string, from: string, content: unknown): void {
    if (to !== receiver) this.misdelivered.push({ receiver, to, from });
    const seq = (content as { n?: unknown } | null)?.n;
    if (typeof seq === 'number') this.options.ledger.receive(`${from}>${receiver}`, seq);
  }

  /** Whether this user goes through the proxies: the second user of one of the first receipted pairs. */
  private routed(userId: string, half: Half): boolean {
    const { proxies, proxiedPairs = 0, proxiedHalf = 'receipts' } = this.options;
    return proxies !== undefined && half === proxiedHalf && userId.endsWith('-b') && this.proxied.length < proxiedPairs;
  }

  private async startClient(userId: string, partner: string, gatewayUrl: string, cohort: string, half: Half): Promise<void> {
    const routed = this.routed(userId, half);
    if (routed) this.proxied.push(userId);
    // Receipts set explicitly either way: the SDK's default (on) must not decide which half a client is in.
    const client = new MessagingClient({
      ...this.options.sdk,
      gatewayUrl,
      userId,
      receipts: half === 'receipts',
      ...(routed && this.options.proxies ? { fetch: this.options.proxies.fetch } : {}),
    });
    const stream = `${userId}>${partner}`;
    const member: Member = { client, partner, stream, inflight: 0, paused: false, stopAt: Number.POSITIVE_INFINITY, half };
    this.members.set(userId, member);
    this.halves.set(stream, half);
    this.halves.set(`${partner}>${userId}`, half);
    client.on('session', (s) => {
      this.arrived.add(userId);
      this.sessions.push({ at: this.options.clock(), userId, nodeId: s.nodeId, cohort });
    });
    client.on('state', (state) => {
      if (state === 'reconnecting' && !this.openEpisodes.has(userId)) {
        const episode: ReconnectEpisode = { userId, startedAt: this.options.clock() };
        this.openEpisodes.set(userId, episode);
        this.reconnects.push(episode);
      } else if (state === 'open') {
        const episode = this.openEpisodes.get(userId);
        if (episode) {
          episode.ms = this.options.clock() - episode.startedAt;
          this.openEpisodes.delete(userId);
        }
      }
    });
    client.on('error', (e) => {
      this.connectErrors[e.code] = (this.connectErrors[e.code] ?? 0) + 1;
    });
    client.on('closed', (info) => {
      if (info.reason !== 'client') {
        this.terminalCloses.push(info.code === undefined ? { userId, reason: info.reason } : { userId, reason: info.reason, code: info.code });
      }
    });
    // A message the server hands to the wrong client counts as missing at its recipient (and unknown where it landed).
    client.on('message', (m) => this.received(userId, m.to, m.from, m.content));
    await client.start();
  }

  startTraffic(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.options.intervalMs);
  }

  stopTraffic(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private tick(): void {
    for (const member of this.members.values()) {
      // Only while open: a send queued in the SDK during a long outage could time out without the server ever
      // seeing it, and that would blur "the server said nothing" with "the client never sent it".
      if (member.client.state !== 'open' || member.inflight >= this.options.maxInflightPerStream) continue;
      if (member.paused || this.options.clock() >= member.stopAt || !this.arrived.has(member.partner)) continue;
      const seq = this.options.ledger.send(member.stream);
      member.inflight++;
      member.client.send(member.partner, { n: seq }).then(
        () => {
          member.inflight--;
          this.options.ledger.settle(member.stream, seq);
        },
        (error: unknown) => {
          member.inflight--;
          this.options.ledger.settle(member.stream, seq, isMessagingError(error) ? error.code : 'UNKNOWN');
        },
      );
    }
  }

  close(): void {
    this.stopTraffic();
    for (const m of this.members.values()) m.client.close();
  }
}
