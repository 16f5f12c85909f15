import type { JWTVerifyGetKey } from 'jose';
import { HttpError } from './http-error.js';

/**
 * The authentication seam of POST /connect. It runs after the body is parsed (it needs the userId) and before a
 * node is allocated. It resolves to let the request through and throws an HttpError (401 UNAUTHORIZED) to stop it.
 */
/** What a verified token grants beyond the userId: v1.2's `rooms` claim (absent: every room). */
export interface ConnectGrant {
  roomGrants?: string[];
}
export type ConnectAuthenticator = (request: { authorization: string | undefined; userId: string }) => Promise<ConnectGrant | void>;

export interface JwtAuthOptions {
  /** HS256 shared secret (`MSG_AUTH_JWT_SECRET`). */
  secret?: string;
  /** JWKS URL (`MSG_AUTH_JWKS_URL`), https only; keys are fetched and cached by jose. */
  jwksUrl?: string;
  /** Accepted `aud` values (`MSG_AUTH_AUDIENCE`); a token must name one of them. */
  audience?: readonly string[];
  /** Required `iss` (`MSG_AUTH_ISSUER`). */
  issuer?: string;
  /** Seconds of clock skew tolerated on exp/nbf/iat. */
  clockToleranceSeconds?: number;
  /**
   * The longest a token may live, seconds (`MSG_AUTH_MAX_TOKEN_AGE_SECONDS`, default 3600): one issued longer ago
   * (`iat`) or expiring later (`exp`) than that from now is refused. Without it, a token minted with an `exp` years
   * away stays a key to the user's account for years once it leaks.
   */
  maxTokenAgeSeconds?: number;
  /** How the key set is fetched (tests pass one that trusts their own certificate authority). */
  jwksFetch?: (url: string, init: RequestInit) => Promise<Response>;
}

const unauthorized = (message: string): HttpError =>
  new HttpError('UNAUTHORIZED', message, { headers: { 'www-authenticate': 'Bearer' } });

/** The key set could not be had (unreachable, not 200, not a key set, too slow). */
class KeySetUnavailable extends Error {}
const OUTAGE_CODES = new Set(['ERR_JOSE_GENERIC', 'ERR_JWKS_TIMEOUT', 'ERR_JWKS_INVALID']);

type Jose = typeof import('jose');
let joseModule: Promise<Jose> | undefined;
// Loaded only when authentication is on, so a deployment without it does not need the package.
const loadJose = (): Promise<Jose> => (joseModule ??= import('jose'));

/** A key set over plain http could be swapped by anyone on the path, and every token signed with their key accepted. */
export function assertHttpsJwksUrl(url: string): void {
  if (new URL(url).protocol !== 'https:') throw new Error('MSG_AUTH_JWKS_URL must be an https URL');
}

/**
 * The key lookup of a remote key set, with its failures told apart: a token whose key is not in the set is the
 * caller's problem (401); a key set that cannot be fetched is ours (503 AUTH_UNAVAILABLE, retryable).
 */
function keySetResolver(jose: Jose, options: JwtAuthOptions): JWTVerifyGetKey {
  const fetchOption = options.jwksFetch === undefined ? {} : { [jose.customFetch]: options.jwksFetch };
  const jwks = jose.createRemoteJWKSet(new URL(options.jwksUrl as string), { timeoutDuration: 2000, ...fetchOption });
  return async (header, token) => {
    try {
      return await jwks(header, token);
    } catch (error) {
      // Fetch failures, timeouts, a non-200 answer (jose's generic error) or a body that is not a key set.
      const code = error instanceof jose.errors.JOSEError ? error.code : undefined;
      if (code === undefined || OUTAGE_CODES.has(code)) throw new KeySetUnavailable('the token key set cannot be fetched', { cause: error });
      throw error;
    }
  };
}

/**
 * `Authorization: Bearer <JWT>` whose `sub` equals the userId, verified with an HS256 secret or a JWKS (https only).
 * `exp` is required, and `aud` and `iss` are checked when configured.
 */
export function createJwtAuthenticator(options: JwtAuthOptions): ConnectAuthenticator {
  const { secret, jwksUrl, clockToleranceSeconds = 5, maxTokenAgeSeconds = 3600 } = options;
  if (secret === undefined && jwksUrl === undefined) throw new Error('jwt authentication needs a secret or a jwks url');
  if (jwksUrl !== undefined) assertHttpsJwksUrl(jwksUrl);
  const secretKey = secret === undefined ? undefined : new TextEncoder().encode(secret);
  const claims = {
    clockTolerance: clockToleranceSeconds,
    requiredClaims: ['exp', 'sub'],
    ...(options.audience === undefined ? {} : { audience: [...options.audience] }),
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
  };
  let jwks: JWTVerifyGetKey | undefined;
  return async ({ authorization, userId }) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const token = match?.[1];
    if (token === undefined) throw unauthorized('a bearer token is required');
    const jose = await loadJose();
    let payload: { sub?: string; exp?: number; iat?: number; rooms?: unknown };
    try {
      if (secretKey) {
        payload = (await jose.jwtVerify(token, secretKey, { ...claims, algorithms: ['HS256'] })).payload;
      } else {
        jwks ??= keySetResolver(jose, options);
        payload = (await jose.jwtVerify(token, jwks, claims)).payload;
      }
    } catch (error) {
      if (error instanceof KeySetUnavailable) throw new HttpError('AUTH_UNAVAILABLE', 'authentication is unavailable, retry later', { cause: error.cause });
      if (error instanceof jose.errors.JWTExpired) throw unauthorized('token expired');
      if (error instanceof jose.errors.JWTClaimValidationFailed) throw unauthorized(`token ${error.claim} claim is missing or not accepted`);
      if (error instanceof jose.errors.JOSEError) throw unauthorized('token is invalid');
      throw error;
    }
    const tooOld = tokenAgeProblem(payload, maxTokenAgeSeconds + clockToleranceSeconds);
    if (tooOld) throw unauthorized(tooOld);
    if (payload.sub !== userId) throw unauthorized('token is for another user');
    return roomsClaim(payload.rooms);
  };
}

/** v1.2: the `rooms` claim, a list of room names (a trailing `*` grants a prefix); carried in the session record. */
function roomsClaim(rooms: unknown): ConnectGrant {
  if (rooms === undefined) return {};
  if (!Array.isArray(rooms) || rooms.length > 1024 || !rooms.every((r) => typeof r === 'string' && r.length > 0 && r.length <= 129)) {
    throw unauthorized('token rooms claim must be a list of room names');
  }
  return { roomGrants: rooms as string[] };
}

/** Why a verified token lives too long for `maxSeconds`, or undefined. `exp` is present (a required claim). */
function tokenAgeProblem(payload: { exp?: number; iat?: number }, maxSeconds: number): string | undefined {
  const now = Date.now() / 1000;
  if (payload.iat !== undefined && now - payload.iat > maxSeconds) return 'token is older than the maximum token age';
  if ((payload.exp ?? now) - now > maxSeconds) return 'token expires later than the maximum token age allows';
  return undefined;
}

/** Fails at start, not on the first request, when authentication is on and jose cannot be loaded. */
export async function ensureJwtSupport(): Promise<void> {
  try {
    await loadJose();
  } catch (error) {
    joseModule = undefined;
    throw new Error('jwt authentication (MSG_AUTH_JWT_SECRET / MSG_AUTH_JWKS_URL) needs the "jose" package', { cause: error });
  }
}
