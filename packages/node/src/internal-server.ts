import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { createPublicServer, DEFAULT_PUBLIC_LIMITS, refusal, refuse, refuseUpgrade, type PublicLimits } from './public-guard.js';

/**
 * The internal port's limits: the public port's header, request and keep-alive bounds (a peer is a pod on the same
 * network as everything else, and whoever reaches the port before its secret is checked is nobody we trust), with the
 * internal API's own body cap (a delivery batch is larger than one transport frame).
 */
export function internalLimits(bodyLimit: number, overrides: Partial<PublicLimits> = {}): PublicLimits {
  return { ...DEFAULT_PUBLIC_LIMITS, maxBodyBytes: bodyLimit, ...overrides };
}

/** The largest internal request body a node takes: a full delivery batch of messages at the size limit. */
export function internalBodyLimit(maxMessageBytes: number): number {
  return Math.max(8 << 20, maxMessageBytes * 4 + (64 << 10));
}

/**
 * An http.Server for the internal port with `limits` on: target, header count, method and announced body size are
 * checked before `handle` runs, a refusal closes the connection, and upgrades (the internal API has none) are
 * answered and closed at once. `handle` gets everything else; it answers with its own errors.
 */
export function createInternalServer(limits: PublicLimits, handle: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createPublicServer(limits);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const refused = refusal(req, limits);
    if (refused) return refuse(res, refused.code, refused.message);
    handle(req, res);
  });
  server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => undefined);
    refuseUpgrade(socket, 'NOT_FOUND');
  });
  return server;
}
