// Issue 8, acceptance 1 and 5: generated garbage at a running cluster gets contract answers, crashes nothing, and
// costs a well-behaved pair nothing; the logs carry no listeningKey. Issue 13, acceptance 8: the same for raw
// requests and upgrades on a node's public port and for delivery requests on its internal API.
import { randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { expect } from 'chai';
import fc from 'fast-check';
import WebSocket from 'ws';
import { isValidUserId, nestedDeeperThan, type ServerFrame, type Session } from '@messaging-server/protocol';
import { connectUser, requestSession, SignedPeer, startCluster, waitFor, type LocalCluster, type TestSocket } from '@messaging-server/testkit';

const SEED = Number(process.env['FUZZ_SEED'] ?? Date.now() % 1_000_000);
// Held messages for a recipient that has a session but never connects expire after this: each such input's answer
// (EXPIRED) is waited for before the next input, so it is kept short.
const PENDING_TTL_MS = 300;
// At most one input per 20 ms: the fuzzer must stay inside the default message and byte rates (frames up to 200 KB),
// or the node would rightly cut it off for abuse and the run would test the rate limiter instead.
const INPUT_INTERVAL_MS = 20;
/** The test's own pings carry ids no generated input can guess. */
const SENTINEL = `sentinel-${randomUUID()}-`;
const CONNECT_RUNS = Number(process.env['FUZZ_CONNECT_RUNS'] ?? 1500);
const FRAME_RUNS = Number(process.env['FUZZ_FRAME_RUNS'] ?? 1500);

let userCounter = 0;
const uid = (label: string): string => `${label}-${String(process.pid)}-${String(++userCounter)}`;

/** POST /connect with exact bytes and headers (fetch refuses some of what a hostile client may send). */
function rawPost(url: string, body: Uint8Array, headers: Record<string, string>): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/connect`, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    // A 413 may close the connection before the whole body is written.
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' ? undefined : reject(error)));
    req.end(Buffer.from(body));
  });
}

const text = (value: string): Uint8Array => new TextEncoder().encode(value);
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;
const nestedObject = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

// A userId that is anything but well-formed, often: control characters, separators, unicode, lone surrogates.
const hostileString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: fc.constantFrom('\u0000', '\u0007', '\n', '\r', '\t', '\u001b', '\u007f', '\u2028', '\ud800', ' ', '/', '"', '\\', '%'), maxLength: 20 }),
  fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', 'a'.repeat(129), 'a'.repeat(128)),
);
const anyUserId = fc.oneof(
  hostileString,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string(), { maxLength: 3 }),
  fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 }),
  fc.stringMatching(/^[A-Za-z0-9._~@-]{1,16}$/),
);

const jsonBodies = fc.oneof(
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
  fc.record({ userId: anyUserId, avoid: fc.option(fc.oneof(fc.array(hostileString, { maxLength: 5 }), fc.string(), fc.integer()), { nil: undefined }) }).map((v) =>
    JSON.stringify(v),
  ),
  // Prototype pollution: the keys must reach the parser as text (JSON.stringify drops a real __proto__).
  fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.jsonValue({ maxDepth: 3 }), anyUserId).map(
    ([key, value, userId]) => `{"${key}":${JSON.stringify(value)},"userId":${JSON.stringify(userId) ?? 'null'}}`,
  ),
  fc.constantFrom('{"__proto__":{"userId":"polluted","isAdmin":true}}', '{"constructor":{"prototype":{"userId":"x"}}}'),
  fc.integer({ min: 1, max: 2500 }).map(nested),
  fc.integer({ min: 1, max: 800 }).map(nestedObject),
  fc.integer({ min: 4097, max: 40_000 }).map((n) => `{"userId":"${'x'.repeat(n)}"}`),
  fc.string({ maxLength: 300 }),
);

const contentTypes = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=latin1',
    'application/vnd.api+json',
    'application/x-www-form-urlencoded',
    'text/plain',
    'multipart/form-data; boundary=x',
    'application/xml',
    '*/*',
    'application/',
    'json',
  ),
  fc.stringMatching(/^[a-z]{1,10}\/[a-z+.-]{1,15}$/),
);

const connectInputs = fc.oneof(
  fc.record({ contentType: fc.option(contentTypes, { nil: undefined }), body: jsonBodies.map(text) }),
  fc.record({ contentType: fc.constant('application/json'), body: fc.uint8Array({ maxLength: 600 }) }),
  // Invalid UTF-8 around an otherwise plausible body.
  fc.record({
    contentType: fc.constantFrom('application/json', 'application/x-www-form-urlencoded'),
    body: fc.uint8Array({ minLength: 1, maxLength: 8 }).map((junk) => new Uint8Array([...text('{"userId":"a'), 0xc3, 0x28, 0xff, ...junk, ...text('"}')])),
  }),
  fc.record({
    contentType: fc.constant('application/x-www-form-urlencoded'),
    body: fc.tuple(fc.string(), fc.string()).map(([a, b]) => text(`userId=${encodeURIComponent(a)}&avoid=${b}&userId=${b}`)),
  }),
);

/**
 * The contract's answers, written out here from docs/protocol.md rather than read from the production tables the
 * test is checking: what a /connect with a garbage body may get (no auth, no origin list, no per-IP limit, replace
 * policy, every backend up), and the error codes of frames.
 */
const CONNECT_ERRORS: Record<string, number> = {
  INVALID_REQUEST: 400,
  INVALID_USER_ID: 400,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
};
const HTTP_RUNS = Number(process.env['FUZZ_HTTP_RUNS'] ?? 400);
const INTERNAL_RUNS = Number(process.env['FUZZ_INTERNAL_RUNS'] ?? 200);

/** One raw request for a node's public port: any method, target and headers, a body announced or chunked, an upgrade. */
const publicRequests = fc.record({
  method: fc.oneof(fc.constantFrom('GET', 'POST', 'OPTIONS', 'HEAD', 'PUT', 'DELETE', 'PATCH', 'CONNECT', 'TRACE', 'BREW'), fc.stringMatching(/^[A-Z]{1,12}$/)),
  target: fc.oneof(
    fc.constantFrom('/ws', '/ws/', '/ws/info', '/ws/websocket', '/ws/iframe.html', '/ws/chunking_test', '*', '/', '/internal/v1/deliver', '/metrics'),
    fc.tuple(fc.constantFrom('xhr', 'xhr_send', 'xhr_streaming', 'jsonp', 'jsonp_send', 'eventsource', 'htmlfile', 'websocket'), fc.stringMatching(/^[a-z0-9]{1,8}$/)).map(([t, sid]) => `/ws/000/${sid}/${t}?c=cb`),
    fc.stringMatching(/^\/[ -~]{0,60}$/).filter((t) => !/\s/.test(t)),
    fc.constantFrom('http://127.0.0.1/ws/websocket', 'https://x/ws/info', `/ws/${'a'.repeat(5000)}`, '/ws/%00%ff', '/ws/../../etc/passwd'),
  ),
  headers: fc.array(fc.tuple(fc.stringMatching(/^[A-Za-z-]{1,20}$/), fc.stringMatching(/^[ -~]{0,40}$/)), { maxLength: 80 }),
  upgrade: fc.boolean(),
  // Complete bodies only: a body shorter than its Content-Length is waited for, up to the 30 s request timeout.
  body: fc.oneof(fc.constant(undefined), fc.record({ length: fc.integer({ min: 0, max: 3 << 20 }), chunked: fc.boolean() })),
});

/** Sends one generated request; the outcome is the answer's status, 'closed' (cut without one) or 'hung' (neither within 2 s). */
function rawPublic(port: number, input: typeof publicRequests extends fc.Arbitrary<infer T> ? T : never): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    let done = false;
    const finish = (outcome: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 'hung'), 2000);
    const lines = [`${input.method} ${input.target} HTTP/1.1`, 'Host: 127.0.0.1', ...input.headers.map(([k, v]) => `X-${k}: ${v}`)];
    if (input.upgrade) lines.push('Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13');
    if (input.body) lines.push(input.body.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${String(input.body.length)}`);
    socket.on('connect', () => {
      socket.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (!input.body) return;
      if (input.body.length === 0) {
        // An empty chunked body is its last chunk alone; without it the body would be incomplete (see `body` above).
        if (input.body.chunked) socket.write('0\r\n\r\n');
        return;
      }
      const payload = Buffer.alloc(input.body.length, 0x61);
      socket.write(input.body.chunked ? Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]) : payload);
    });
    socket.on('data', (data: Buffer) => {
      received += data.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received)?.[1];
      // A status line is an answer; a long poll or stream that answered 200 may stay open, as it should.
      if (status !== undefined) finish(status);
    });
    socket.on('close', () => finish(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 'closed'));
    socket.on('error', () => undefined);
  });
}

