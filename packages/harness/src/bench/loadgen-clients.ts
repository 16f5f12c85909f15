/**
 * The load generator's clients (loadgen.ts): opening connections to each system (the raw SockJS websocket transport
 * to our nodes, with receipts when asked; plain WebSocket to PeerJS server and the bare relay), reading their frames,
 * and closing them. What a frame means for the run in progress goes to `hooks`, which the run sets.
 */
import { randomBytes } from 'node:crypto';
import { Pool } from 'undici';
import WebSocket from 'ws';
import type { Payload } from './payload.js';
import { AckClock, Confirmer, type ReceiptState } from './receipts.js';

export type SystemKind = 'ours' | 'peerjs' | 'ws' | 'sockjs';

export interface Target {
  kind: SystemKind;
  /** ours: the gateway. */
  gatewayUrl?: string;
  /** peerjs / ws: the server's base ws:// URL. */
  wsUrl?: string;
  /** ours: open connections with `receipts=1` (contract v1.2) and confirm what arrives (receipts.ts). */
  receipts?: boolean;
}

export interface Client {
  id: string;
  ws: WebSocket;
  partner?: Client;
  /** The direction whose messages arrive here, and the one this client sends on. */
  inbound?: Direction;
  outbound?: Direction;
  encode(to: string, seq: number, payload: string): string;
  /** ours: send times of this client's messages, for runs that time acks. */
  clock?: AckClock;
  receipts?: ReceiptState;
}

export interface Direction {
  from: Client;
  to: Client;
  inflight: number;
  seq: number;
}

// ---- connecting -------------------------------------------------------------------------------------------------

let pool: Pool | undefined;
let poolOrigin = '';

function gatewayPool(url: string): Pool {
  if (!pool || poolOrigin !== url) {
    void pool?.close();
    pool = new Pool(url, { connections: 32, keepAliveTimeout: 30_000 });
    poolOrigin = url;
  }
  return pool;
}

/** What a run does with each message that arrives, and (when it times acks) with each ack. */
export const hooks: { payload: (client: Client, payload: Payload) => void; ack: ((client: Client, id: string) => void) | undefined } = {
  payload: () => undefined,
  ack: undefined,
};
export const confirmer = new Confirmer();
export const counters = { acks: 0, errors: 0, errorCodes: new Map<string, number>(), closes: 0 };

function countError(code: string): void {
  counters.errors += 1;
  counters.errorCodes.set(code, (counters.errorCodes.get(code) ?? 0) + 1);
}

function openSocket(url: string): WebSocket {
  return new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: 15_000 });
}

/** Resolves when the system says the client is ready (our welcome; PeerJS's and the bare relay's OPEN). */
function whenReady(ws: WebSocket, client: Client, handle: (text: string, ready: () => void) => void): Promise<Client> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(new Error('no welcome within 15 s')), 15_000);
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ws.terminate();
      reject(error);
    };
    ws.on('error', fail);
    ws.on('close', (code) => {
      counters.closes += 1;
      fail(new Error(`closed before ready (${String(code)})`));
    });
    ws.on('message', (data: Buffer) => {
      handle(data.toString(), () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(client);
      });
    });
  });
}

