import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { Ajv } from 'ajv';
import { weakSecrets } from './secret-strength.js';
import { missingStoreCredentials } from './store-credentials.js';
import type { NodeId } from '@messaging-server/protocol';

export type ProcessKind = 'gateway' | 'node' | 'standalone';
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface CommonConfig {
  /** Nodes require it on their internal API; gateways send it with the replace notice. */
  clusterSecret?: string;
  /** `MSG_PRODUCTION` (or `NODE_ENV=production`): nodes refuse to start without a cluster secret. */
  production: boolean;
  /** Browser origins allowed on /connect (CORS) and on SockJS handshakes; `['*']` allows any. */
  allowedOrigins: string[];
  etcdEndpoints: string[];
  etcdPrefix: string;
  memcachedServers: string[];
  memcachedPrefix: string;
  /** An etcd user (etcd started with auth enabled); with etcdPassword. */
  etcdUsername?: string;
  etcdPassword?: string;
  /** A memcached SASL user (memcached started with -S); with memcachedPassword. */
  memcachedUsername?: string;
  memcachedPassword?: string;
  host: string;
  port: number;
  leaseTtlSeconds: number;
  handshakeTimeoutSeconds: number;
  logLevel: LogLevel;
}

export interface GatewayConfig extends CommonConfig {
  sessionConflict: 'replace' | 'reject';
  authJwtSecret?: string;
  authJwksUrl?: string;
  /** Required `aud` of /connect tokens (any of the list). */
  authAudience?: string[];
  /** Required `iss` of /connect tokens. */
  authIssuer?: string;
  /** The longest a /connect token may live (from `iat` and until `exp`), so a leaked long-lived one expires anyway. */
  authMaxTokenAgeSeconds: number;
  /** Per client IP; 0 turns the limit off. */
  connectRatePerIpPerMinute: number;
  /** Proxies (IPs or CIDRs) whose `X-Forwarded-For` names the client. */
  trustedProxies?: string[];
  /** STUN/TURN URLs handed out with each session (`iceServers` in the /connect answer). */
  turnUrls?: string[];
  /** coturn's `static-auth-secret`: TURN URLs get TURN REST credentials signed with it. */
  turnSecret?: string;
  /** Lifetime of those credentials. */
  turnTtlSeconds: number;
}

export interface NodeConfig extends CommonConfig {
  internalPort: number;
  nodeId: NodeId;
  /** `MSG_CLUSTER_SECRET_PREVIOUS`: also accepted on replace/drain while the secret is rotated (docs/operations.md). */
  clusterSecretPrevious?: string;
  /** `MSG_PUBLIC_BASE_URL`: the public origin (and path prefix) of the proxy that routes `/n/<nodeId>/…` here. */
  publicBaseUrl?: string;
  publicUrl: string;
  internalUrl: string;
  sessionTtlSeconds: number;
  pendingTtlMs: number;
  /** How long a user whose connection ended without its own clean close is moving (v1.1); 0 restores v1. */
  resumeWindowMs: number;
  pendingMax: number;
  /** v1.2: a connection with receipts on that leaves more than this many messages unconfirmed is closed (4006). */
  maxUnconfirmed: number;
  /** v1.2: members per room (ROOM_FULL beyond). */
  roomMaxMembers: number;
  /** v1.2: rooms per user (TOO_MANY_ROOMS beyond). */
  roomsPerUser: number;
  /** Bytes held in pending queues: per node, per sender, per recipient (see HeldBudget). */
  pendingMaxBytes: number;
  pendingMaxBytesPerSender: number;
  pendingMaxBytesPerRecipient: number;
  /** Bytes queued for one connection that it has not read yet; more closes it (4005). */
  maxBufferedBytes: number;
  maxMessageBytes: number;
  drainTimeoutSeconds: number;
  drainRatePerSecond: number;
  rateMessagesPerSecond: number;
  rateBurst: number;
  rateBytesPerSecond: number;
  rateBytesBurst: number;
  /** Open and opening SockJS connections per node; 0 means no limit. */
  maxConnections: number;
  /** A connection that sent nothing for this long is closed (4004); 0 turns it off. */
  idleTimeoutSeconds: number;
}

export type StandaloneConfig = GatewayConfig & NodeConfig;
export interface ConfigByKind {
  gateway: GatewayConfig;
  node: NodeConfig;
  standalone: StandaloneConfig;
}

