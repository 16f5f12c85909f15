/**
 * The scale run's load generator: a child process (commands over IPC, see loadgen-driver.ts) that holds every client
 * as a raw WebSocket on the node's `<prefix>/websocket` transport (the harness's wire client): plain JSON frames, no
 * SockJS framing and no sockjs-client, so 10,000 clients fit in one process beside the cluster. Clients behave as the SDK does where it
 * matters here: a close with a recoverable code (4000 on a drain) is followed by /connect after a short random delay,
 * with the one Backoff schedule on failures; a pair's side asks the gateway to avoid its partner's node; a room
 * member connects with its room's name and joins it (loadgen-rooms.ts).
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { Pool } from 'undici';
import type WebSocket from 'ws';
import { Backoff } from '@messaging-server/protocol';
import { closeSocket, connectSession, gatewayPool, openSession, whenWelcomed } from '../wire.js';
import { emitToParent, serveCommands } from '../forked-helper.js';
import { AllocationLog, LatencyLog, type AllocationFigures, type LatencyFigures } from './loadgen-logs.js';
import { RoomLoad, totals, type LoadTotals, type RoomArgs, type RoomFigures } from './loadgen-rooms.js';

interface Client {
  /** The user id of the current connection (idle clients get a new one on every churn). */
  id: string;
  role: 'idle' | 'pair' | 'room';
  partner?: Client;
  /** A room member: placed by its room's name, joins it once. */
  room?: string;
  joined?: boolean;
  peers?: Client[];
  ws?: WebSocket;
  nodeId?: string | undefined;
  open: boolean;
  /** Set before this side closes the connection itself: that close is not followed by a reconnect. */
  leaving: boolean;
  backoff: Backoff;
  /** When its connection dropped (performance.now()), until it is welcomed again. */
  droppedAt?: number | undefined;
  generation: number;
}

interface Frame {
  type: string;
  nodeId?: string;
  room?: string;
  id?: string;
  content?: { t: number; c: number };
  code?: string;
}

let gateways: { url: string; pool: Pool }[] = [];
let nextGateway = 0;
let stopping = false;
const clients: Client[] = [];
const idle: Client[] = [];
const pairSides: Client[] = [];
const rooms = new RoomLoad();
const allocations = new AllocationLog();
let latency = new LatencyLog(1000, Date.now());
const counters = { failedAttempts: 0, firstError: undefined as string | undefined, closesByCode: new Map<number, number>() };


function newClient(id: string, role: Client['role']): Client {
  const client: Client = { id, role, open: false, leaving: false, backoff: new Backoff({ initialMs: 250, maxMs: 5000 }), generation: 0 };
  clients.push(client);
  return client;
}

/** /connect through the next gateway, then the raw socket; resolves on the node's welcome. */
async function connect(client: Client): Promise<void> {
  const index = nextGateway++ % gateways.length;
  const gateway = gateways[index] as { url: string; pool: Pool };
  const avoid = client.partner?.nodeId;
  const session = await connectSession(gateway.url, { userId: client.id, avoid: avoid ? [avoid] : undefined, room: client.room }, { pool: gateway.pool });
  allocations.record(index, session.nodeId, Date.now());
  const ws = openSession({ ...session, userId: client.id }, { handshakeTimeoutMs: 10_000 });
  client.ws = ws;
  let welcomed = false;
  ws.on('close', (code: number) => {
    counters.closesByCode.set(code, (counters.closesByCode.get(code) ?? 0) + 1);
    if (!welcomed || client.ws !== ws) return;
    client.open = false;
    if (!client.leaving && !stopping) reconnect(client, client.backoff.next());
  });
  const welcome = await whenWelcomed<Frame>(ws, 'raw', (frame) => {
    if (client.role === 'room' && rooms.onFrame(client, frame)) return;
    if (frame.type === 'message' && frame.content) pairReceived(frame.content.t, frame.content.c === 1);
    else if (frame.type === 'ack') latency.acked();
    else if (frame.type === 'error') latency.errored(frame.code ?? '?');
  });
  welcomed = true;
  client.open = true;
  client.nodeId = welcome.nodeId;
  rooms.welcomed(client);
}

/**
 * Keeps trying, on the Backoff schedule, until the client is welcomed again (or the run stops), timed from the drop.
 * `drop`: the node closed it (a drain); `churn`: a new user arriving in place of one that left.
 */
function reconnect(client: Client, delayMs: number, kind: 'drop' | 'churn' = 'drop'): void {
  client.droppedAt ??= performance.now();
  setTimeout(() => {
    if (stopping) return;
    connect(client).then(
      () => {
        const took = performance.now() - (client.droppedAt ?? performance.now());
        if (kind === 'drop') latency.reconnected(took);
        else latency.connected(took);
        client.droppedAt = undefined;
        client.backoff.reset();
      },
      (error: unknown) => {
        counters.failedAttempts += 1;
        counters.firstError ??= error instanceof Error ? error.message : String(error);
        reconnect(client, client.backoff.next(), kind);
      },
    );
  }, delayMs);
}

