import type { JWTVerifyGetKey } from 'jose';
import { HttpError } from './http-error.js';

/**
 * The authentication seam of POST /connect. It runs after the body is parsed (it needs the userId) and before a
 * node is allocated. It resolves to let the request through and throws an HttpError (401 UNAUTHORIZED) to stop it.
 */
export type ConnectAuthenticator = (request: { authorization: string | undefined; userId: string }) => Promise<void>;

export interface JwtAuthOptions {
  /** HS256 shared secret (`MSG_AUTH_JWT_SECRET`). */
  secret?: string;
  /** JWKS URL (`MSG_AUTH_JWKS_URL`); keys are fetched and cached by jose. */
  jwksUrl?: string;
  /** Seconds of clock skew tolerated on exp/nbf. */
  clockToleranceSeconds?: number;
}

const unauthorized = (message: string): HttpError =>
  new HttpError('UNAUTHORIZED', message, { headers: { 'www-authenticate': 'Bearer' } });

type Jose = typeof import('jose');
let joseModule: Promise<Jose> | undefined;
// Loaded only when authentication is on, so a deployment without it does not need the package.
const loadJose = (): Promise<Jose> => (joseModule ??= import('jose'));

/** `Authorization: Bearer <JWT>` whose `sub` equals the userId, verified with an HS256 secret or a JWKS. */
export function createJwtAuthenticator(options: JwtAuthOptions): ConnectAuthenticator {
  const { secret, jwksUrl, clockToleranceSeconds = 5 } = options;
  if (secret === undefined && jwksUrl === undefined) throw new Error('jwt authentication needs a secret or a jwks url');
  const secretKey = secret === undefined ? undefined : new TextEncoder().encode(secret);
  const jwksUrlObject = jwksUrl === undefined ? undefined : new URL(jwksUrl);
  let jwks: JWTVerifyGetKey | undefined;
  return async ({ authorization, userId }) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
    const token = match?.[1];
    if (token === undefined) throw unauthorized('a bearer token is required');
    const jose = await loadJose();
    let subject: string | undefined;
    try {
      const verifyOptions = { clockTolerance: clockToleranceSeconds };
      if (secretKey) {
        subject = (await jose.jwtVerify(token, secretKey, { ...verifyOptions, algorithms: ['HS256'] })).payload.sub;
      } else {
        jwks ??= jose.createRemoteJWKSet(jwksUrlObject as URL, { timeoutDuration: 2000 });
        subject = (await jose.jwtVerify(token, jwks, verifyOptions)).payload.sub;
      }
    } catch (error) {
      if (error instanceof jose.errors.JWTExpired) throw unauthorized('token expired');
      // An unreachable key set is our failure, not the caller's: a 500 with the details in the log.
      if (error instanceof jose.errors.JWKSTimeout) throw error;
      if (error instanceof jose.errors.JOSEError) throw unauthorized('token is invalid');
      throw error;
    }
    if (subject !== userId) throw unauthorized('token is for another user');
  };
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
