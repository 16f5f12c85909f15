import memjs from 'memjs';
import { BackendError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import { assertValidKeyPrefix } from './session-key.js';
import type { StoreCredentials } from './store-credentials.js';
import { normalizeTtlSeconds } from './session-ttl.js';
import { batchWrites } from './memcached-write-batching.js';

// Binary protocol opcodes and statuses (memcached protocol_binary.h).
export const OP_GET = 0x00;
export const OP_SET = 0x01;
export const OP_ADD = 0x02;
export const OP_DELETE = 0x04;
export const OP_APPEND = 0x0e;
export const OP_TOUCH = 0x1c;
export const STATUS_OK = 0x00;
export const STATUS_NOT_FOUND = 0x01;
export const STATUS_EXISTS = 0x02;
/** APPEND to a key that does not exist. */
export const STATUS_NOT_STORED = 0x05;

const NO_FLAGS = Buffer.alloc(4);

export type MemjsResponse = memjs.Response;
/** One raw memcached request of an operation (on a full key), bounded by that operation's deadline. */
export type RawCall = (opcode: number, key: string, extras?: Buffer, value?: string, cas?: Buffer) => Promise<MemjsResponse>;

class Deadline extends Error {}

/** What a memcached-backed store is built from (the session store and the room store alike). */
export interface MemcachedStoreOptions {
  /** `host:port` entries; a key always goes to the same server (memjs hashes it). */
  servers: string[];
  /** Key prefix, e.g. `ms:` (printable ASCII, no spaces, at most 100 bytes). */
  prefix: string;
  /** Deadline of one whole operation, including a CAS update's round trips. Default 1000. */
  operationTimeoutMs?: number;
  /** A SASL user of memcached (started with -S); memjs authenticates each connection with SASL PLAIN. */
  credentials?: StoreCredentials;
  logger?: Logger;
  /**
   * Another store's connection to the same servers, so a process keeps one socket and one write batcher per server
   * for all its stores. Closing either store closes it: stores that share one are closed together.
   */
  connection?: MemcachedConnection;
}

/** A store's prefix, logger and connection, after checking what it was given. */
export function storeParts(options: MemcachedStoreOptions, component: string): { prefix: string; logger: Logger; connection: MemcachedConnection } {
  if (options.servers.length === 0) throw new TypeError(`${component} needs at least one memcached server`);
  assertValidKeyPrefix(options.prefix);
  const logger = (options.logger ?? silentLogger).child({ component });
  const connection =
    options.connection ??
    new MemcachedConnection({ servers: options.servers, operationTimeoutMs: options.operationTimeoutMs ?? 1000, credentials: options.credentials, logger });
  return { prefix: options.prefix, logger, connection };
}

export interface MemcachedConnectionOptions {
  servers: string[];
  operationTimeoutMs: number;
  credentials: StoreCredentials | undefined;
  logger: Logger;
}

/**
 * memjs's binary-protocol connection as the stores use it (the session store and the room store share the design).
 *
 * Every request is issued raw through `client.perform`, because memjs's helpers drop what the stores need: the CAS
 * value of a GET and the CAS field of a DELETE or SET. memjs's own timeout (0.5 s, no retries) fails a silent
 * server; the per-operation deadline also covers the cases memjs never reports (a socket closed by a stopping server
 * leaves its callbacks pending). After any transport failure the memjs client is discarded and the next operation
 * dials afresh, so stale connection state never outlives an outage.
 */
export class MemcachedConnection {
  private readonly servers: string;
  private client: memjs.Client | undefined;
  private closed = false;

  constructor(private readonly options: MemcachedConnectionOptions) {
    this.servers = options.servers.join(',');
  }

  /**
   * Runs one logical operation under the deadline. `call` sends one request and resolves with memcached's answer
   * for the statuses a caller can act on (ok, not found, exists); any other status, a transport error or the
   * deadline rejects the whole operation with SESSION_STORE_UNAVAILABLE.
   */
  async operation<T>(name: string, body: (call: RawCall) => Promise<T>): Promise<T> {
    if (this.closed) throw new BackendError('SESSION_STORE_UNAVAILABLE', 'session store is closed');
    const client = this.connection();
    const timeoutMs = this.options.operationTimeoutMs;
    let expired = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        expired = true;
        reject(new Deadline(`no answer from memcached within ${String(timeoutMs)} ms`));
      }, timeoutMs);
    });
    const call: RawCall = (opcode, key, extras, value, cas) => {
      // A late continuation must not send anything (e.g. a DELETE) after the caller was told the operation failed.
      if (expired) return deadline;
      return Promise.race([request(client, opcode, key, extras, value, cas), deadline]);
    };
    try {
      return await Promise.race([body(call), deadline]);
    } catch (error) {
      if (error instanceof BackendError) throw error;
      // Drop the connection: its callbacks may never fire, and memjs can keep stale timeouts across reconnects.
      if (this.client === client) this.discard(error);
      this.options.logger.warn({ op: name, err: describe(error) }, 'memcached operation failed');
      throw new BackendError('SESSION_STORE_UNAVAILABLE', `session store ${name} failed: ${describe(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.closed = true;
    this.discard(new Error('session store closed'));
  }

  private connection(): memjs.Client {
    const { credentials, logger } = this.options;
    if (this.client) return this.client;
    this.client = memjs.Client.create(this.servers, {
      retries: 0,
      timeout: 0.5,
      conntimeout: 0.5,
      keepAlive: true,
      ...(credentials ? { username: credentials.username, password: credentials.password } : {}),
      logger: { log: (...args: unknown[]) => logger.debug({ detail: args.map(String).join(' ') }, 'memjs log') },
    });
    batchWrites(this.client);
    return this.client;
  }

  private discard(reason: unknown): void {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    const error = reason instanceof Error ? reason : new Error(String(reason));
    // Server#error fails every pending callback and destroys the socket, so nothing of the old client lingers.
    for (const server of client.servers) server.error(error);
  }
}

function request(client: memjs.Client, opcode: number, key: string, extras?: Buffer, value?: string, cas?: Buffer): Promise<MemjsResponse> {
  return new Promise((resolve, reject) => {
    client.incrSeq();
    const seq = client.seq;
    const buffer = memjs.Utils.makeRequestBuffer(opcode, key, extras ?? '', value ?? '', seq);
    // makeRequestBuffer has no CAS parameter; the field is bytes 16–23 of the header.
    if (cas) cas.copy(buffer, 16);
    client.perform(key, buffer, seq, (error: Error | null, response?: MemjsResponse) => {
      if (error) return reject(error);
      if (!response) return reject(new Error('memcached returned no response'));
      const status = response.header.status;
      if (status === STATUS_OK || status === STATUS_NOT_FOUND || status === STATUS_EXISTS || status === STATUS_NOT_STORED) return resolve(response);
      reject(new Error(`memcached status 0x${status.toString(16)}: ${response.val.toString('utf8').slice(0, 200)}`));
    });
  });
}

export function expiration(ttlSeconds: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(normalizeTtlSeconds(ttlSeconds), 0);
  return buffer;
}

export function storageExtras(ttlSeconds: number): Buffer {
  return Buffer.concat([NO_FLAGS, expiration(ttlSeconds)]);
}

function describe(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
