import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { postConnect } from '@messaging-server/harness/wire';
import { MessagingClient, MessagingError, type ClientLogger, type IncomingMessage } from '@messaging-server/client';
import type { JsonValue } from '@messaging-server/protocol';

const execFileAsync = promisify(execFile);

/**
 * Test clients for the fault tests (issue 5): SDK clients whose every welcome, close and /connect is recorded, and
 * a ledger that holds every message sent with an id to exactly one outcome. "Silently lost" is what the contract
 * forbids: a message the cluster never answered (no ack, no error before the SDK's own deadline), or one acked
 * but never handed to its recipient.
 */

export interface Welcome {
  nodeId: string;
  at: number;
}

export interface Close {
  code: number;
  reason: string;
  nodeId: string | undefined;
  at: number;
  /** The connection had been welcomed (false: an attempt that failed before its welcome, e.g. a transport timeout). */
  welcomed: boolean;
}

export interface ConnectCall {
  avoid: string[];
  at: number;
}

/** Codes the SDK produces without hearing from the node: the sender knows the fate is unknown, so not silent. */
const CLIENT_SIDE_FAILURES = new Set(['CONNECTION_LOST', 'CLOSED', 'SEND_QUEUE_FULL']);

export class TrackedClient {
  readonly welcomes: Welcome[] = [];
  readonly closes: Close[] = [];
  readonly connects: ConnectCall[] = [];
  readonly client: MessagingClient;

  constructor(
    readonly userId: string,
    gatewayUrl: string,
    onMessage: (to: TrackedClient, message: IncomingMessage) => void,
    options: { sendTimeoutMs?: number } = {},
  ) {
    const closes = this.closes;
    let welcomed = false;
    const logger: ClientLogger = {
      debug() {},
      info(fields, message) {
        if (message === 'connection closed') {
          closes.push({ code: Number(fields['code']), reason: String(fields['reason'] ?? ''), nodeId: fields['nodeId'] as string | undefined, at: Date.now(), welcomed });
          welcomed = false;
        }
      },
      warn() {},
      error() {},
    };
    const connects = this.connects;
    const recordingFetch: typeof fetch = (input, init) => {
      if (typeof init?.body === 'string') {
        const body = JSON.parse(init.body) as { avoid?: string[] };
        connects.push({ avoid: body.avoid ?? [], at: Date.now() });
      }
      return fetch(input, init);
    };
    this.client = new MessagingClient({
      gatewayUrl,
      userId,
      logger,
      fetch: recordingFetch,
      // One transport keeps a fleet of a thousand light; the SDK's reconnect logic is what is under test.
      // The transport timeout is generous because a loaded 2-core CI machine can take seconds to open a socket.
      sockjsOptions: { transports: ['websocket'], timeout: 10_000 },
      pingIntervalMs: 0,
      sendTimeoutMs: options.sendTimeoutMs ?? 20_000,
      connectTimeoutMs: 60_000,
      requestTimeoutMs: 5_000,
    });
    this.client.on('session', ({ nodeId }) => {
      welcomed = true;
      this.welcomes.push({ nodeId, at: Date.now() });
    });
    this.client.on('message', (message) => onMessage(this, message));
  }

  /** The node of the current connection (undefined while reconnecting). */
  get nodeId(): string | undefined {
    return this.client.nodeId;
  }

  get lastWelcome(): Welcome | undefined {
    return this.welcomes[this.welcomes.length - 1];
  }

  start(): Promise<void> {
    return this.client.start();
  }
}

export type Outcome = { kind: 'pending' } | { kind: 'acked'; at: number } | { kind: 'error'; code: string; at: number };

export interface Sent {
  key: string;
  from: string;
  to: string;
  seq: number;
  sentAt: number;
  outcome: Outcome;
  received: number;
  receivedAt?: number;
}

