import { setTimeout as sleep } from 'node:timers/promises';
import { MessagingClient, isMessagingError, type ConnectOptions } from '@messaging-server/client';
import type { Ledger } from './ledger.js';
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
}

interface Member {
  client: MessagingClient;
  partner: string;
  stream: string;
  inflight: number;
  /** No sends while paused, nor after `stopAt` (ms on the run's clock). */
  paused: boolean;
  stopAt: number;
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
    for (let i = 0; i < count; i++) {
      const pair = ++this.pairCount;
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
        await this.startClient(userId, partner, gatewayUrl, cohort);
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
      await this.startClient(a, b, gatewayUrl, 'vanishing pairs');
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

  /** Messages the SDKs received a second time and dropped (contract v1.1's re-deliveries). */
  repeatsDropped(): number {
    let n = 0;
    for (const m of this.members.values()) n += m.client.repeatsDropped;
    return n;
  }

  /** Receipt is recorded under the client that got the frame, never under the frame's own `to`. */
  private received(receiver: string, to: string, from: string, content: unknown): void {
    if (to !== receiver) this.misdelivered.push({ receiver, to, from });
    const seq = (content as { n?: unknown } | null)?.n;
    if (typeof seq === 'number') this.options.ledger.receive(`${from}>${receiver}`, seq);
  }

  private async startClient(userId: string, partner: string, gatewayUrl: string, cohort: string): Promise<void> {
    const client = new MessagingClient({ ...this.options.sdk, gatewayUrl, userId });
    const member: Member = { client, partner, stream: `${userId}>${partner}`, inflight: 0, paused: false, stopAt: Number.POSITIVE_INFINITY };
    this.members.set(userId, member);
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
