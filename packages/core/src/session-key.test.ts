import { expect } from 'chai';
import fc from 'fast-check';
import { USER_ID_PATTERN } from '@messaging-server/protocol';
import { MAX_KEY_PREFIX_BYTES, MEMCACHED_MAX_KEY_BYTES, assertValidKeyPrefix, encodeUserId, sessionKey } from './session-key.js';
import { MAX_SESSION_TTL_SECONDS, normalizeTtlSeconds } from './session-ttl.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~@-';
const userId = fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 1, maxLength: 128 });
const prefix = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 64 });

/** What memcached accepts as a key: ≤ 250 bytes, no spaces or control characters. */
function isValidMemcachedKey(key: string): boolean {
  return Buffer.byteLength(key) <= MEMCACHED_MAX_KEY_BYTES && key.length > 0 && !/[\x00-\x20\x7f]/.test(key);
}

function wellFormed(text: string): boolean {
  try {
    encodeURIComponent(text);
    return true;
  } catch {
    return false;
  }
}

describe('session keys', () => {
  it('is <prefix>session:<userId> for a contract userId', () => {
    expect(sessionKey('ms:', 'alice')).to.equal('ms:session:alice');
    expect(sessionKey('ms:', 'a.b_c~d@e-F9')).to.equal('ms:session:a.b_c~d@e-F9');
  });

  it('the test alphabet is exactly the contract alphabet', () => {
    const pattern = new RegExp(USER_ID_PATTERN);
    for (let code = 0; code < 0x250; code++) {
      const char = String.fromCodePoint(code);
      expect(pattern.test(char), char).to.equal(ALPHABET.includes(char));
    }
  });

  it('maps every allowed userId under every prefix up to 64 chars to a valid memcached key (property)', () => {
    fc.assert(
      fc.property(prefix, userId, (p, id) => isValidMemcachedKey(sessionKey(p, id)) && sessionKey(p, id) === `${p}session:${id}`),
      { numRuns: 2000 },
    );
  });

  it('maps distinct allowed userIds to distinct keys (property)', () => {
    fc.assert(
      fc.property(prefix, userId, userId, (p, a, b) => a === b || sessionKey(p, a) !== sessionKey(p, b)),
      { numRuns: 2000 },
    );
  });

  it('stays total and injective for inputs outside the contract', () => {
    const anything = fc.string({ unit: 'binary', maxLength: 300 });
    fc.assert(
      fc.property(anything, anything, (a, b) => {
        const ka = sessionKey('ms:', a);
        if (!isValidMemcachedKey(ka)) return false;
        // Lone surrogates are not text; only well-formed strings are promised distinct keys.
        if (a === b || !wellFormed(a) || !wellFormed(b)) return true;
        return ka !== sessionKey('ms:', b);
      }),
      { numRuns: 2000 },
    );
    expect(encodeUserId('')).to.equal('%');
    expect(encodeUserId('a b')).to.equal('a%20b');
    expect(encodeUserId('%20')).to.equal('%2520');
    expect(encodeUserId('ü')).to.equal('%C3%BC');
    expect(encodeUserId('x'.repeat(129))).to.match(/^#[0-9a-f]{64}$/);
    expect(isValidMemcachedKey(sessionKey('p'.repeat(MAX_KEY_PREFIX_BYTES), 'y'.repeat(128)))).to.equal(true);
    expect(isValidMemcachedKey(sessionKey('p'.repeat(MAX_KEY_PREFIX_BYTES), '\u{1F600}'.repeat(200)))).to.equal(true);
  });

  it('refuses prefixes that cannot start a memcached key', () => {
    for (const bad of ['has space', 'tab\t', 'nl\n', 'ü', 'x'.repeat(MAX_KEY_PREFIX_BYTES + 1)]) {
      expect(() => assertValidKeyPrefix(bad), JSON.stringify(bad)).to.throw(TypeError);
    }
    for (const good of ['', 'ms:', 'ssc-123-4-abcdef:', 'x'.repeat(MAX_KEY_PREFIX_BYTES)]) {
      expect(() => assertValidKeyPrefix(good), good).to.not.throw();
    }
  });
});

describe('session ttl', () => {
  it('rounds up to whole seconds and caps at 30 days so memcached never reads an absolute time', () => {
    expect(normalizeTtlSeconds(1)).to.equal(1);
    expect(normalizeTtlSeconds(0.01)).to.equal(1);
    expect(normalizeTtlSeconds(29.5)).to.equal(30);
    expect(normalizeTtlSeconds(MAX_SESSION_TTL_SECONDS)).to.equal(MAX_SESSION_TTL_SECONDS);
    expect(normalizeTtlSeconds(MAX_SESSION_TTL_SECONDS + 1)).to.equal(MAX_SESSION_TTL_SECONDS);
    expect(normalizeTtlSeconds(Number.MAX_SAFE_INTEGER)).to.equal(MAX_SESSION_TTL_SECONDS);
  });

  it('rejects ttls that memcached would read as "forever" or that make no sense', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => normalizeTtlSeconds(bad), String(bad)).to.throw(RangeError);
    }
  });
});
