/** 32 bytes: what `openssl rand -hex 32` or `openssl rand -base64 32` gives, and HS256's own key size. */
export const MIN_SECRET_BITS = 256;

/** Character sets a generated secret is drawn from, smallest first: the first that holds every character wins. */
const ALPHABETS: readonly [RegExp, number][] = [
  [/^[0-9]+$/, 10],
  [/^[0-9a-f]+$/, 16],
  [/^[0-9A-F]+$/, 16],
  [/^[a-z]+$/, 26],
  [/^[A-Z]+$/, 26],
  [/^[0-9a-z]+$/, 36],
  [/^[0-9A-Z]+$/, 36],
  [/^[A-Za-z]+$/, 52],
  [/^[0-9A-Za-z]+$/, 62],
  [/^[0-9A-Za-z+/]+$/, 64],
  [/^[0-9A-Za-z_-]+$/, 64],
];
const PRINTABLE = 95;

/** The smallest period p < length / 2 at which the text repeats itself, if any ("abcabcabc…" → 3). */
function period(text: string): number | undefined {
  for (let p = 1; p <= text.length / 2; p++) {
    let repeats = true;
    for (let i = p; i < text.length && repeats; i++) repeats = text[i] === text[i - p];
    if (repeats) return p;
  }
  return undefined;
}

/**
 * An upper estimate of a secret's entropy in bits, as if each character were drawn at random from the smallest usual
 * alphabet that holds them all (hex, base64, …; any other character counts as printable ASCII). It cannot tell a
 * random string from a chosen one that looks random, but it refuses what is weak on its face: short, a small alphabet,
 * a repeated pattern (counted as one period), or far fewer distinct characters than a random string would show.
 * Base64 padding adds nothing.
 */
export function estimatedSecretBits(secret: string): number {
  const chars = [...secret.replace(/=+$/, '')];
  if (chars.length === 0) return 0;
  const text = chars.join('');
  const alphabet = ALPHABETS.find(([pattern]) => pattern.test(text))?.[1] ?? PRINTABLE;
  const repeatsEvery = period(text);
  const length = repeatsEvery ?? chars.length;
  // A random string of n characters over A shows about A·(1 − (1 − 1/A)^n) distinct ones; fewer than half is no draw.
  const expectedDistinct = alphabet * (1 - (1 - 1 / alphabet) ** chars.length);
  const distinct = new Set(chars).size;
  if (distinct < expectedDistinct / 2) return length * Math.log2(Math.max(distinct, 1));
  return length * Math.log2(alphabet);
}

/**
 * Each shared secret that is set must carry MIN_SECRET_BITS: an HS256 key of one character came back from a user's
 * own token in 76 tries, and the cluster and TURN secrets fall to the same offline guessing. The value is never named.
 */
export function weakSecrets(values: Record<string, unknown>, why: string): string[] {
  const secrets: [string, string][] = [
    ['clusterSecret', 'MSG_CLUSTER_SECRET'],
    ['clusterSecretPrevious', 'MSG_CLUSTER_SECRET_PREVIOUS'],
    ['authJwtSecret', 'MSG_AUTH_JWT_SECRET'],
    ['turnSecret', 'MSG_TURN_SECRET'],
  ];
  return secrets.flatMap(([key, env]) => {
    const value = values[key];
    if (typeof value !== 'string') return [];
    const bits = Math.floor(estimatedSecretBits(value));
    if (bits >= MIN_SECRET_BITS) return [];
    return [`${env} is too weak ${why}: about ${String(bits)} bits of entropy, at least ${String(MIN_SECRET_BITS)} needed (32 random bytes, e.g. openssl rand -base64 32)`];
  });
}
