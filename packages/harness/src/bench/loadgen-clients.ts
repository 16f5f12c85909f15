/**
 * The load generator's clients (loadgen.ts): opening connections to each system over the harness's wire client
 * (SockJS's websocket transport to our nodes, with receipts when asked; plain WebSocket to PeerJS server and the bare
 * relay), reading their frames, and closing them. What a frame means for the run in progress goes to `hooks`, which the run sets.
 */
import { randomBytes } from 'node:crypto';
import type { Pool } from 'undici';
import type WebSocket from 'ws';
import { closeSocket, connectSession, encodeFrame, frameTexts, gatewayPool, openSession, openSocket, socketUrl, whenReady, whenWelcomed, type Framing } from '../wire.js';
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

function gatewayPoolFor(url: string): Pool {
  if (!pool || poolOrigin !== url) {
    void pool?.close();
    pool = gatewayPool(url, 32);
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

function counted(ws: WebSocket): WebSocket {
  ws.on('close', () => (counters.closes += 1));
  return ws;
}

interface OurFrame {
  type: string;
  content?: Payload;
  code?: string;
  id?: string;
  seq?: number;
}

async function openOurs(target: Target, id: string, avoid: string[]): Promise<Client> {
  const gatewayUrl = target.gatewayUrl as string;
  const session = await connectSession(gatewayUrl, { userId: id, avoid }, { pool: gatewayPoolFor(gatewayUrl) });
  const ws = counted(openSession({ ...session, userId: id }, { framing: 'sockjs', receipts: target.receipts === true }));
  const client: Client = {
    id,
    ws,
    encode: (to, seq, payload) => encodeFrame(`{"type":"message","to":"${to}","id":"${String(seq)}","content":${payload}}`, 'sockjs'),
    clock: new AckClock(),
  };
  if (target.receipts === true) client.receipts = confirmer.track(ws);
  await whenWelcomed<OurFrame>(ws, 'sockjs', (frame) => {
    if (frame.type === 'message') {
      if (client.receipts && frame.seq !== undefined) confirmer.seen(client.receipts, frame.seq);
      hooks.payload(client, frame.content as Payload);
    } else if (frame.type === 'ack') {
      counters.acks += 1;
      hooks.ack?.(client, frame.id ?? '');
    } else if (frame.type === 'error') countError(frame.code ?? '?');
  });
  return client;
}

/** PeerJS server, the bare relay, and the bare relay behind SockJS framing: ready on their OPEN. */
async function openBare(target: Target, id: string): Promise<Client> {
  const peer = target.kind === 'peerjs';
  const framing: Framing = target.kind === 'sockjs' ? 'sockjs' : 'raw';
  const url = peer
    ? `${target.wsUrl as string}/peerjs?key=peerjs&id=${encodeURIComponent(id)}&token=${randomBytes(4).toString('hex')}`
    : target.kind === 'sockjs'
      ? socketUrl(target.wsUrl as string, { id }, 'sockjs')
      : `${target.wsUrl as string}/?id=${encodeURIComponent(id)}`;
  const ws = counted(openSocket(url));
  const client: Client = {
    id,
    ws,
    // PeerJS stamps src itself; the bare relay forwards bytes untouched, so the sender names itself.
    encode: peer
      ? (to, _seq, payload) => `{"type":"CANDIDATE","dst":"${to}","payload":${payload}}`
      : (to, _seq, payload) => encodeFrame(`{"type":"CANDIDATE","src":"${id}","dst":"${to}","payload":${payload}}`, framing),
  };
  await whenReady(ws, (data, ready) => {
    for (const text of frameTexts(data, framing)) {
      const frame = JSON.parse(text) as { type: string; payload?: Payload };
      if (frame.type === 'CANDIDATE') hooks.payload(client, frame.payload as Payload);
      else if (frame.type === 'OPEN') ready();
      else if (frame.type === 'ERROR' || frame.type === 'ID-TAKEN') countError(frame.type);
    }
  });
  return client;
}

export function open(target: Target, id: string, avoid: string[] = []): Promise<Client> {
  return target.kind === 'ours' ? openOurs(target, id, avoid) : openBare(target, id);
}

export async function closeAll(clients: Client[]): Promise<void> {
  await Promise.all(clients.map((c) => closeSocket(c.ws)));
}