/** Delivery requests from a registered node (with its real address or another), with forged, deep and plain messages. */
function deliverBodies(fromNode: string, internalUrl: string): fc.Arbitrary<string> {
  const message = fc.record({
    from: fc.oneof(fc.stringMatching(/^[a-z]{1,8}$/), hostileString),
    to: fc.oneof(fc.stringMatching(/^[a-z]{1,8}$/), hostileString),
    content: fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.integer({ min: 65, max: 20_000 }).map((d) => JSON.parse(nested(d)) as unknown)),
    cid: fc.string({ maxLength: 20 }),
    id: fc.option(fc.string({ minLength: 1, maxLength: 64 }), { nil: undefined }),
  });
  return fc
    .record({
      fromNode: fc.oneof(fc.constant(fromNode), fc.string({ maxLength: 20 })),
      replyTo: fc.oneof(fc.constant(internalUrl), fc.constantFrom('http://127.0.0.1:9/collect', 'http://169.254.169.254/', ''), fc.string({ maxLength: 40 })),
      budgetMs: fc.option(fc.oneof(fc.integer({ min: -10, max: 10_000 }), fc.double()), { nil: undefined }),
      messages: fc.array(message, { maxLength: 8 }),
    })
    .map((body) => {
      // A deep array is serialized by hand: JSON.stringify of it would overflow the stack here too.
      const text = JSON.stringify({ ...body, messages: body.messages.map((m) => ({ ...m, content: '__CONTENT__' })) });
      let i = 0;
      return text.replace(/"__CONTENT__"/g, () => {
        const content = (body.messages[i++] as { content: unknown }).content;
        return Array.isArray(content) && nestedDeeperThan(content, 64) ? nested(depthOf(content)) : JSON.stringify(content);
      });
    });
}