export interface LedgerReport {
  sent: number;
  acked: number;
  errored: number;
  errors: Record<string, number>;
  /** Never answered by the end, or answered only by the SDK's TIMEOUT: the cluster said nothing. */
  unanswered: number;
  /** Acked, yet the recipient never got it. */
  ackedNotReceived: number;
  /** A contract error (not a client-side CONNECTION_LOST/CLOSED) for a message that did reach its recipient. */
  errorButReceived: number;
  /** CONNECTION_LOST or CLOSED (fate unknown to the sender) that did reach the recipient: allowed, only counted. */
  unknownFateReceived: number;
  duplicates: number;
  /** Messages from one sender to one recipient that arrived after a later one. */
  outOfOrder: number;
  silentlyLost: number;
}

/** Every message the fault tests send, and what became of it on both ends. */
export class MessageLedger {
  private readonly sent = new Map<string, Sent>();
  private readonly seqByPair = new Map<string, number>();
  private readonly lastReceivedSeq = new Map<string, number>();
  private outOfOrder = 0;
  private counter = 0;

  /** Pass to TrackedClient as its onMessage. */
  readonly onMessage = (to: TrackedClient, message: IncomingMessage): void => {
    const content = message.content as { k?: unknown; s?: unknown } | null;
    if (!content || typeof content !== 'object' || typeof content.k !== 'string') return;
    const record = this.sent.get(content.k);
    if (!record || record.to !== to.userId) return;
    record.received += 1;
    record.receivedAt ??= Date.now();
    const pair = `${record.from}>${record.to}`;
    const last = this.lastReceivedSeq.get(pair) ?? -1;
    if (record.seq < last) this.outOfOrder += 1;
    else this.lastReceivedSeq.set(pair, record.seq);
  };

  /** Sends one tracked message; resolves with its outcome (never rejects). */
  send(from: TrackedClient, to: string, extra: Record<string, JsonValue> = {}): Promise<Outcome> {
    const pair = `${from.userId}>${to}`;
    const seq = (this.seqByPair.get(pair) ?? -1) + 1;
    this.seqByPair.set(pair, seq);
    const key = `m${String(++this.counter)}`;
    const record: Sent = { key, from: from.userId, to, seq, sentAt: Date.now(), outcome: { kind: 'pending' }, received: 0 };
    this.sent.set(key, record);
    return from.client.send(to, { k: key, s: seq, ...extra }).then(
      () => (record.outcome = { kind: 'acked', at: Date.now() }),
      (error: unknown) => {
        const code = error instanceof MessagingError ? error.code : `THROWN:${String(error)}`;
        return (record.outcome = { kind: 'error', code, at: Date.now() });
      },
    );
  }

  get size(): number {
    return this.sent.size;
  }

  /** Messages not yet acked or errored. */
  get unsettled(): number {
    let n = 0;
    for (const r of this.sent.values()) if (r.outcome.kind === 'pending') n += 1;
    return n;
  }

  /** Acked messages whose recipient has not got them yet. */
  get inTransit(): number {
    let n = 0;
    for (const r of this.sent.values()) if (r.outcome.kind === 'acked' && r.received === 0) n += 1;
    return n;
  }

  records(): Iterable<Sent> {
    return this.sent.values();
  }