type FieldType = 'string' | 'list' | 'port' | 'integer' | 'url' | 'boolean';
interface Field {
  env: string;
  key: string;
  type: FieldType;
  kinds: readonly ProcessKind[];
  /** Undefined: optional with no default. A function: derived from the other values. */
  fallback?: string | number | ((partial: Record<string, unknown>, kind: ProcessKind) => unknown);
  min?: number;
  max?: number;
  enum?: readonly string[];
}

const ALL = ['gateway', 'node', 'standalone'] as const;
const NODE = ['node', 'standalone'] as const;
const GATEWAY = ['gateway', 'standalone'] as const;

/** Every variable of the contract's configuration table. The CLI maps `--flag-name` to `MSG_FLAG_NAME`. */
export const CONFIG_FIELDS: readonly Field[] = [
  { env: 'MSG_ETCD_ENDPOINTS', key: 'etcdEndpoints', type: 'list', kinds: ALL, fallback: 'http://127.0.0.1:2379' },
  { env: 'MSG_ETCD_PREFIX', key: 'etcdPrefix', type: 'string', kinds: ALL, fallback: '/messaging-server/' },
  { env: 'MSG_MEMCACHED_SERVERS', key: 'memcachedServers', type: 'list', kinds: ALL, fallback: '127.0.0.1:11211' },
  { env: 'MSG_MEMCACHED_PREFIX', key: 'memcachedPrefix', type: 'string', kinds: ALL, fallback: 'ms:' },
  { env: 'MSG_ETCD_USERNAME', key: 'etcdUsername', type: 'string', kinds: ALL },
  { env: 'MSG_ETCD_PASSWORD', key: 'etcdPassword', type: 'string', kinds: ALL },
  { env: 'MSG_MEMCACHED_USERNAME', key: 'memcachedUsername', type: 'string', kinds: ALL },
  { env: 'MSG_MEMCACHED_PASSWORD', key: 'memcachedPassword', type: 'string', kinds: ALL },
  { env: 'MSG_HOST', key: 'host', type: 'string', kinds: ALL, fallback: '0.0.0.0' },
  { env: 'MSG_PORT', key: 'port', type: 'port', kinds: ALL, fallback: (_p, kind) => (kind === 'node' ? 8081 : 8080) },
  { env: 'MSG_INTERNAL_PORT', key: 'internalPort', type: 'port', kinds: NODE, fallback: 9081 },
  { env: 'MSG_NODE_ID', key: 'nodeId', type: 'string', kinds: NODE, fallback: (p) => `${hostname()}-${String(p['port'])}` },
  { env: 'MSG_PUBLIC_BASE_URL', key: 'publicBaseUrl', type: 'url', kinds: NODE },
  // Behind the proxy a node is `<base>/n/<nodeId>/ws` (docs/decisions.md, "Node addresses"); MSG_PUBLIC_URL wins.
  { env: 'MSG_PUBLIC_URL', key: 'publicUrl', type: 'url', kinds: NODE, fallback: (p) => publicUrlOf(p) },
  {
    env: 'MSG_INTERNAL_URL',
    key: 'internalUrl',
    type: 'url',
    kinds: NODE,
    fallback: (p, kind) => `http://127.0.0.1:${String(kind === 'standalone' ? p['port'] : p['internalPort'])}`,
  },
  { env: 'MSG_CLUSTER_SECRET', key: 'clusterSecret', type: 'string', kinds: ALL },
  { env: 'MSG_CLUSTER_SECRET_PREVIOUS', key: 'clusterSecretPrevious', type: 'string', kinds: NODE },
  { env: 'MSG_LEASE_TTL_SECONDS', key: 'leaseTtlSeconds', type: 'integer', kinds: ALL, fallback: 5, min: 1, max: 3600 },
  { env: 'MSG_SESSION_TTL_SECONDS', key: 'sessionTtlSeconds', type: 'integer', kinds: NODE, fallback: 120, min: 3, max: 86400 },
  { env: 'MSG_HANDSHAKE_TIMEOUT_SECONDS', key: 'handshakeTimeoutSeconds', type: 'integer', kinds: ALL, fallback: 30, min: 1, max: 3600 },
  { env: 'MSG_PENDING_TTL_MS', key: 'pendingTtlMs', type: 'integer', kinds: NODE, fallback: 10000, min: 1, max: 3_600_000 },
  { env: 'MSG_RESUME_WINDOW_MS', key: 'resumeWindowMs', type: 'integer', kinds: NODE, fallback: 10000, min: 0, max: 600_000 },
  { env: 'MSG_MAX_MESSAGE_BYTES', key: 'maxMessageBytes', type: 'integer', kinds: NODE, fallback: 65536, min: 256, max: 16_777_216 },
  { env: 'MSG_DRAIN_TIMEOUT_SECONDS', key: 'drainTimeoutSeconds', type: 'integer', kinds: NODE, fallback: 25, min: 0, max: 3600 },
  { env: 'MSG_MAX_UNCONFIRMED', key: 'maxUnconfirmed', type: 'integer', kinds: NODE, fallback: 1024, min: 1, max: 1_000_000 },
  { env: 'MSG_ROOM_MAX_MEMBERS', key: 'roomMaxMembers', type: 'integer', kinds: NODE, fallback: 50, min: 2, max: 10_000 },
  { env: 'MSG_ROOMS_PER_USER', key: 'roomsPerUser', type: 'integer', kinds: NODE, fallback: 16, min: 1, max: 10_000 },
  { env: 'MSG_PENDING_MAX', key: 'pendingMax', type: 'integer', kinds: NODE, fallback: 256, min: 1, max: 1_000_000 },
  { env: 'MSG_PENDING_MAX_BYTES', key: 'pendingMaxBytes', type: 'integer', kinds: NODE, fallback: 64 << 20, min: 1024, max: 2 ** 40 },
  { env: 'MSG_PENDING_MAX_BYTES_PER_SENDER', key: 'pendingMaxBytesPerSender', type: 'integer', kinds: NODE, fallback: 1 << 20, min: 1024, max: 2 ** 40 },
  {
    env: 'MSG_PENDING_MAX_BYTES_PER_RECIPIENT',
    key: 'pendingMaxBytesPerRecipient',
    type: 'integer',
    kinds: NODE,
    fallback: 1 << 20,
    min: 1024,
    max: 2 ** 40,
  },
  { env: 'MSG_MAX_BUFFERED_BYTES', key: 'maxBufferedBytes', type: 'integer', kinds: NODE, fallback: 1 << 20, min: 4096, max: 2 ** 34 },
  { env: 'MSG_RATE_MESSAGES_PER_SECOND', key: 'rateMessagesPerSecond', type: 'integer', kinds: NODE, fallback: 1000, min: 1, max: 10_000_000 },
  { env: 'MSG_RATE_BURST', key: 'rateBurst', type: 'integer', kinds: NODE, fallback: 2000, min: 1, max: 10_000_000 },
  { env: 'MSG_RATE_BYTES_PER_SECOND', key: 'rateBytesPerSecond', type: 'integer', kinds: NODE, fallback: 1_048_576, min: 256, max: 1 << 30 },
  { env: 'MSG_RATE_BYTES_BURST', key: 'rateBytesBurst', type: 'integer', kinds: NODE, fallback: 4_194_304, min: 256, max: 1 << 30 },
  { env: 'MSG_MAX_CONNECTIONS', key: 'maxConnections', type: 'integer', kinds: NODE, fallback: 20_000, min: 0, max: 10_000_000 },
  // After MSG_MAX_CONNECTIONS and MSG_DRAIN_TIMEOUT_SECONDS: its default is derived from both.
  {
    env: 'MSG_DRAIN_RATE_PER_SECOND',
    key: 'drainRatePerSecond',
    type: 'integer',
    kinds: NODE,
    fallback: (p) => drainRateFor(Number(p['maxConnections']), Number(p['drainTimeoutSeconds'])),
    min: 1,
    max: 1_000_000,
  },
  { env: 'MSG_IDLE_TIMEOUT_SECONDS', key: 'idleTimeoutSeconds', type: 'integer', kinds: NODE, fallback: 300, min: 0, max: 86400 },
  { env: 'MSG_ALLOWED_ORIGINS', key: 'allowedOrigins', type: 'list', kinds: ALL, fallback: '*' },
  {
    env: 'MSG_CONNECT_RATE_PER_IP_PER_MINUTE',
    key: 'connectRatePerIpPerMinute',
    type: 'integer',
    kinds: GATEWAY,
    fallback: 0,
    min: 0,
    max: 10_000_000,
  },
  { env: 'MSG_TRUSTED_PROXIES', key: 'trustedProxies', type: 'list', kinds: GATEWAY },
  { env: 'MSG_PRODUCTION', key: 'production', type: 'boolean', kinds: ALL, fallback: 'false' },
  { env: 'MSG_AUTH_JWT_SECRET', key: 'authJwtSecret', type: 'string', kinds: GATEWAY },
  { env: 'MSG_TURN_URLS', key: 'turnUrls', type: 'list', kinds: GATEWAY },
  { env: 'MSG_TURN_SECRET', key: 'turnSecret', type: 'string', kinds: GATEWAY },
  { env: 'MSG_TURN_TTL_SECONDS', key: 'turnTtlSeconds', type: 'integer', kinds: GATEWAY, fallback: 86400, min: 60, max: 604800 },
  { env: 'MSG_AUTH_JWKS_URL', key: 'authJwksUrl', type: 'url', kinds: GATEWAY },
  { env: 'MSG_AUTH_AUDIENCE', key: 'authAudience', type: 'list', kinds: GATEWAY },
  { env: 'MSG_AUTH_ISSUER', key: 'authIssuer', type: 'string', kinds: GATEWAY },
  {
    env: 'MSG_AUTH_MAX_TOKEN_AGE_SECONDS',
    key: 'authMaxTokenAgeSeconds',
    type: 'integer',
    kinds: GATEWAY,
    fallback: 3600,
    min: 60,
    max: 30 * 86400,
  },
  { env: 'MSG_SESSION_CONFLICT', key: 'sessionConflict', type: 'string', kinds: GATEWAY, fallback: 'replace', enum: ['replace', 'reject'] },
  {
    env: 'MSG_LOG_LEVEL',
    key: 'logLevel',
    type: 'string',
    kinds: ALL,
    fallback: 'info',
    enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
  },
];