function depthOf(value: unknown): number {
  let depth = 0;
  let current = value;
  while (Array.isArray(current)) {
    depth += 1;
    current = current[0];
  }
  return depth;
}

const KNOWN_FRAME_TYPES = new Set(['welcome', 'message', 'ack', 'error', 'pong']);
const frameCodes = new Set(['INVALID_MESSAGE', 'MESSAGE_TOO_LARGE', 'FORBIDDEN_SENDER', 'PEER_UNAVAILABLE', 'EXPIRED', 'QUEUE_FULL', 'RATE_LIMITED', 'RELAY_FAILED']);

/** A raw WebSocket on sockjs's `/websocket` endpoint: what a hostile client would use. */
class RawClient {
  readonly frames: ServerFrame[] = [];
  readonly nonJson: string[] = [];
  closeCode: number | undefined;
  private readonly ws: WebSocket;
  private readonly waiters = new Set<() => void>();

  constructor(listeningAddress: string, session: Session) {
    const url = new URL(`${listeningAddress.replace(/^http/, 'ws')}/websocket`);
    url.searchParams.set('userId', session.userId);
    url.searchParams.set('listeningKey', session.listeningKey);
    this.ws = new WebSocket(url);
    this.ws.on('message', (data) => {
      const raw = String(data);
      try {
        this.frames.push(JSON.parse(raw) as ServerFrame);
      } catch {
        this.nonJson.push(raw);
      }
      for (const wake of this.waiters) wake();
    });
    this.ws.on('close', (code) => (this.closeCode = code));
    this.ws.on('error', () => undefined);
  }

