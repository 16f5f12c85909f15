import { randomFillSync } from 'node:crypto';

/** 64 KiB of CSPRNG bytes at a time: one refill serves ~2,000 listening keys or ~5,000 connection ids. */
const POOL_BYTES = 64 * 1024;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

/**
 * `bytes` random bytes from the system CSPRNG, base64url. Same source as crypto.randomBytes, drawn from a pool:
 * a randomBytes call per connect costs ~30 µs here (a syscall-backed fill each time) and showed in the connect
 * profile of both the gateway (listening keys) and the node (connection ids). Each byte is handed out once.
 * crypto.randomUUID pools the same way.
 */
export function randomToken(bytes: number): string {
  if (bytes > POOL_BYTES) throw new RangeError(`randomToken: at most ${String(POOL_BYTES)} bytes`);
  if (offset + bytes > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString('base64url', offset, offset + bytes);
  // Handed-out bytes are overwritten, so no copy of a secret stays in the pool.
  pool.fill(0, offset, offset + bytes);
  offset += bytes;
  return token;
}