/** The names of every variable the given process kind reads (for docs, manifests checks and `--help`). */
export function configVariables(kind?: ProcessKind): string[] {
  return CONFIG_FIELDS.filter((f) => kind === undefined || f.kinds.includes(kind)).map((f) => f.env);
}

/** `<MSG_PUBLIC_BASE_URL>/n/<nodeId>/ws` when a base is set, else the node's own port on loopback. */
function publicUrlOf(p: Record<string, unknown>): string {
  const base = p['publicBaseUrl'];
  if (typeof base !== 'string') return `http://127.0.0.1:${String(p['port'])}/ws`;
  return `${base.replace(/\/+$/, '')}/n/${encodeURIComponent(String(p['nodeId']))}/ws`;
}

/** The drain closes clients at this rate; at the default it empties a full node within 80 % of the drain timeout. */
const DRAIN_TIME_SHARE = 0.8;
const MIN_DRAIN_RATE = 100;

/**
 * The default drain rate: fast enough that a node at MSG_MAX_CONNECTIONS closes every client gracefully (4000)
 * before MSG_DRAIN_TIMEOUT_SECONDS, and never below 100/s. 20,000 connections in 25 s give 1,000/s.
 */
export function drainRateFor(maxConnections: number, drainTimeoutSeconds: number): number {
  if (!(maxConnections > 0) || !(drainTimeoutSeconds > 0)) return MIN_DRAIN_RATE;
  return Math.max(MIN_DRAIN_RATE, Math.ceil(maxConnections / (drainTimeoutSeconds * DRAIN_TIME_SHARE)));
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`invalid configuration: ${problems.join('; ')}`);
  }
}

