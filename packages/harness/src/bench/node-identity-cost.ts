/**
 * `node --conditions=source --import tsx packages/harness/src/bench/node-identity-cost.ts`: what node authentication
 * costs in-process per forwarded message, the cross-check of profile.ts's inclusive share (docs/benchmarks.md, "Node
 * authentication's share of the hop"). One delivery request of N messages, built like the hop's (peer-links.ts) with
 * the bench's payloads, is signed as the sending node does (NodeIdentity.headers over the body text) and checked as
 * the receiving node does (parse the header, NodeSignatureVerifier.verify over the body bytes, replay window on).
 * A request is signed and checked once whatever N is, so per message it costs (sign + check) / N.
 * NODE_ID_BATCHES sets the batch sizes (default 1,10,28,50,100), NODE_ID_MS the CPU time per figure (default 1000).
 */
import { NODE_SIGNATURE_HEADER, NodeIdentity, NodeSignatureVerifier, parseSignatureHeader } from '@messaging-server/core';
import { BODY, type Payload, type SizeName } from './payload.js';

const PATH = '/internal/v1/deliver';
const RECEIVER = 'http://127.0.0.1:7002';
const batches = (process.env['NODE_ID_BATCHES'] ?? '1,10,28,50,100').split(',').map(Number);
const budgetUs = Number(process.env['NODE_ID_MS'] ?? 1000) * 1000;

/** A delivery request's body as the sending node serialises it (DeliverRequest, internal-wire.ts). */
function deliverBody(count: number, size: SizeName): string {
  const messages = Array.from({ length: count }, (_, i) => {
    const content: Payload = { t: performance.now(), s: i, k: BODY[size].kind, d: BODY[size].text };
    return { from: `prof-a${String(i)}`, to: `prof-b${String(i)}`, content, cid: 'c0ffee12', id: String(i + 1) };
  });
  return JSON.stringify({ fromNode: 'node-1', replyTo: 'http://127.0.0.1:7001', budgetMs: 1250, messages });
}

const cpuUs = (): number => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** CPU µs per call of `fn`, over at least `budgetUs` of CPU after a short warm-up. */
function perCall(fn: () => void): number {
  for (let i = 0; i < 500; i++) fn();
  let calls = 0;
  const start = cpuUs();
  let spent = 0;
  while (spent < budgetUs) {
    for (let i = 0; i < 200; i++) fn();
    calls += 200;
    spent = cpuUs() - start;
  }
  return spent / calls;
}

interface Figures {
  bytes: number;
  signUs: number;
  checkUs: number;
  /** What sign + check added to one request when run among the hop's other work, by A/B rounds. */
  amongUs: number;
  /** That other work alone, per request. */
  otherUs: number;
}

function measure(size: SizeName, count: number): Figures {
  const sender = new NodeIdentity('node-1');
  const receiver = new NodeIdentity('node-2');
  sender.knowPeers((address) => (address === RECEIVER ? receiver.publicKey : undefined));
  const verifierOf = (): NodeSignatureVerifier => new NodeSignatureVerifier(receiver, (nodeId) => (nodeId === 'node-1' ? sender.publicKey : undefined));
  let verifier = verifierOf();
  const text = deliverBody(count, size);
  const bytes = Buffer.from(text);
  const sign = (): string | undefined => sender.headers('POST', PATH, text, RECEIVER)[NODE_SIGNATURE_HEADER];
  const check = (header: string | undefined): void => {
    const claim = parseSignatureHeader(header);
    if (!claim || !verifier.verify(claim, 'POST', PATH, bytes).ok) throw new Error('a fresh signature did not verify');
  };
  const signUs = perCall(() => {
    sign();
  });
  // Every check needs a signature it has not seen (the replay window refuses a nonce twice): a pool signed outside the
  // timed part, and a fresh verifier (an empty replay window) each time the pool comes round again.
  const signed = Array.from({ length: 4096 }, sign);
  let next = 0;
  const checkUs = perCall(() => {
    if (next === signed.length) [verifier, next] = [verifierOf(), 0];
    check(signed[next++]);
  });
  return { bytes: bytes.length, signUs, checkUs, ...among(text, () => check(sign())) };
}

/**
 * A tight loop keeps everything in cache; a node does much else between two requests. So the same calls again, each
 * request beside what a node does with a delivery's body anyway (serialise it, read it back, write each message out as
 * a client frame), in rounds with and without them, alternating: the median difference per request.
 */
function among(text: string, auth: () => void): { amongUs: number; otherUs: number } {
  const other = (): void => {
    const request = JSON.parse(text) as { messages: { content: unknown }[] };
    for (const m of request.messages) JSON.stringify(['a', JSON.stringify({ type: 'message', content: m.content })]);
    JSON.stringify(request);
  };
  const round = (withAuth: boolean): number => {
    const start = cpuUs();
    for (let i = 0; i < 100; i++) {
      other();
      if (withAuth) auth();
    }
    return (cpuUs() - start) / 100;
  };
  const diffs: number[] = [];
  const alone: number[] = [];
  for (let r = 0; r < 40; r++) {
    // Alternating which goes first, so a drift in the machine's speed does not favour one side.
    const first = round(r % 2 === 0);
    const second = round(r % 2 !== 0);
    const [withAuth, without] = r % 2 === 0 ? [first, second] : [second, first];
    diffs.push(withAuth - without);
    alone.push(without);
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  return { amongUs: median(diffs), otherUs: median(alone) };
}

const lines = [
  'size | messages/request | body bytes | sign µs/request | check µs/request | (sign + check) µs/message | among other work: other µs/request, sign + check µs/request, µs/message',
];
for (const size of ['candidate', 'sdp'] as const) {
  for (const count of batches) {
    const m = measure(size, count);
    lines.push(
      [size, String(count), String(m.bytes), m.signUs.toFixed(2), m.checkUs.toFixed(2), ((m.signUs + m.checkUs) / count).toFixed(2),
        `${m.otherUs.toFixed(1)}, ${m.amongUs.toFixed(2)}, ${(m.amongUs / count).toFixed(2)}`].join(' | '),
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