async function openOurs(target: Target, id: string, avoid: string[]): Promise<Client> {
  const res = await gatewayPool(target.gatewayUrl as string).request({
    path: '/connect',
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(avoid.length > 0 ? { userId: id, avoid } : { userId: id }),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`/connect ${String(res.statusCode)}: ${text.slice(0, 200)}`);
  const session = JSON.parse(text) as { listeningAddress: string; listeningKey: string };
  const base = session.listeningAddress.replace(/^http/, 'ws').replace(/\/$/, '');
  const server = String(Math.floor(Math.random() * 1000)).padStart(3, '0');
  const query = `userId=${encodeURIComponent(id)}&listeningKey=${encodeURIComponent(session.listeningKey)}${target.receipts === true ? '&receipts=1' : ''}`;
  const ws = openSocket(`${base}/${server}/${randomBytes(6).toString('hex')}/websocket?${query}`);
  const client: Client = {
    id,
    ws,
    encode: (to, seq, payload) => JSON.stringify([`{"type":"message","to":"${to}","id":"${String(seq)}","content":${payload}}`]),
    clock: new AckClock(),
  };
  if (target.receipts === true) client.receipts = confirmer.track(ws);
  return whenReady(ws, client, (text, ready) => {
    const head = text.charCodeAt(0);
    if (head !== 97 /* a */) return; // o (open), h (heartbeat), c (close: the close event follows)
    for (const item of JSON.parse(text.slice(1)) as string[]) {
      const frame = JSON.parse(item) as { type: string; content?: Payload; code?: string; id?: string; seq?: number };
      if (frame.type === 'message') {
        if (client.receipts && frame.seq !== undefined) confirmer.seen(client.receipts, frame.seq);
        hooks.payload(client, frame.content as Payload);
      } else if (frame.type === 'ack') {
        counters.acks += 1;
        hooks.ack?.(client, frame.id ?? '');
      }
      else if (frame.type === 'welcome') ready();
      else if (frame.type === 'error') countError(frame.code ?? '?');
    }
  });
}

function openPlain(target: Target, id: string): Promise<Client> {
  const peer = target.kind === 'peerjs';
  const url = peer
    ? `${target.wsUrl as string}/peerjs?key=peerjs&id=${encodeURIComponent(id)}&token=${randomBytes(4).toString('hex')}`
    : `${target.wsUrl as string}/?id=${encodeURIComponent(id)}`;
  const ws = openSocket(url);
  const client: Client = {
    id,
    ws,
    // PeerJS stamps src itself; the bare relay forwards bytes untouched, so the sender names itself.
    encode: peer
      ? (to, _seq, payload) => `{"type":"CANDIDATE","dst":"${to}","payload":${payload}}`
      : (to, _seq, payload) => `{"type":"CANDIDATE","src":"${id}","dst":"${to}","payload":${payload}}`,
  };
  return whenReady(ws, client, (text, ready) => {
    const frame = JSON.parse(text) as { type: string; payload?: Payload };
    if (frame.type === 'CANDIDATE') hooks.payload(client, frame.payload as Payload);
    else if (frame.type === 'OPEN') ready();
    else if (frame.type === 'ERROR' || frame.type === 'ID-TAKEN') countError(frame.type);
  });
}

/** The bare sockjs relay: SockJS framing around the bare relay's messages. */
function openBareSockJs(target: Target, id: string): Promise<Client> {
  const server = String(Math.floor(Math.random() * 1000)).padStart(3, '0');
  const ws = openSocket(`${target.wsUrl as string}/${server}/${randomBytes(6).toString('hex')}/websocket?id=${encodeURIComponent(id)}`);
  const client: Client = {
    id,
    ws,
    encode: (to, _seq, payload) => JSON.stringify([`{"type":"CANDIDATE","src":"${id}","dst":"${to}","payload":${payload}}`]),
  };
  return whenReady(ws, client, (text, ready) => {
    if (text.charCodeAt(0) !== 97 /* a */) return;
    for (const item of JSON.parse(text.slice(1)) as string[]) {
      const frame = JSON.parse(item) as { type: string; payload?: Payload };
      if (frame.type === 'CANDIDATE') hooks.payload(client, frame.payload as Payload);
      else if (frame.type === 'OPEN') ready();
    }
  });
}

export function open(target: Target, id: string, avoid: string[] = []): Promise<Client> {
  if (target.kind === 'ours') return openOurs(target, id, avoid);
  if (target.kind === 'sockjs') return openBareSockJs(target, id);
  return openPlain(target, id);
}

export async function closeAll(clients: Client[]): Promise<void> {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.ws.readyState === WebSocket.CLOSED) return resolve();
          const timer = setTimeout(() => {
            c.ws.terminate();
            resolve();
          }, 5000);
          c.ws.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
          c.ws.close();
        }),
    ),
  );
}