  async open(): Promise<void> {
    await waitFor(() => this.frames.some((f) => f.type === 'welcome'), { what: 'raw client welcome', timeoutMs: 15_000 });
  }

  /** Resolves as soon as `condition` holds, checked on every arriving frame (no polling interval per input). */
  until(condition: () => boolean, timeoutMs: number, what: string | (() => string)): Promise<void> {
    if (condition()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const done = (error?: Error): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const check = (): void => {
        if (condition()) done();
      };
      const timer = setTimeout(() => done(new Error(`timed out after ${String(timeoutMs)} ms waiting for ${typeof what === 'string' ? what : what()}`)), timeoutMs);
      this.waiters.add(check);
    });
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  close(): void {
    this.ws.close();
  }
}

const frameValues = fc.oneof(
  fc.jsonValue({ maxDepth: 5 }).map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        type: fc.oneof(fc.constantFrom('message', 'ping', 'pong', 'welcome', 'error', 'MESSAGE', ''), fc.string(), fc.integer()),
        to: fc.oneof(hostileString, fc.integer(), fc.constant(null)),
        from: fc.oneof(hostileString, fc.constant(null)),
        content: fc.jsonValue({ maxDepth: 4 }),
        id: fc.oneof(fc.string({ maxLength: 80 }), fc.integer(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.tuple(fc.constantFrom('__proto__', 'constructor'), fc.jsonValue({ maxDepth: 2 }), hostileString).map(
    ([key, value, to]) => `{"${key}":${JSON.stringify(value)},"type":"message","to":${JSON.stringify(to)},"content":1,"id":"p"}`,
  ),
  fc.integer({ min: 1, max: 20_000 }).map(nested),
  // Deep content in an otherwise valid message to oneself: it is parsed, relayed and serialised again.
  fc.integer({ min: 1, max: 5000 }).map((d) => `{"type":"message","to":"SELF","content":${nested(d)},"id":"deep"}`),
  fc.integer({ min: 1, max: 5000 }).map(nestedObject),
  fc.integer({ min: 65_537, max: 200_000 }).map((n) => JSON.stringify({ type: 'message', to: 'nobody', content: 'z'.repeat(n), id: 'big' })),
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.constantFrom('', ' ', 'null', '[]', '"x"', '{"type":"message","to":"\\ud800","content":"\\udfff","id":"\\u0000"}'),
);

const frameInputs = fc.oneof(
  { weight: 8, arbitrary: frameValues.map((data) => ({ data, binary: false })) },
  // Invalid UTF-8 reaches the node as a binary frame (a text frame with it is refused by the WebSocket layer).
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ data: Buffer.from(bytes), binary: true })) },
);

/**
 * The answers among one input's frames (the test's own sentinel pongs excluded): acks, errors, other pongs, and deliveries
 * without an id (a message to oneself without an id is answered only by arriving). `consistent`: at most one
 * delivery, and a delivery with an id came with its ack.
 */
function answersIn(frames: ServerFrame[]): { answers: number; consistent: boolean } {
  let answers = 0;
  let deliveries = 0;
  let deliveredWithId = false;
  let acks = 0;
  for (const f of frames) {
    if (f.type === 'pong' && f.id?.startsWith(SENTINEL)) continue;
    if (f.type === 'message') {
      deliveries += 1;
      if (f.id === undefined) answers += 1;
      else deliveredWithId = true;
    } else if (f.type === 'ack') {
      acks += 1;
      answers += 1;
    } else if (f.type === 'error' || f.type === 'pong') {
      answers += 1;
    }
  }
  return { answers, consistent: deliveries <= 1 && (!deliveredWithId || acks === 1) };
}

