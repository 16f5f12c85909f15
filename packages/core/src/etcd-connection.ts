import {
  Etcd3,
  EtcdLeaseInvalidError,
  type IDuplexStream,
  type IKeyValue,
  type ILeaseKeepAliveRequest,
  type ILeaseKeepAliveResponse,
  type IOptions,
  type IRangeResponse,
  type IRequestOp,
  type ICompare,
  type ITxnResponse,
  type IWatchRequest,
  type IWatchResponse,
} from 'etcd3';
import { BackendError } from './errors.js';
import type { Logger } from './logger.js';
import type { RegistryEntry, RegistryKind } from './registry.js';
import type { StoreCredentials } from './store-credentials.js';

/** Thrown (internally) when etcd says a lease no longer exists: the owner has lost its registration. */
export class LeaseGoneError extends Error {
  override readonly name = 'LeaseGoneError';
}

export type KeepaliveStream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;
export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;
export type { IKeyValue, IWatchResponse, ICompare, IRequestOp };

const KIND_DIRS: Record<RegistryKind, string> = { node: 'nodes/', load: 'load/', gateway: 'gateways/' };

// etcd3's default host circuit breaker stays open for 5 s after three failures, which would hold every call
// back long after etcd is up again; we bound and retry at our own level instead.
const passThroughPolicy = {
  execute: <T>(fn: (context: { signal: AbortSignal; attempt: number }) => T) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal, attempt: 0 })),
};

/**
 * The etcd3 client, with every unary call bounded in time and its errors translated into BackendError, plus the
 * key layout under the prefix. The only place (with its sibling etcd-* files) that touches etcd3 types.
 */
export class EtcdConnection {
  readonly client: Etcd3;
  readonly prefix: Buffer;
  readonly prefixEnd: Buffer;
  private closed = false;

