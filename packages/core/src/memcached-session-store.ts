import memjs from 'memjs';
import type { SessionRecord } from '@messaging-server/protocol';
import { BackendError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import type { SessionStore } from './session-store.js';
import type { StoreCredentials } from './store-credentials.js';
import { assertValidKeyPrefix, sessionKey } from './session-key.js';
import { normalizeTtlSeconds } from './session-ttl.js';
import { secretsEqual } from './secure-compare.js';
import { batchWrites } from './memcached-write-batching.js';

export interface MemcachedSessionStoreOptions {
  /** `host:port` entries; a key always goes to the same server (memjs hashes it). */
  servers: string[];
  /** Key prefix, e.g. `ms:` (printable ASCII, no spaces, at most 100 bytes). */
  prefix: string;
  /** Deadline of one whole operation, including deleteIfMatches' two round trips. Default 1000. */
  operationTimeoutMs?: number;
  /** A SASL user of memcached (started with -S); memjs authenticates each connection with SASL PLAIN. */
  credentials?: StoreCredentials;
  logger?: Logger;
}

// Binary protocol opcodes and statuses (memcached protocol_binary.h).
const OP_GET = 0x00;
const OP_SET = 0x01;
const OP_ADD = 0x02;
const OP_DELETE = 0x04;
const OP_TOUCH = 0x1c;
const STATUS_OK = 0x00;
const STATUS_NOT_FOUND = 0x01;
const STATUS_EXISTS = 0x02;

const NO_FLAGS = Buffer.alloc(4);
// A CAS conflict on delete or a conditional write means the record changed after our read; re-read a few times.
const MAX_CAS_ATTEMPTS = 4;

type MemjsClient = memjs.Client;
type MemjsResponse = memjs.Response;
/** One raw memcached request of an operation, bounded by that operation's deadline. */
type RawCall = (opcode: number, userId: string, extras?: Buffer, value?: string, cas?: Buffer) => Promise<MemjsResponse>;

class Deadline extends Error {}

/**
 * SessionStore on memcached over memjs's binary-protocol connection.
 *
 * Every request is issued raw through `client.perform`, because memjs's helpers drop what this store needs: the CAS
 * value of a GET and the CAS field of a DELETE, which make deleteIfMatches exact (it never deletes a record written
 * after its read). memjs's own timeout (0.5 s, no retries) fails a silent server; our per-operation deadline also
 * covers the cases memjs never reports (a socket closed by a stopping server leaves its callbacks pending).
 * After any transport failure the memjs client is discarded and the next operation dials afresh, so stale
 * connection state never outlives an outage.
 */
export class MemcachedSessionStore implements SessionStore {
  private readonly servers: string;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly logger: Logger;
  private readonly credentials: StoreCredentials | undefined;
  private client: MemjsClient | undefined;
  private closed = false;

  constructor(options: MemcachedSessionStoreOptions) {
    if (options.servers.length === 0) throw new TypeError('memcached session store needs at least one server');
    assertValidKeyPrefix(options.prefix);
    this.servers = options.servers.join(',');
    this.prefix = options.prefix;
    this.timeoutMs = options.operationTimeoutMs ?? 1000;
    this.credentials = options.credentials;
    this.logger = (options.logger ?? silentLogger).child({ component: 'memcached-session-store' });
  }

  async get(userId: string): Promise<SessionRecord | undefined> {
    return this.operation('get', async (call) => {
      const response = await call(OP_GET, userId);
      return response.header.status === STATUS_OK ? this.decode(userId, response.val) : undefined;
    });
  }

  async create(record: SessionRecord, ttlSeconds: number): Promise<boolean> {
    const extras = storageExtras(ttlSeconds);
    return this.operation('create', async (call) => {
      const response = await call(OP_ADD, record.userId, extras, JSON.stringify(record));
      return response.header.status === STATUS_OK;
    });
  }

  async put(record: SessionRecord, ttlSeconds: number): Promise<void> {
    const extras = storageExtras(ttlSeconds);
    await this.operation('put', async (call) => {
      await call(OP_SET, record.userId, extras, JSON.stringify(record));
    });
  }

  async touch(userId: string, ttlSeconds: number): Promise<boolean> {
    const extras = expiration(ttlSeconds);
    return this.operation('touch', async (call) => {
      const response = await call(OP_TOUCH, userId, extras);
      return response.header.status === STATUS_OK;
    });
  }

  async deleteIfMatches(userId: string, listeningKey: string): Promise<boolean> {
    return this.compareAndSet('deleteIfMatches', userId, listeningKey, (call, _current, cas) => call(OP_DELETE, userId, undefined, undefined, cas));
  }

  async updateIfMatches(
    userId: string,
    listeningKey: string,
    update: (current: SessionRecord) => SessionRecord | undefined,
    ttlSeconds: number,
  ): Promise<boolean> {
    const extras = storageExtras(ttlSeconds);
    return this.compareAndSet('updateIfMatches', userId, listeningKey, (call, current, cas) => {
      const next = update(current);
      return next === undefined ? undefined : call(OP_SET, userId, extras, JSON.stringify(next), cas);
    });
  }

  /**
   * Reads the record, and while it carries `listeningKey`, applies `write` under the CAS value read (undefined from
   * `write`: declined). False when the record is gone, carries another key, or the write was declined. A record that
   * keeps changing under us for MAX_CAS_ATTEMPTS reads is an unavailable store, not a replaced session: the callers
   * then close with a recoverable code instead of a final one.
   */
  private compareAndSet(
    name: string,
    userId: string,
    listeningKey: string,
    write: (call: RawCall, current: SessionRecord, cas: Buffer | undefined) => Promise<MemjsResponse> | undefined,
  ): Promise<boolean> {
    return this.operation(name, async (call) => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const read = await call(OP_GET, userId);
        if (read.header.status !== STATUS_OK) return false;
        const current = this.decode(userId, read.val);
        // The key may be a client's guess (the handshake checks it here): compared in constant time.
        if (current === undefined || !secretsEqual(current.listeningKey, listeningKey)) return false;
        const written = await write(call, current, read.header.cas);
        if (written === undefined) return false;
        if (written.header.status === STATUS_OK) return true;
        if (written.header.status === STATUS_NOT_FOUND) return false;
      }
      this.logger.warn({ userId, operation: name }, 'session compare-and-set gave up after repeated conflicts');
      throw new BackendError('SESSION_STORE_UNAVAILABLE', `session ${name} gave up after ${String(MAX_CAS_ATTEMPTS)} compare-and-set conflicts`);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.discard(new Error('session store closed'));
  }

  /**
   * Runs one logical operation under the deadline. `call` sends one request and resolves with memcached's answer
   * for the statuses a caller can act on (ok, not found, exists); any other status, a transport error or the
   * deadline rejects the whole operation with SESSION_STORE_UNAVAILABLE.
   */
  private async operation<T>(
    name: string,
    body: (call: RawCall) => Promise<T>,
  ): Promise<T> {
    if (this.closed) throw new BackendError('SESSION_STORE_UNAVAILABLE', 'session store is closed');
    const client = this.connection();
    let expired = false;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        expired = true;
        reject(new Deadline(`no answer from memcached within ${String(this.timeoutMs)} ms`));
      }, this.timeoutMs);
    });
    const call: RawCall = (opcode, userId, extras, value, cas) => {
      // A late continuation must not send anything (e.g. a DELETE) after the caller was told the operation failed.
      if (expired) return deadline;
      return Promise.race([request(client, opcode, sessionKey(this.prefix, userId), extras, value, cas), deadline]);
    };
    try {
      return await Promise.race([body(call), deadline]);
    } catch (error) {
      if (error instanceof BackendError) throw error;
      // Drop the connection: its callbacks may never fire, and memjs can keep stale timeouts across reconnects.
      if (this.client === client) this.discard(error);
      this.logger.warn({ op: name, err: describe(error) }, 'memcached operation failed');
      throw new BackendError('SESSION_STORE_UNAVAILABLE', `session store ${name} failed: ${describe(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  private connection(): MemjsClient {
    if (this.client) return this.client;
    this.client = memjs.Client.create(this.servers, {
      retries: 0,
      timeout: 0.5,
      conntimeout: 0.5,
      keepAlive: true,
      ...(this.credentials ? { username: this.credentials.username, password: this.credentials.password } : {}),
      logger: { log: (...args: unknown[]) => this.logger.debug({ detail: args.map(String).join(' ') }, 'memjs log') },
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

  private decode(userId: string, value: Buffer): SessionRecord | undefined {
    try {
      const record = JSON.parse(value.toString('utf8')) as Partial<SessionRecord> | null;
      if (record && typeof record === 'object' && record.userId === userId && typeof record.listeningKey === 'string') {
        return record as SessionRecord;
      }
    } catch {
      // fall through: treated as absent, like an expired record
    }
    this.logger.error({ userId }, 'unreadable session record in memcached');
    return undefined;
  }
}

function request(client: MemjsClient, opcode: number, key: string, extras?: Buffer, value?: string, cas?: Buffer): Promise<MemjsResponse> {
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
      if (status === STATUS_OK || status === STATUS_NOT_FOUND || status === STATUS_EXISTS) return resolve(response);
      reject(new Error(`memcached status 0x${status.toString(16)}: ${response.val.toString('utf8').slice(0, 200)}`));
    });
  });
}

function expiration(ttlSeconds: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(normalizeTtlSeconds(ttlSeconds), 0);
  return buffer;
}

function storageExtras(ttlSeconds: number): Buffer {
  return Buffer.concat([NO_FLAGS, expiration(ttlSeconds)]);
}

function describe(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}