/** Two well-behaved users sending to each other at a steady pace; `stop()` resolves when everything is settled. */
function wellBehavedPair(a: { session: Session; socket: TestSocket }, b: { session: Session; socket: TestSocket }) {
  let sent = 0;
  const timer = setInterval(() => {
    a.socket.send({ type: 'message', to: b.session.userId, content: { n: sent, sdp: 'v=0' }, id: `a${String(sent)}` });
    b.socket.send({ type: 'message', to: a.session.userId, content: { n: sent, sdp: 'v=0' }, id: `b${String(sent)}` });
    sent += 1;
  }, 25);
  return {
    async stop(): Promise<number> {
      clearInterval(timer);
      const settled = (s: TestSocket) => s.framesOfType('ack').length + s.framesOfType('error').length;
      await waitFor(() => settled(a.socket) >= sent && settled(b.socket) >= sent, { timeoutMs: 30_000, what: 'pair settled' });
      for (const [sender, receiver, prefix] of [
        [a, b, 'a'],
        [b, a, 'b'],
      ] as const) {
        expect(sender.socket.framesOfType('error'), `${prefix} errors`).to.deep.equal([]);
        expect(new Set(sender.socket.framesOfType('ack').map((f) => f.id)).size).to.equal(sent);
        await waitFor(() => receiver.socket.framesOfType('message').length >= sent, { what: 'all received', timeoutMs: 30_000 });
        const got = receiver.socket.framesOfType('message').map((m) => (m.content as { n: number }).n);
        expect(got).to.deep.equal([...Array(sent).keys()]);
        expect(receiver.socket.closeEvent).to.equal(undefined);
      }
      return sent;
    },
  };
}