  constructor(
    endpoints: string[],
    prefix: string,
    readonly callTimeoutMs: number,
    readonly logger: Logger,
    credentials?: StoreCredentials,
  ) {
    if (endpoints.length === 0) throw new RangeError('at least one etcd endpoint is required');
    this.prefix = Buffer.from(prefix);
    this.prefixEnd = rangeEndOf(this.prefix);
    const options: IOptions = {
      hosts: endpoints,
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
      grpcOptions: {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1000,
        'grpc.use_local_subchannel_pool': 1,
        // A hung (not closed) etcd is noticed on streams too; etcd's default ping policy allows every 5 s.
        'grpc.keepalive_time_ms': 10_000,
        'grpc.keepalive_timeout_ms': 5_000,
      },
      faultHandling: {
        host: () => passThroughPolicy as unknown as ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>,
        global: passThroughPolicy as unknown as NonNullable<NonNullable<IOptions['faultHandling']>['global']>,
      },
    };
    // etcd's users and roles: the client trades them for a token and fetches a new one when etcd says it expired.
    if (credentials) options.auth = { username: credentials.username, password: credentials.password };
    this.client = new Etcd3(options);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs one etcd call, bounded by callTimeoutMs; rejects with BackendError or LeaseGoneError. */
  async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new BackendError('REGISTRY_UNAVAILABLE', 'etcd registry is closed');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new BackendError('REGISTRY_UNAVAILABLE', `etcd ${operation} timed out after ${String(this.callTimeoutMs)} ms`));
      }, this.callTimeoutMs);
    });
    try {
      return await Promise.race([run(), timeout]);
    } catch (error) {
      throw translateError(error, operation);
    } finally {
      clearTimeout(timer);
    }
  }

  range(key: Buffer, rangeEnd?: Buffer): Promise<IRangeResponse> {
    return this.call('range', () => this.client.kv.range(rangeEnd ? { key, range_end: rangeEnd } : { key }));
  }

  rangePrefix(): Promise<IRangeResponse> {
    return this.range(this.prefix, this.prefixEnd);
  }

  /** The key range of one kind of entry, or of the whole prefix. */
  scopeOf(kind?: RegistryKind): { key: Buffer; end: Buffer } {
    if (kind === undefined) return { key: this.prefix, end: this.prefixEnd };
    const key = Buffer.concat([this.prefix, Buffer.from(KIND_DIRS[kind])]);
    return { key, end: rangeEndOf(key) };
  }

  txn(compare: ICompare[], success: IRequestOp[], failure: IRequestOp[]): Promise<ITxnResponse> {
    return this.call('txn', () => this.client.kv.txn({ compare, success, failure }));
  }

  async put(key: Buffer, value: string, leaseId: string): Promise<void> {
    await this.call('put', () => this.client.kv.put({ key, value: Buffer.from(value), lease: leaseId }));
  }

  async grant(ttlSeconds: number): Promise<string> {
    const response = await this.call('lease grant', () => this.client.leaseClient.leaseGrant({ TTL: ttlSeconds }));
    return response.ID;
  }

  async revoke(leaseId: string): Promise<void> {
    try {
      await this.call('lease revoke', () => this.client.leaseClient.leaseRevoke({ ID: leaseId }));
    } catch (error) {
      if (!(error instanceof LeaseGoneError)) throw error;
    }
  }

  /** Best effort: used to clean up leases nobody will keep alive; they expire by themselves otherwise. */
  revokeQuietly(leaseId: string): void {
    this.revoke(leaseId).catch((error: unknown) => {
      this.logger.debug({ leaseId, err: error }, 'etcd lease revoke failed; it will expire');
    });
  }

  async timeToLive(leaseId: string): Promise<number | undefined> {
    const response = await this.call('lease ttl', () => this.client.leaseClient.leaseTimeToLive({ ID: leaseId }));
    const ttl = Number(response.TTL);
    return ttl < 0 ? undefined : ttl;
  }

  openKeepalive(): Promise<KeepaliveStream> {
    return this.call('lease keepalive', () => this.client.leaseClient.leaseKeepAlive());
  }

  openWatch(): Promise<WatchStream> {
    return this.call('watch', () => this.client.watchClient.watch());
  }

  keyOf(kind: RegistryKind, id: string): Buffer {
    return Buffer.concat([this.prefix, Buffer.from(KIND_DIRS[kind] + id)]);
  }

  /** A registry entry from a key-value, or undefined for keys outside the layout or values that are not JSON. */
  entryOf(kv: IKeyValue): RegistryEntry | undefined {
    const parsed = this.parseKey(kv.key);
    if (!parsed) return undefined;
    try {
      const value: unknown = JSON.parse(kv.value.toString());
      const leaseId = kv.lease && kv.lease !== '0' ? kv.lease : undefined;
      const entry = { kind: parsed.kind, id: parsed.id, value } as RegistryEntry;
      if (leaseId !== undefined) entry.leaseId = leaseId;
      return entry;
    } catch {
      this.logger.warn({ key: kv.key.toString() }, 'registry value is not json; ignored');
      return undefined;
    }
  }

  parseKey(key: Buffer): { kind: RegistryKind; id: string } | undefined {
    if (key.length <= this.prefix.length || !key.subarray(0, this.prefix.length).equals(this.prefix)) return undefined;
    const rest = key.subarray(this.prefix.length).toString();
    for (const kind of ['node', 'load', 'gateway'] as const) {
      const dir = KIND_DIRS[kind];
      if (rest.startsWith(dir) && rest.length > dir.length) return { kind, id: rest.slice(dir.length) };
    }
    return undefined;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }
}

export function translateError(error: unknown, operation: string): Error {
  if (error instanceof BackendError || error instanceof LeaseGoneError) return error;
  if (error instanceof EtcdLeaseInvalidError) return new LeaseGoneError(`etcd ${operation}: lease not found`, { cause: error });
  const message = error instanceof Error ? error.message : String(error);
  return new BackendError('REGISTRY_UNAVAILABLE', `etcd ${operation} failed: ${message}`, { cause: error });
}

/** Ends a gRPC stream without letting etcd3 count it as a host failure (it resets every channel on those). */
export function closeStream(stream: { end(): void; cancel(): void }): void {
  try {
    stream.end();
  } catch {
    // already ended
  }
  try {
    stream.cancel();
  } catch {
    // already cancelled
  }
}

function rangeEndOf(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    const byte = end[i] ?? 0;
    if (byte < 0xff) {
      end[i] = byte + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
