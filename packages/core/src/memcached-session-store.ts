import type { SessionRecord } from '@messaging-server/protocol';
import { BackendError } from './errors.js';
import type { Logger } from './logger.js';
import type { SessionStore } from './session-store.js';
import { sessionKey } from './session-key.js';
import {
  expiration,
  storeParts,
  type MemcachedConnection,
  type MemcachedStoreOptions,
  OP_ADD,
  OP_DELETE,
  OP_GET,
  OP_SET,
  OP_TOUCH,
  STATUS_NOT_FOUND,
  STATUS_OK,
  storageExtras,
  type MemjsResponse,
} from './memcached-connection.js';
import { secretsEqual } from './secure-compare.js';

export type MemcachedSessionStoreOptions = MemcachedStoreOptions;

// A CAS conflict on delete or a conditional write means the record changed after our read; re-read a few times.
const MAX_CAS_ATTEMPTS = 4;

/** One raw request on this user's session key. */
type RawCall = (opcode: number, userId: string, extras?: Buffer, value?: string, cas?: Buffer) => Promise<MemjsResponse>;

/**
 * SessionStore on memcached (MemcachedConnection: raw memjs requests under a per-operation deadline). The CAS value
 * of a GET and the CAS field of a DELETE make deleteIfMatches exact: it never deletes a record written after its read.
 */
export class MemcachedSessionStore implements SessionStore {
  private readonly prefix: string;
  private readonly logger: Logger;
  /** Shareable with another store (MemcachedStoreOptions.connection). */
  readonly connection: MemcachedConnection;

  constructor(options: MemcachedSessionStoreOptions) {
    ({ prefix: this.prefix, logger: this.logger, connection: this.connection } = storeParts(options, 'memcached-session-store'));
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
    this.connection.close();
  }

  /** One operation on user keys: `call` takes a userId and sends the request on its session key. */
  private operation<T>(name: string, body: (call: RawCall) => Promise<T>): Promise<T> {
    return this.connection.operation(name, (raw) =>
      body((opcode, userId, extras, value, cas) => raw(opcode, sessionKey(this.prefix, userId), extras, value, cas)),
    );
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
