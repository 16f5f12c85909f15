// Test doubles for the client's injected dependencies: a hand-driven clock, a scriptable SockJS and a fake gateway.
import { MessagingClient, type ConnectOptions } from '../client.js';
import type { Clock, SockJSLike, SockJSOptions } from '../transport.js';

interface Timer {
  id: number;
  at: number;
  callback: () => void;
}

export class FakeClock implements Clock {
  now = 0;
  #nextId = 1;
  #timers: Timer[] = [];

  setTimeout(callback: () => void, ms: number): unknown {
    const timer = { id: this.#nextId++, at: this.now + Math.max(0, ms), callback };
    this.#timers.push(timer);
    return timer.id;
  }

  clearTimeout(handle: unknown): void {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  }

  get pending(): number {
    return this.#timers.length;
  }

  /** Delays of the timers due in the future, relative to now. */
  delays(): number[] {
    return this.#timers.map((t) => t.at - this.now);
  }

  /** Advances time, firing due timers in order (and the microtasks they start) one by one. */
  async tick(ms: number): Promise<void> {
    const end = this.now + ms;
    for (;;) {
      await flush();
      const due = this.#timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((t) => t !== due);
      this.now = due.at;
      due.callback();
    }
    this.now = end;
    await flush();
  }
}

/** Lets pending promise chains (fetch, json()) settle. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((resolve) => setTimeout(resolve, 0));
}

export class FakeSockJS implements SockJSLike {
  static instances: FakeSockJS[] = [];
  static reset(): void {
    FakeSockJS.instances = [];
  }
  static get last(): FakeSockJS {
    const last = FakeSockJS.instances.at(-1);
    if (!last) throw new Error('no socket was opened');
    return last;
  }

  readonly url: URL;
  readonly options: SockJSOptions | undefined;
  readyState = 0;
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  readonly sent: Record<string, unknown>[] = [];
  closedByClient = false;

  constructor(url: string, _reserved?: unknown, options?: SockJSOptions) {
    this.url = new URL(url);
    this.options = options;
    FakeSockJS.instances.push(this);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error('InvalidStateError: the connection has not been established yet');
    this.sent.push(JSON.parse(data) as Record<string, unknown>);
  }

  close(): void {
    this.closedByClient = true;
    this.readyState = 3;
  }

  /** The server accepts: open, then the welcome frame. */
  welcome(nodeId: string, userId = this.url.searchParams.get('userId') ?? ''): void {
    this.readyState = 1;
    this.onopen?.({});
    this.receive({ type: 'welcome', userId, nodeId });
  }

  receive(frame: unknown): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  serverClose(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  messages(): Record<string, unknown>[] {
    return this.sent.filter((f) => f['type'] === 'message');
  }
}

export interface ConnectCall {
  body: { userId: string; avoid?: string[] };
  headers: Record<string, string>;
}

/**
 * A scriptable `/connect`. By default each call hands out the next node of `nodes` (round robin); push a
 * `{status, body}` or an Error onto `script` to answer the next call differently.
 */
export class FakeGateway {
  readonly calls: ConnectCall[] = [];
  readonly script: ({ status: number; body: unknown } | Error)[] = [];
  #next = 0;

  constructor(readonly nodes: string[] = ['node-a', 'node-b']) {}

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, key) => {
      headers[key] = value;
    });
    this.calls.push({ body: JSON.parse(String(init?.body)) as ConnectCall['body'], headers });
    if (String(input) !== 'http://gw.test/connect') throw new Error(`unexpected url ${String(input)}`);
    const scripted = this.script.shift();
    if (scripted instanceof Error) throw scripted;
    if (scripted) return new Response(JSON.stringify(scripted.body), { status: scripted.status });
    const nodeId = this.nodes[this.#next++ % this.nodes.length] ?? 'node-a';
    const userId = this.calls.at(-1)?.body.userId ?? '';
    return new Response(
      JSON.stringify({
        userId,
        listeningAddress: `http://${nodeId}.test/ws`,
        listeningKey: `key-${this.calls.length}`,
        acked: false,
        nodeId,
      }),
      { status: 200, headers: { 'content-type': 'application/json' } },
    );
  };
}

/** A client on the fakes above (random 0.5, pings off unless overridden), not started yet. */
export function fakeClient(overrides: Partial<ConnectOptions> = {}): { clock: FakeClock; gateway: FakeGateway; client: MessagingClient } {
  FakeSockJS.reset();
  const clock = new FakeClock();
  const gateway = new FakeGateway();
  const client = new MessagingClient({
    gatewayUrl: 'http://gw.test',
    userId: 'alice',
    fetch: gateway.fetch,
    SockJS: FakeSockJS,
    clock,
    random: () => 0.5,
    pingIntervalMs: 0,
    ...overrides,
  });
  return { clock, gateway, client };
}

/** Starts the harness's client and lets the first node (`node-a`) welcome it. */
export async function welcomed<H extends { client: MessagingClient }>(harness: H): Promise<H> {
  const ready = harness.client.start();
  await flush();
  FakeSockJS.last.welcome('node-a');
  await ready;
  return harness;
}
