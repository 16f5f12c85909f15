import { createHash } from 'node:crypto';

/** memcached's limit on key length, in bytes. */
export const MEMCACHED_MAX_KEY_BYTES = 250;
/**
 * Longest accepted key prefix. With it, every contract userId (≤ 128 safe characters) fits verbatim:
 * 100 + "session:" + 128 = 236 bytes.
 */
export const MAX_KEY_PREFIX_BYTES = 100;

const SAFE_USER_ID_CHAR = /[A-Za-z0-9._~@-]/;
// Printable ASCII without space: what memcached's text protocol and every client accept in a key.
const SAFE_PREFIX = /^[\x21-\x7e]*$/;

/** Throws a TypeError when `prefix` cannot start a valid memcached key. Stores call this once, at construction. */
export function assertValidKeyPrefix(prefix: string): void {
  if (!SAFE_PREFIX.test(prefix) || Buffer.byteLength(prefix) > MAX_KEY_PREFIX_BYTES) {
    throw new TypeError(
      `session key prefix must be at most ${String(MAX_KEY_PREFIX_BYTES)} printable ASCII characters without spaces`,
    );
  }
}

/**
 * The userId part of a session key. Contract userIds (`^[A-Za-z0-9._~@-]{1,128}$`) pass through unchanged, so an
 * operator can find `ms:session:alice` by eye. Anything else is percent-encoded byte by byte (`%` is not a userId
 * character, so the two forms never meet); an encoding too long for memcached becomes `#` + SHA-256, also a form
 * no other input produces. The function is total: callers that skipped validation still get a safe key.
 */
export function encodeUserId(userId: string): string {
  let encoded = '';
  for (const char of userId) {
    if (SAFE_USER_ID_CHAR.test(char)) {
      encoded += char;
    } else {
      for (const byte of Buffer.from(char, 'utf8')) encoded += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  if (encoded.length === 0) return '%';
  if (encoded.length > 128) return `#${createHash('sha256').update(userId, 'utf8').digest('hex')}`;
  return encoded;
}

/** `<prefix>session:<encoded userId>`: at most 236 bytes of printable ASCII for any prefix that passes the check. */
export function sessionKey(prefix: string, userId: string): string {
  return `${prefix}session:${encodeUserId(userId)}`;
}