const ajv = new Ajv({ allErrors: true, coerceTypes: true, strict: true });

function schemaOf(field: Field): object {
  switch (field.type) {
    case 'port':
      return { type: 'integer', minimum: 0, maximum: 65535 };
    case 'integer':
      return { type: 'integer', minimum: field.min ?? 0, maximum: field.max ?? Number.MAX_SAFE_INTEGER };
    case 'url':
      return { type: 'string', pattern: '^https?://[^\\s]+$' };
    case 'list':
      return { type: 'string', pattern: '^[^\\s,]+(,[^\\s,]+)*$' };
    case 'string':
      return field.enum ? { type: 'string', enum: field.enum } : { type: 'string', minLength: 1 };
    case 'boolean':
      return { type: 'string', enum: [...TRUE_WORDS, ...FALSE_WORDS] };
  }
}

const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];

function explain(field: Field): string {
  switch (field.type) {
    case 'port':
      return 'must be a port number (0–65535)';
    case 'integer':
      return `must be an integer from ${String(field.min ?? 0)} to ${String(field.max ?? Number.MAX_SAFE_INTEGER)}`;
    case 'url':
      return 'must be an http(s) URL';
    case 'list':
      return 'must be a comma-separated list without spaces';
    case 'string':
      return field.enum ? `must be one of ${field.enum.join(', ')}` : 'must not be empty';
    case 'boolean':
      return `must be one of ${[...TRUE_WORDS, ...FALSE_WORDS].join(', ')}`;
  }
}