/** Opens `clients` with `concurrency` in flight; a failed attempt is retried on the Backoff schedule. */
async function openAll(list: Client[], concurrency: number, what: string): Promise<{ opened: number; seconds: number }> {
  const t0 = performance.now();
  let next = 0;
  let opened = 0;
  let lastProgress = t0;
  const worker = async (): Promise<void> => {
    while (next < list.length && !stopping) {
      const client = list[next++] as Client;
      for (;;) {
        try {
          await connect(client);
          opened += 1;
          client.backoff.reset();
          break;
        } catch (error) {
          counters.failedAttempts += 1;
          counters.firstError ??= error instanceof Error ? error.message : String(error);
          if (stopping) return;
          await sleep(client.backoff.next());
        }
      }
      if (performance.now() - lastProgress > 2000) {
        lastProgress = performance.now();
        emitToParent({ event: 'progress', text: `${what}: ${String(opened)}/${String(list.length)} open` });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { opened, seconds: (performance.now() - t0) / 1000 };
}

export interface OpenArgs {
  count: number;
  prefix: string;
  concurrency: number;
}

async function openIdle(args: OpenArgs): Promise<{ opened: number; seconds: number }> {
  const made = Array.from({ length: args.count }, (_, i) => newClient(`${args.prefix}-${String(i)}`, 'idle'));
  idle.push(...made);
  return openAll(made, args.concurrency, 'idle clients');
}

/** Opens the first sides, then the second sides (each avoiding its partner's node, so the pair spans two nodes). */
async function openPairs(args: OpenArgs): Promise<{ opened: number; seconds: number }> {
  const first = Array.from({ length: args.count }, (_, i) => newClient(`${args.prefix}-${String(i)}-a`, 'pair'));
  const second = first.map((a, i) => {
    const b = newClient(`${args.prefix}-${String(i)}-b`, 'pair');
    a.partner = b;
    b.partner = a;
    return b;
  });
  pairSides.push(...first, ...second);
  const a = await openAll(first, args.concurrency, 'pairs (first sides)');
  const b = await openAll(second, args.concurrency, 'pairs (second sides)');
  return { opened: a.opened + b.opened, seconds: a.seconds + b.seconds };
}

/** Opens the room members (each connects with its room's name), then waits until every one has its `joined`. */
async function openRooms(args: RoomArgs): Promise<{ opened: number; joined: number; seconds: number }> {
  const t0 = performance.now();
  const made = rooms.create(args, (id) => newClient(id, 'room'));
  const open = await openAll(made, args.concurrency, 'room members');
  const deadline = performance.now() + 15_000;
  while (rooms.joinedCount < made.length && performance.now() < deadline) await sleep(100);
  return { opened: open.opened, joined: rooms.joinedCount, seconds: (performance.now() - t0) / 1000 };
}

function pairReceived(sentAt: number, crossNode: boolean): void {
  if (crossNode) totals.pairCross += 1;
  else totals.pairSame += 1;
  latency.received(sentAt, crossNode);
}

export interface TrafficArgs {
  pairIntervalMs: number;
  /** Each room member sends its room one message per interval. */
  roomIntervalMs: number;
  churnPerSecond: number;
  bucketMs: number;
}

let ticker: NodeJS.Timeout | undefined;
/** This process's own event-loop delay during the traffic: how much of a latency figure is the load generator's. */
const loopDelay = monitorEventLoopDelay({ resolution: 10 });

/** Which kinds send; a paused kind does not catch up when it resumes (the run's CPU windows pause one kind at a time). */
const pace = { pairs: true, rooms: true };

/** Pair messages, room messages and idle churn, all paced on one 20 ms tick. */
function startTraffic(args: TrafficArgs): { startedAt: number } {
  const startedAt = Date.now();
  latency = new LatencyLog(args.bucketMs, startedAt);
  loopDelay.reset();
  loopDelay.enable();
  const t0 = performance.now();
  let sent = 0;
  let roomSent = 0;
  let churned = 0;
  const tick = (): void => {
    const elapsed = performance.now() - t0;
    const dueSends = Math.floor((elapsed / args.pairIntervalMs) * pairSides.length);
    if (!pace.pairs) sent = dueSends;
    for (; sent < dueSends; sent += 1) send(pairSides[sent % pairSides.length] as Client);
    const dueRooms = Math.floor((elapsed / args.roomIntervalMs) * rooms.members.length);
    if (!pace.rooms) roomSent = dueRooms;
    for (; roomSent < dueRooms; roomSent += 1) rooms.send(rooms.members[roomSent % rooms.members.length] as Client);
    const dueChurn = Math.floor((elapsed / 1000) * args.churnPerSecond);
    for (; churned < dueChurn; churned += 1) churnOne();
    ticker = setTimeout(tick, 20);
  };
  tick();
  return { startedAt };
}

function send(from: Client): void {
  const to = from.partner;
  if (!to) return;
  if (!from.open || !from.ws) return latency.skipped();
  const cross = to.nodeId !== undefined && to.nodeId !== from.nodeId ? 1 : 0;
  const id = latency.sent();
  totals.pairSent += 1;
  from.ws.send(`{"type":"message","to":"${to.id}","id":"${String(id)}","content":{"t":${String(performance.now())},"c":${String(cross)}}}`);
}

/** One idle user leaves (a clean close) and a new one arrives in its place through the next gateway. */
function churnOne(): void {
  for (let tries = 0; tries < 10; tries += 1) {
    const client = idle[Math.floor(Math.random() * idle.length)];
    if (!client?.open || !client.ws || client.leaving) continue;
    const ws = client.ws;
    client.leaving = true;
    client.open = false;
    ws.once('close', () => {
      client.leaving = false;
      client.generation += 1;
      client.id = `${client.id.split('~')[0] ?? client.id}~${String(client.generation)}`;
      client.droppedAt = performance.now();
      reconnect(client, 0, 'churn');
    });
    ws.close(1000);
    return;
  }
}

/** The join/drain phase starts: latency figures from here on (the warm-up's are kept apart). */
function startPhase(): { startedAt: number } {
  const startedAt = Date.now();
  latency.startPhase(startedAt);
  rooms.startPhase();
  loopDelay.reset();
  return { startedAt };
}

export interface LoadResult {
  allocations: AllocationFigures;
  latency: LatencyFigures;
  rooms: RoomFigures;
  failedAttempts: number;
  firstError?: string;
  closesByCode: Record<string, number>;
  /** The load generator's event-loop delay over the traffic phase, ms. */
  eventLoopDelayMs: { p50: number; p99: number; max: number };
}

async function stopTraffic(): Promise<LoadResult> {
  if (ticker) clearTimeout(ticker);
  ticker = undefined;
  // Let what is in flight land: messages held for a moving user arrive after its reconnect.
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline && latency.unanswered() + rooms.unanswered() > 0) await sleep(50);
  // An ack can overtake its message (two sockets): let the last messages land too.
  await sleep(200);
  loopDelay.disable();
  const result: LoadResult = {
    eventLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
    allocations: allocations.figures(),
    latency: latency.figures(),
    rooms: rooms.figures(),
    failedAttempts: counters.failedAttempts,
    closesByCode: Object.fromEntries([...counters.closesByCode].map(([code, n]) => [String(code), n])),
  };
  if (counters.firstError !== undefined) result.firstError = counters.firstError;
  return result;
}

function status(): { open: number; reconnecting: number; clients: number } {
  let open = 0;
  let reconnecting = 0;
  for (const c of clients) {
    if (c.open) open += 1;
    else if (c.droppedAt !== undefined) reconnecting += 1;
  }
  return { open, reconnecting, clients: clients.length };
}

async function closeAll(): Promise<{ closed: number }> {
  stopping = true;
  if (ticker) clearTimeout(ticker);
  const closing = clients.filter((c) => c.ws && c.ws.readyState !== c.ws.CLOSED);
  for (const c of closing) c.leaving = true;
  await Promise.all(closing.map((c) => closeSocket(c.ws as WebSocket, 1000)));
  await Promise.all(gateways.map((g) => g.pool.close()));
  return { closed: closing.length };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function init(urls: string[]): { gateways: number } {
  gateways = urls.map((url) => ({ url, pool: gatewayPool(url, 16) }));
  return { gateways: gateways.length };
}

/** The commands the scale run sends (through loadgen-driver.ts). */
const commands = {
  init,
  idle: openIdle,
  pairs: openPairs,
  rooms: openRooms,
  /** Pauses or resumes each kind of message (a paused kind does not catch up). */
  pace: (kinds: { pairs: boolean; rooms: boolean }) => ({ ...Object.assign(pace, kinds) }),
  /** Running totals since the load generator started (the edges of a measurement window). */
  totals: (): LoadTotals => ({ ...totals }),
  start: startTraffic,
  /** Ends the warm-up; answers the phase's start (epoch ms, the load generator's clock). */
  phase: startPhase,
  status,
  stop: stopTraffic,
  close: closeAll,
};
export type ScaleCommands = typeof commands;

serveCommands(commands);