  /**
   * Waits (up to `timeoutMs`) until every message has its outcome and every acked one has reached its recipient.
   * Does not throw: what is still missing then shows up in `report()` as silently lost, with `suspects()` to say why.
   */
  async settle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((this.unsettled > 0 || this.inTransit > 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  }

  /** The silently lost messages, for the failure message. */
  suspects(limit = 5): { key: string; from: string; to: string; sentAt: number; outcome: Outcome; received: number }[] {
    const out = [];
    for (const r of this.sent.values()) {
      const lost = r.outcome.kind === 'pending' || (r.outcome.kind === 'error' && r.outcome.code === 'TIMEOUT') || (r.outcome.kind === 'acked' && r.received === 0);
      if (lost) out.push({ key: r.key, from: r.from, to: r.to, sentAt: r.sentAt, outcome: r.outcome, received: r.received });
      if (out.length >= limit) break;
    }
    return out;
  }

  report(): LedgerReport {
    const report: LedgerReport = {
      sent: this.sent.size,
      acked: 0,
      errored: 0,
      errors: {},
      unanswered: 0,
      ackedNotReceived: 0,
      errorButReceived: 0,
      unknownFateReceived: 0,
      duplicates: 0,
      outOfOrder: this.outOfOrder,
      silentlyLost: 0,
    };
    for (const r of this.sent.values()) {
      if (r.received > 1) report.duplicates += 1;
      if (r.outcome.kind === 'acked') {
        report.acked += 1;
        if (r.received === 0) report.ackedNotReceived += 1;
      } else if (r.outcome.kind === 'error') {
        report.errored += 1;
        report.errors[r.outcome.code] = (report.errors[r.outcome.code] ?? 0) + 1;
        if (r.outcome.code === 'TIMEOUT') report.unanswered += 1;
        else if (r.received > 0 && CLIENT_SIDE_FAILURES.has(r.outcome.code)) report.unknownFateReceived += 1;
        else if (r.received > 0) report.errorButReceived += 1;
      } else {
        report.unanswered += 1;
      }
    }
    report.silentlyLost = report.unanswered + report.ackedNotReceived;
    return report;
  }
}

/** Runs `task` over `items` with at most `limit` in flight. */
export async function inBatches<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i] as T);
      }
    }),
  );
  return results;
}

/** Starts SDK clients, `limit` at a time, each resolved after its first welcome. */
export async function startClients(
  gatewayUrls: readonly string[],
  userIds: readonly string[],
  ledger: MessageLedger,
  options: { limit?: number; sendTimeoutMs?: number } = {},
): Promise<TrackedClient[]> {
  let i = 0;
  return inBatches(userIds, options.limit ?? 50, async (userId) => {
    const gateway = gatewayUrls[i++ % gatewayUrls.length] as string;
    const tracked = new TrackedClient(userId, gateway, ledger.onMessage, options.sendTimeoutMs === undefined ? {} : { sendTimeoutMs: options.sendTimeoutMs });
    await tracked.start();
    return tracked;
  });
}

export function closeClients(clients: Iterable<TrackedClient>): void {
  for (const c of clients) c.client.close();
}

/** Keys under `prefix`, read with etcdctl, as an SRE would (`etcdctl get --prefix --keys-only`). */
export async function etcdKeys(endpoint: string, prefix: string): Promise<string[]> {
  const { stdout } = await execFileAsync('etcdctl', ['--endpoints', endpoint, '--command-timeout=3s', 'get', '--prefix', '--keys-only', prefix], {
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 5000,
  });
  return stdout.split('\n').filter((line) => line.trim() !== '');
}

export async function httpStatus(url: string, timeoutMs = 2000): Promise<number> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

export interface TimedConnect {
  status: number;
  body: { nodeId?: string; error?: { code?: string } };
  ms: number;
}

/** POST /connect, timed; a network failure, a timeout or a body that is not JSON is status 0. */
export async function timedConnect(gatewayUrl: string, userId: string, avoid?: string[]): Promise<TimedConnect> {
  const started = performance.now();
  try {
    const answer = await postConnect(gatewayUrl, { userId, avoid }, { timeoutMs: 5000 });
    return { status: answer.status, body: JSON.parse(answer.text) as TimedConnect['body'], ms: answer.ms };
  } catch {
    return { status: 0, body: {}, ms: performance.now() - started };
  }
}

/** Sleeps for a fixed span: only where the span itself is the scenario (an outage of 15 s), never to wait for a state. */
export function hold(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls `tick` every `intervalMs` until stopped; the promises it returns are collected for the end. */
export function every(intervalMs: number, tick: () => Promise<unknown> | void): { stop(): Promise<void> } {
  const inFlight = new Set<Promise<unknown>>();
  const timer = setInterval(() => {
    const result = tick();
    if (result) {
      inFlight.add(result);
      void result.finally(() => inFlight.delete(result));
    }
  }, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await Promise.allSettled([...inFlight]);
    },
  };
}