describe('hardening: fuzzed /connect bodies and SockJS frames against a running cluster (issue 8, 1 and 5)', function () {
  this.timeout(240_000);
  let cluster: LocalCluster;
  const keys: string[] = [];

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 2, env: { MSG_CLUSTER_SECRET: 'fuzz-cluster-secret', MSG_LEASE_TTL_SECONDS: '3', MSG_PENDING_TTL_MS: String(PENDING_TTL_MS) } });
    console.log(`      fast-check seed ${String(SEED)} (FUZZ_SEED=${String(SEED)} reproduces)`);
  });
  after(async () => {
    await cluster?.stop();
  });

  it('answers every generated /connect with 200 or a contract error, while a pair loses nothing', async () => {
    const alice = await connectUser(cluster.gatewayUrl, uid('alice'));
    const bob = await connectUser(cluster.gatewayUrl, uid('bob'));
    keys.push(alice.session.listeningKey, bob.session.listeningKey);
    const pair = wellBehavedPair(alice, bob);
    const statuses = new Map<number, number>();
    try {
      await fc.assert(
        fc.asyncProperty(connectInputs, async ({ contentType, body }) => {
          const answer = await rawPost(cluster.gatewayUrl, body, contentType === undefined ? {} : { 'content-type': contentType });
          statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
          const parsed = JSON.parse(answer.text) as { error?: { code: string; message: string } } & Partial<Session>;
          if (answer.status === 200) {
            expect(isValidUserId(parsed.userId)).to.equal(true);
            expect(parsed.listeningKey).to.be.a('string');
            keys.push(parsed.listeningKey as string);
            return;
          }
          expect(parsed.error?.code, answer.text).to.be.oneOf(Object.keys(CONNECT_ERRORS));
          expect(answer.status, answer.text).to.equal(CONNECT_ERRORS[parsed.error?.code ?? '']);
          expect(parsed.error?.message).to.be.a('string');
        }),
        { numRuns: CONNECT_RUNS, seed: SEED, endOnFailure: true },
      );
    } finally {
      const exchanged = await pair.stop();
      console.log(`      /connect answers by status: ${JSON.stringify(Object.fromEntries(statuses))}; pair exchanged ${String(exchanged)}×2 meanwhile`);
      alice.socket.close();
      bob.socket.close();
    }
    expect(statuses.get(200) ?? 0).to.be.greaterThan(0);
    expect(statuses.get(400) ?? 0).to.be.greaterThan(0);
  });

  it('answers every generated SockJS frame with contract frames, never closing the connection, while a pair loses nothing', async () => {
    const alice = await connectUser(cluster.gatewayUrl, uid('alice'));
    const bob = await connectUser(cluster.gatewayUrl, uid('bob'));
    const fuzzSession = await requestSession(cluster.gatewayUrl, uid('fuzzer'));
    keys.push(alice.session.listeningKey, bob.session.listeningKey, fuzzSession.listeningKey);
    const fuzzer = new RawClient(fuzzSession.listeningAddress, fuzzSession);
    await fuzzer.open();
    const pair = wellBehavedPair(alice, bob);
    // Each input owns the frames from where it was sent to where the next one was sent, less its sentinel pong.
    const windows: { start: number; input: string }[] = [];
    let sentinel = 0;
    let lastInputAt = 0;
    try {
      await fc.assert(
        fc.asyncProperty(frameInputs, async ({ data, binary }) => {
          const due = lastInputAt + INPUT_INTERVAL_MS - Date.now();
          if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
          lastInputAt = Date.now();
          const start = fuzzer.frames.length;
          const payload = typeof data === 'string' ? data.replace('"SELF"', JSON.stringify(fuzzSession.userId)) : data;
          fuzzer.send(payload, binary);
          // A ping after each input paces the fuzzer (so it stays inside its rate) and shows the node still answers.
          const id = `${SENTINEL}${String(++sentinel)}`;
          windows.push({ start, input: typeof payload === 'string' ? payload.slice(0, 200) : `<${String(payload.length)} binary bytes>` });
          fuzzer.send(JSON.stringify({ type: 'ping', id }));
          await fuzzer.until(() => fuzzer.frames.some((f, i) => i >= start && f.type === 'pong' && f.id === id), 15_000, `pong after input ${String(sentinel)}`);
          // An answer that needs a lookup, or a held message expiring, may come after the pong: wait for this
          // input's answer before the next input, so that every answer lands in its own input's window.
          await fuzzer.until(
            () => answersIn(fuzzer.frames.slice(start)).answers >= 1,
            PENDING_TTL_MS + 10_000,
            () => `an answer to input ${String(sentinel)}; its frames: ${JSON.stringify(fuzzer.frames.slice(start)).slice(0, 400)}`,
          );
          expect(fuzzer.closeCode).to.equal(undefined);
        }),
        { numRuns: FRAME_RUNS, seed: SEED, endOnFailure: true },
      );
      // A last ping: what a last input might still send arrives before its pong.
      fuzzer.send(JSON.stringify({ type: 'ping', id: `${SENTINEL}end` }));
      await fuzzer.until(() => fuzzer.frames.some((f) => f.type === 'pong' && f.id === `${SENTINEL}end`), 15_000, 'the closing pong');
      // Exactly one answer per input: an error, or for a well-formed input its ack, its pong, or (a message without
      // an id, to itself) its delivery. None unanswered, none answered twice.
      const wrong = windows.flatMap((w, k) => {
        const end = windows[k + 1]?.start ?? fuzzer.frames.length;
        const count = answersIn(fuzzer.frames.slice(w.start, end));
        return count.answers === 1 && count.consistent ? [] : [{ input: w.input, frames: fuzzer.frames.slice(w.start, end) }];
      });
      expect(wrong.slice(0, 5), `${String(wrong.length)} of ${String(windows.length)} inputs without exactly one answer`).to.deep.equal([]);
      expect(fuzzer.nonJson).to.deep.equal([]);
      for (const frame of fuzzer.frames) {
        expect(KNOWN_FRAME_TYPES.has(frame.type), JSON.stringify(frame)).to.equal(true);
        if (frame.type === 'error') expect(frameCodes.has(frame.code), JSON.stringify(frame)).to.equal(true);
      }
      const byCode = new Map<string, number>();
      for (const f of fuzzer.frames) if (f.type === 'error') byCode.set(f.code, (byCode.get(f.code) ?? 0) + 1);
      console.log(`      ${String(windows.length)} frames, one answer each → errors by code ${JSON.stringify(Object.fromEntries(byCode))}`);
      expect(byCode.get('INVALID_MESSAGE') ?? 0).to.be.greaterThan(0);
    } finally {
      const exchanged = await pair.stop();
      console.log(`      pair exchanged ${String(exchanged)}×2 meanwhile`);
      fuzzer.close();
      alice.socket.close();
      bob.socket.close();
    }
  });

  it('answers or closes every generated request and upgrade on a node public port within 2 s, while a pair loses nothing', async () => {
    const node = [...cluster.nodes.values()][0];
    if (!node) throw new Error('no node');
    const alice = await connectUser(cluster.gatewayUrl, uid('alice'));
    const bob = await connectUser(cluster.gatewayUrl, uid('bob'));
    keys.push(alice.session.listeningKey, bob.session.listeningKey);
    const pair = wellBehavedPair(alice, bob);
    const outcomes = new Map<string, number>();
    try {
      await fc.assert(
        fc.asyncProperty(publicRequests, async (input) => {
          const outcome = await rawPublic(node.port, input);
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          expect(outcome, JSON.stringify(input).slice(0, 300)).to.not.equal('hung');
          expect(outcome.startsWith('5'), `${outcome} for ${JSON.stringify(input).slice(0, 300)}`).to.equal(false);
        }),
        { numRuns: HTTP_RUNS, seed: SEED, endOnFailure: true },
      );
    } finally {
      const exchanged = await pair.stop();
      console.log(`      public port answers: ${JSON.stringify(Object.fromEntries(outcomes))}; pair exchanged ${String(exchanged)}×2 meanwhile`);
      alice.socket.close();
      bob.socket.close();
    }
    expect(node.process.running).to.equal(true);
  });

  it('answers every generated delivery request on the internal API with 200, 400 or 403, never failing a batch for one message', async () => {
    const second = [...cluster.nodes.values()][1];
    if (!second) throw new Error('two nodes expected');
    // Deliveries are accepted only signed by a registered node (issue 28): the fuzzer registers as one, with its own key.
    const peer = await SignedPeer.register(cluster, 'fuzz-peer');
    try {
      await waitFor(async () => ((await (await fetch(`${second.internalUrl}/readyz`)).json()) as { nodes: number }).nodes === 3, { what: 'the fuzz peer in view' });
      const statuses = new Map<number, number>();
      await fc.assert(
        fc.asyncProperty(deliverBodies(peer.nodeId, peer.internalUrl), async (body) => {
          const res = await peer.postText(second.internalUrl, '/internal/v1/deliver', body);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          const answer = (await res.json()) as { results?: { status: string; code?: string }[] };
          expect([200, 400, 403], body.slice(0, 300)).to.include(res.status);
          if (res.status !== 200) return;
          const parsed = JSON.parse(body) as { budgetMs?: unknown; messages: { content: unknown }[] };
          expect(answer.results).to.have.length(parsed.messages.length);
          // A request whose budget was spent before it was read is refused whole (RELAY_FAILED); the sender gave up.
          if (typeof parsed.budgetMs === 'number' && parsed.budgetMs < 100) return;
          parsed.messages.forEach((m, i) => {
            if (nestedDeeperThan(m.content, 64)) expect(answer.results?.[i]).to.deep.equal({ status: 'error', code: 'INVALID_MESSAGE' });
          });
        }),
        { numRuns: INTERNAL_RUNS, seed: SEED, endOnFailure: true },
      );
      console.log(`      internal deliver answers by status: ${JSON.stringify(Object.fromEntries(statuses))}`);
      expect(statuses.get(403) ?? 0).to.be.greaterThan(0);
      expect(statuses.get(200) ?? 0).to.be.greaterThan(0);
    } finally {
      await peer.close();
    }
  });

  it('leaves every process running and healthy', async () => {
    for (const gateway of cluster.gateways) {
      expect(gateway.process.running, gateway.name).to.equal(true);
      expect((await fetch(`${gateway.url}/healthz`)).status).to.equal(200);
    }
    for (const node of cluster.nodes.values()) {
      expect(node.process.running, node.nodeId).to.equal(true);
      expect((await fetch(`${node.internalUrl}/healthz`)).status).to.equal(200);
    }
  });

  it('logs no listeningKey of any session handed out', () => {
    const logs = cluster.logs();
    expect(keys.length).to.be.greaterThan(3);
    expect(logs.length).to.be.greaterThan(0);
    const leaked = keys.filter((key) => logs.includes(key));
    expect(leaked).to.deep.equal([]);
  });
});
