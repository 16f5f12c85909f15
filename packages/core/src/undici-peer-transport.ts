import { Pool } from 'undici';
import { BackendError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import type { RequestSigner } from './node-identity.js';
import type { PeerTransport } from './peer-transport.js';

export interface UndiciPeerTransportOptions {
  /** Sent as `x-cluster-secret` on every request when set. */
  clusterSecret?: string;
  /** Signs every request (a node's own identity, see node-identity.ts); a node's transport carries no cluster secret. */
  signer?: RequestSigner;
  /** Default budget of one request, from the call to the complete answer (queueing included). Default 1500. */
  timeoutMs?: number;
  /**
   * Connections per peer. Default 1. More connections (or pipelining) raise throughput; order is the caller's to keep
   * (see PeerTransport).
   */
  connections?: number;
  /** Requests in flight per connection. Default 1. */
  pipelining?: number;
  /**
   * The most of one answer's body that is read, bytes. Default 4 MiB (a node's largest answer, a delivery batch's
   * results, is a few KiB). A longer answer fails with PEER_REJECTED and its connection is dropped at once: whatever
   * answers at a peer's address can otherwise fill this process's memory.
   */
  maxAnswerBytes?: number;
  logger?: Logger;
}

export const CLUSTER_SECRET_HEADER = 'x-cluster-secret';

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);
export const DEFAULT_MAX_ANSWER_BYTES = 4 << 20;
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

/**
 * PeerTransport over undici: one keep-alive Pool per peer origin, `request` (not fetch), JSON in and out.
 * undici's errors are translated here into BackendError codes and never escape.
 */
export class UndiciPeerTransport implements PeerTransport {
  private readonly pools = new Map<string, Pool>();
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly connections: number;
  private readonly pipelining: number;
  private readonly maxAnswerBytes: number;
  private readonly logger: Logger;
  private readonly signer: RequestSigner | undefined;
  private closed = false;

  constructor(options: UndiciPeerTransportOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 1500;
    this.connections = options.connections ?? 1;
    this.pipelining = options.pipelining ?? 1;
    this.maxAnswerBytes = options.maxAnswerBytes ?? DEFAULT_MAX_ANSWER_BYTES;
    this.logger = (options.logger ?? silentLogger).child({ component: 'peer-transport' });
    this.signer = options.signer;
    this.headers = { 'content-type': 'application/json', accept: 'application/json' };
    if (options.clusterSecret !== undefined) this.headers[CLUSTER_SECRET_HEADER] = options.clusterSecret;
  }

  async post<T = unknown>(peerAddress: string, path: string, body: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    if (this.closed) throw new BackendError('PEER_UNREACHABLE', 'peer transport is closed');
    const { origin, basePath } = parsePeer(peerAddress);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const signal = AbortSignal.timeout(timeoutMs);
    let status: number | undefined;
    const fullPath = `${basePath}${path.startsWith('/') ? path : `/${path}`}`;
    const text = JSON.stringify(body);
    // One MAC per request: a delivery batch of many messages is signed once.
    const headers = this.signer ? { ...this.headers, ...this.signer.headers('POST', fullPath, text, peerAddress) } : this.headers;
    try {
      const response = await this.pool(origin).request({
        method: 'POST',
        path: fullPath,
        headers,
        body: text,
        signal,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      status = response.statusCode;
      const answer = await response.body.text();
      if (status < 200 || status > 299) {
        throw new BackendError('PEER_REJECTED', `peer ${origin} answered ${String(status)} to ${path}`, { status });
      }
      return (answer === '' ? undefined : JSON.parse(answer)) as T;
    } catch (error) {
      throw translate(error, { origin, path, timeoutMs, timedOut: signal.aborted, status });
    }
  }

  forget(peerAddress: string): void {
    const { origin } = parsePeer(peerAddress);
    const pool = this.pools.get(origin);
    if (!pool) return;
    this.pools.delete(origin);
    // Requests already in flight finish (each has its own deadline); new ones would get a fresh pool.
    pool.close().catch((error: unknown) => this.logger.warn({ peer: origin, err: error }, 'peer pool close failed'));
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(
      pools.map(async (pool) => {
        // close() waits for in-flight requests; they are bounded by their deadlines, but don't wait past one.
        const timer = setTimeout(() => void pool.destroy().catch(() => {}), this.timeoutMs);
        try {
          await pool.close();
        } catch {
          // already destroyed by the timer
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  /** Number of peers with an open pool (for metrics and tests). */
  get peerCount(): number {
    return this.pools.size;
  }

  private pool(origin: string): Pool {
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        connections: this.connections,
        pipelining: this.pipelining,
        connectTimeout: this.timeoutMs,
        // undici destroys the socket as soon as a body passes this, so nothing more of it is read.
        maxResponseSize: this.maxAnswerBytes,
      });
      this.pools.set(origin, pool);
      this.logger.debug({ peer: origin }, 'peer pool opened');
    }
    return pool;
  }
}

function parsePeer(peerAddress: string): { origin: string; basePath: string } {
  let url: URL;
  try {
    url = new URL(peerAddress);
  } catch (error) {
    throw new BackendError('PEER_UNREACHABLE', `invalid peer address ${JSON.stringify(peerAddress)}`, { cause: error });
  }
  return { origin: url.origin, basePath: url.pathname.replace(/\/+$/, '') };
}

function translate(
  error: unknown,
  context: { origin: string; path: string; timeoutMs: number; timedOut: boolean; status: number | undefined },
): BackendError {
  if (error instanceof BackendError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const where = `peer ${context.origin} ${context.path}`;
  if (context.timedOut || (typeof code === 'string' && TIMEOUT_CODES.has(code))) {
    return new BackendError('PEER_TIMEOUT', `${where}: no answer within ${String(context.timeoutMs)} ms`, { cause: error });
  }
  if (code === 'UND_ERR_RES_EXCEEDED_MAX_SIZE') {
    return new BackendError('PEER_REJECTED', `${where}: answer over the size limit, connection dropped`, {
      cause: error,
      ...(context.status === undefined ? {} : { status: context.status }),
    });
  }
  if (context.status !== undefined) {
    // A 2xx whose body is not JSON: the peer answered, but not in a way we can use.
    return new BackendError('PEER_REJECTED', `${where}: unreadable answer`, { cause: error, status: context.status });
  }
  const detail = typeof code === 'string' && UNREACHABLE_CODES.has(code) ? code : error instanceof Error ? error.message : String(error);
  return new BackendError('PEER_UNREACHABLE', `${where}: ${detail}`, { cause: error });
}
