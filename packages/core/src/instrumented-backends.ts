import type { GatewayRecord, LoadRecord, NodeRecord, SessionRecord } from '@messaging-server/protocol';
import type {
  GatewayRegistration,
  NodeRegistration,
  Registration,
  Registry,
  RegistryEvent,
  RegistrySnapshot,
  RegistryEntry,
  RegistryWatch,
} from './registry.js';
import type { SessionStore } from './session-store.js';

/**
 * Called once per backend call with its duration; `error` is what it rejected with (undefined on success).
 * `seconds` is undefined for a failure that is not a call (a watch losing its stream).
 * Metrics live in the processes (prom-client), so the contracts stay free of any metrics library.
 */
export type BackendOperationHook = (operation: string, seconds: number | undefined, error: unknown) => void;

async function timed<T>(hook: BackendOperationHook, operation: string, run: () => Promise<T>): Promise<T> {
  const started = process.hrtime.bigint();
  const elapsed = (): number => Number(process.hrtime.bigint() - started) / 1e9;
  try {
    const value = await run();
    hook(operation, elapsed(), undefined);
    return value;
  } catch (error) {
    hook(operation, elapsed(), error);
    throw error;
  }
}

/** A SessionStore that reports every call to `hook`; behaviour and errors are the inner store's. */
export function instrumentSessionStore(inner: SessionStore, hook: BackendOperationHook): SessionStore {
  return {
    get: (userId: string) => timed(hook, 'get', () => inner.get(userId)),
    create: (record: SessionRecord, ttl: number) => timed(hook, 'create', () => inner.create(record, ttl)),
    put: (record: SessionRecord, ttl: number) => timed(hook, 'put', () => inner.put(record, ttl)),
    putIfMatches: (record: SessionRecord, ttl: number) => timed(hook, 'put', () => inner.putIfMatches(record, ttl)),
    touch: (userId: string, ttl: number) => timed(hook, 'touch', () => inner.touch(userId, ttl)),
    deleteIfMatches: (userId: string, key: string) => timed(hook, 'delete', () => inner.deleteIfMatches(userId, key)),
    close: () => inner.close(),
  };
}

class InstrumentedRegistration<R> implements Registration<R> {
  constructor(
    protected readonly inner: Registration<R>,
    protected readonly hook: BackendOperationHook,
  ) {}
  get id(): string {
    return this.inner.id;
  }
  get record(): R {
    return this.inner.record;
  }
  get state(): Registration<R>['state'] {
    return this.inner.state;
  }
  update(record: R): Promise<void> {
    return timed(this.hook, 'update', () => this.inner.update(record));
  }
  on(event: 'lost' | 'registered' | 'revoked', listener: () => void): this {
    this.inner.on(event, listener);
    return this;
  }
  off(event: 'lost' | 'registered' | 'revoked', listener: () => void): this {
    this.inner.off(event, listener);
    return this;
  }
  revoke(): Promise<void> {
    return timed(this.hook, 'revoke', () => this.inner.revoke());
  }
}

class InstrumentedNodeRegistration extends InstrumentedRegistration<NodeRecord> implements NodeRegistration {
  constructor(
    private readonly node: NodeRegistration,
    hook: BackendOperationHook,
  ) {
    super(node, hook);
  }
  putLoad(load: LoadRecord): Promise<void> {
    return timed(this.hook, 'put_load', () => this.node.putLoad(load));
  }
}

/**
 * A Registry that reports every call to `hook`, including the registrations it hands out. A watch that loses its
 * stream is reported as a failed `watch` operation, since the adapter retries it internally and never rejects.
 */
export function instrumentRegistry(inner: Registry, hook: BackendOperationHook): Registry {
  return {
    registerNode: async (record: NodeRecord) =>
      new InstrumentedNodeRegistration(await timed(hook, 'register', () => inner.registerNode(record)), hook),
    registerGateway: async (record: GatewayRecord): Promise<GatewayRegistration> =>
      new InstrumentedRegistration(await timed(hook, 'register', () => inner.registerGateway(record)), hook),
    list: (): Promise<RegistrySnapshot & { entries: RegistryEntry[] }> => timed(hook, 'list', () => inner.list()),
    leaseTimeToLive: (leaseId: string) => timed(hook, 'lease_ttl', () => inner.leaseTimeToLive(leaseId)),
    watch: (listener: (event: RegistryEvent) => void): Promise<RegistryWatch> =>
      timed(hook, 'watch', () =>
        inner.watch((event) => {
          if (event.type === 'status' && !event.synced) hook('watch', undefined, new Error('registry watch lost its stream'));
          listener(event);
        }),
      ),
    close: () => inner.close(),
  };
}