function valueOf(field: Field, raw: unknown): unknown {
  if (field.type === 'list') return String(raw).split(',');
  if (field.type === 'boolean') return typeof raw === 'boolean' ? raw : TRUE_WORDS.includes(String(raw));
  return raw;
}

/** An IPv4/IPv6 address, optionally with a /prefix. */
export function isIpOrCidr(text: string): boolean {
  const [address, prefix, ...rest] = text.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

/**
 * The `MSG_ALLOWED_ORIGINS` rule, shared by gateways (/connect) and nodes (SockJS): `*` allows any origin; a request
 * without Origin (not a browser) is allowed, since only browsers send one and any other client could forge it.
 */
export function originAllowed(allowed: readonly string[], origin: string | undefined): boolean {
  if (origin === undefined || origin === '' || allowed.includes('*')) return true;
  const normalized = origin.toLowerCase().replace(/\/+$/, '');
  return allowed.some((item) => item.toLowerCase() === normalized);
}

/** Rules that span several variables, or need more than a pattern. */
function crossFieldProblems(kind: ProcessKind, values: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const proxies = values['trustedProxies'];
  if (Array.isArray(proxies)) {
    const bad = proxies.filter((item) => !isIpOrCidr(String(item)));
    if (bad.length > 0) problems.push(`MSG_TRUSTED_PROXIES has entries that are not IPs or CIDRs: ${bad.join(', ')}`);
  }
  const origins = values['allowedOrigins'];
  if (Array.isArray(origins)) {
    const bad = origins.filter((item) => item !== '*' && !/^https?:\/\/[^/\s]+$/.test(String(item)));
    if (bad.length > 0) problems.push(`MSG_ALLOWED_ORIGINS entries must be * or scheme://host[:port]: ${bad.join(', ')}`);
  }
  const base = values['publicBaseUrl'];
  if (typeof base === 'string' && !/^https?:\/\/[^/?#\s]+(\/[^?#\s]*)?$/.test(base)) {
    problems.push(`MSG_PUBLIC_BASE_URL must be scheme://host[:port][/path], without query or fragment: ${base}`);
  }
  if (typeof base === 'string' && !/^[A-Za-z0-9_-]+$/.test(String(values['nodeId']))) {
    problems.push(`MSG_NODE_ID must be letters, digits, _ and - with MSG_PUBLIC_BASE_URL (it is a path segment): ${String(values['nodeId'])}`);
  }
  const jwksUrl = values['authJwksUrl'];
  if (typeof jwksUrl === 'string' && !jwksUrl.startsWith('https://')) {
    problems.push('MSG_AUTH_JWKS_URL must be an https URL (keys fetched over plain http could be swapped on the way)');
  }
  problems.push(...turnProblems(values));
  for (const [user, password, store] of [
    ['etcdUsername', 'etcdPassword', 'ETCD'],
    ['memcachedUsername', 'memcachedPassword', 'MEMCACHED'],
  ] as const) {
    if ((values[user] === undefined) !== (values[password] === undefined)) {
      problems.push(`MSG_${store}_USERNAME and MSG_${store}_PASSWORD go together: set both or neither`);
    }
  }
  if (values['production'] === true) problems.push(...productionProblems(kind, values));
  return problems;
}

/**
 * Production mode refuses what is only safe on a trusted network: an open internal API, unauthenticated
 * userIds, any browser origin, and a gateway that cannot tell clients apart behind its proxy.
 */
function productionProblems(kind: ProcessKind, values: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const why = 'in production mode (MSG_PRODUCTION or NODE_ENV=production)';
  const isGateway = kind !== 'node';
  const isNode = kind !== 'gateway';
  if (isNode && values['clusterSecret'] === undefined) problems.push(`MSG_CLUSTER_SECRET is required ${why}`);
  if (kind !== 'standalone') problems.push(...missingStoreCredentials(values, why));
  if (isGateway && values['authJwtSecret'] === undefined && values['authJwksUrl'] === undefined) {
    problems.push(`MSG_AUTH_JWT_SECRET or MSG_AUTH_JWKS_URL is required ${why}`);
  }
  problems.push(...weakSecrets(values, why));
  if ((values['allowedOrigins'] as string[]).includes('*')) problems.push(`MSG_ALLOWED_ORIGINS must list the origins, not *, ${why}`);
  if (isGateway && values['trustedProxies'] === undefined) problems.push(`MSG_TRUSTED_PROXIES (the proxy's addresses) is required ${why}`);
  const max = Number(values['maxConnections']);
  const covered = Number(values['drainRatePerSecond']) * Number(values['drainTimeoutSeconds']);
  if (isNode && max > 0 && covered < max) {
    problems.push(
      `MSG_DRAIN_RATE_PER_SECOND × MSG_DRAIN_TIMEOUT_SECONDS (${String(covered)}) must cover MSG_MAX_CONNECTIONS (${String(max)}) ${why}`,
    );
  }
  return problems;
}

/** TURN URLs need the secret that signs their credentials, and a secret needs somewhere to be used. */
function turnProblems(values: Record<string, unknown>): string[] {
  const urls = Array.isArray(values['turnUrls']) ? values['turnUrls'].map(String) : [];
  const bad = urls.filter((url) => !/^(stuns?|turns?):[^\s]+$/.test(url));
  if (bad.length > 0) return [`MSG_TURN_URLS entries must be stun:, stuns:, turn: or turns: URLs: ${bad.join(', ')}`];
  const hasSecret = values['turnSecret'] !== undefined;
  if (hasSecret && urls.length === 0) return ['MSG_TURN_SECRET is set but MSG_TURN_URLS is not: name the TURN servers'];
  if (!hasSecret && urls.some((url) => url.startsWith('turn'))) {
    return ['MSG_TURN_URLS names TURN servers but MSG_TURN_SECRET is unset: clients would get no credentials for them'];
  }
  return [];
}

// ajv coerces only inside objects, so each field is validated as the `value` property of a wrapper.
const validators = new Map(
  CONFIG_FIELDS.map((f) => [f.env, ajv.compile({ type: 'object', properties: { value: schemaOf(f) } })]),
);

/**
 * Reads the configuration of one process kind from an environment-like map. Unknown `MSG_*` variables are
 * ignored here (the CLI warns about them). Throws ConfigError listing every invalid variable at once.
 */
export function loadConfig<K extends ProcessKind>(kind: K, env: Readonly<Record<string, string | undefined>>): Readonly<ConfigByKind[K]> {
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  const fields = CONFIG_FIELDS.filter((f) => f.kinds.includes(kind));
  for (const field of fields) {
    const raw = env[field.env];
    if (raw === undefined || raw === '') continue;
    const holder = { value: raw as unknown };
    const validate = validators.get(field.env);
    if (!validate || !validate(holder)) {
      problems.push(`${field.env}=${JSON.stringify(raw)} ${explain(field)}`);
      continue;
    }
    values[field.key] = valueOf(field, holder.value);
  }
  const explicit = { ...values };
  // Derived defaults run after explicit values, in table order, so e.g. the node id can use the chosen port.
  for (const field of fields) {
    if (field.key in values || field.fallback === undefined) continue;
    const fallback = typeof field.fallback === 'function' ? field.fallback(values, kind) : field.fallback;
    values[field.key] = valueOf(field, fallback);
  }
  // NODE_ENV=production (the image sets it) means production mode, unless MSG_PRODUCTION says otherwise.
  if (!('production' in explicit) && env['NODE_ENV'] === 'production') values['production'] = true;
  problems.push(...crossFieldProblems(kind, values));
  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze(values) as unknown as Readonly<ConfigByKind[K]>;
}
