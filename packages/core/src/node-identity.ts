import { createHash, createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * Each node's own identity on the internal port (docs/decisions.md, "Node identity"). A node makes an X25519 key pair
 * when its process starts and publishes the public half in its `nodes/<id>` registration (`identityKey`); the private
 * half never leaves the process. Two nodes agree on a key of their own pair (X25519, then HKDF), and every request
 * between them carries an HMAC-SHA256 under that key: only the two of them can make it, so one stolen cluster secret
 * no longer lets anyone speak as a node, a node can speak only as itself, and a key dies with its process (a restart
 * rotates it). A MAC costs a few microseconds where an Ed25519 signature and its check cost ~175 µs per request
 * (measured: 1.30 × the CPU per forwarded message); the pair's key is derived once and cached.
 *
 * Header `x-node-signature: <nodeId>.<unix ms>.<nonce>.<mac>`; the MAC covers the method, the path, the same three
 * fields and the SHA-256 of the body, so a captured header is worth nothing for another body or route, nothing after
 * SIGNATURE_WINDOW_MS, and (the nonce) nothing a second time within it.
 */
export const NODE_SIGNATURE_HEADER = 'x-node-signature';
/** How far a signature's time may be from the receiver's clock, either way. */
export const SIGNATURE_WINDOW_MS = 30_000;

/** Adds headers to one outgoing request; the body is the exact text that is sent, to the peer at `peerAddress`. */
export interface RequestSigner {
  headers(method: string, path: string, body: string, peerAddress: string): Record<string, string>;
}

/** The identity key the registry shows for the node at an internal address (its `internalAddress`). */
export type PeerKeyLookup = (internalAddress: string) => string | undefined;

function signedText(method: string, path: string, nodeId: string, at: string, nonce: string, body: Buffer | string): string {
  const digest = createHash('sha256').update(body).digest('hex');
  return `msg-node-v2\n${method}\n${path}\n${nodeId}\n${at}\n${nonce}\n${digest}`;
}

/** A node's key pair, made once per process, and the keys it shares with each peer. */
export class NodeIdentity implements RequestSigner {
  /** The public key as published in the registry: base64 of its SPKI DER form. */
  readonly publicKey: string;
  private readonly privateKey: KeyObject;
  /** Pair keys by the peer's published key: a restarted peer publishes a new one, so nothing stale is ever used. */
  private readonly pairKeys = new Map<string, Buffer | null>();
  private peerKeyAt: PeerKeyLookup = () => undefined;
  private counter = 0;
  private readonly prefix = randomBytes(6).toString('base64url');

  constructor(readonly nodeId: string) {
    const pair = generateKeyPairSync('x25519');
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  }

  /** Where this identity finds its peers' keys (the node's registry view); until told, it can sign for no one. */
  knowPeers(lookup: PeerKeyLookup): void {
    this.peerKeyAt = lookup;
  }

  headers(method: string, path: string, body: string, peerAddress: string): Record<string, string> {
    const published = this.peerKeyAt(peerAddress);
    const key = published === undefined ? undefined : this.pairKey(published);
    // A peer this node does not know gets no signature, and refuses the request: never a guess at its key.
    if (!key) return {};
    const at = String(Date.now());
    // Unique per process (random prefix) and per request (counter): what the receiver's replay check keys on.
    const nonce = `${this.prefix}${(this.counter++).toString(36)}`;
    return { [NODE_SIGNATURE_HEADER]: `${this.nodeId}.${at}.${nonce}.${mac(key, signedText(method, path, this.nodeId, at, nonce, body))}` };
  }

  /** The key this node shares with the node that published `published`, or undefined when that is no X25519 key. */
  pairKey(published: string): Buffer | undefined {
    const known = this.pairKeys.get(published);
    if (known !== undefined) return known ?? undefined;
    let key: Buffer | null = null;
    try {
      const publicKey = createPublicKey({ key: Buffer.from(published, 'base64'), format: 'der', type: 'spki' });
      if (publicKey.asymmetricKeyType === 'x25519') {
        const shared = diffieHellman({ privateKey: this.privateKey, publicKey });
        key = Buffer.from(hkdfSync('sha256', shared, Buffer.alloc(0), 'msg-node-v2 pair key', 32));
      }
    } catch {
      key = null;
    }
    if (this.pairKeys.size >= 10_000) this.pairKeys.clear();
    this.pairKeys.set(published, key);
    return key ?? undefined;
  }
}

function mac(key: Buffer, text: string): string {
  return createHmac('sha256', key).update(text).digest('base64url');
}

export interface SignatureClaim {
  nodeId: string;
  at: string;
  nonce: string;
  signature: Buffer;
}

/** The parts of a signature header, or undefined when it is not one. Node ids may hold dots: the rest may not. */
export function parseSignatureHeader(value: unknown): SignatureClaim | undefined {
  if (typeof value !== 'string' || value.length > 1024) return undefined;
  const parts = value.split('.');
  if (parts.length < 4) return undefined;
  const [signature, nonce, at] = [parts.pop() as string, parts.pop() as string, parts.pop() as string];
  const nodeId = parts.join('.');
  if (nodeId === '' || !/^\d{1,15}$/.test(at) || !/^[A-Za-z0-9_-]{1,64}$/.test(nonce) || !/^[A-Za-z0-9_-]{43}$/.test(signature)) {
    return undefined;
  }
  return { nodeId, at, nonce, signature: Buffer.from(signature, 'base64url') };
}

export type VerifyVerdict = { ok: true; nodeId: string } | { ok: false; reason: string };

/**
 * Checks signed requests against the registry's keys, with the pair key this node shares with the signer (cached by
 * the signer's published key, which changes only when its process does); seen nonces are remembered for the window,
 * bounded in number.
 */
export class NodeSignatureVerifier {
  private readonly seen = new Map<string, number>();

  constructor(
    /** This node's own identity; without one, no request verifies. */
    private readonly identity: NodeIdentity | undefined,
    /** The identity key the registry shows for a node, if it is registered with one. */
    private readonly keyOf: (nodeId: string) => string | undefined,
    private readonly maxSeen = 200_000,
  ) {}

  /** What can be checked before the body is read: the header's form, its time, and that the node is known. */
  precheck(claim: SignatureClaim | undefined, now = Date.now()): VerifyVerdict {
    if (!claim) return { ok: false, reason: 'missing or malformed node signature' };
    if (Math.abs(now - Number(claim.at)) > SIGNATURE_WINDOW_MS) return { ok: false, reason: 'node signature outside its time window' };
    if (this.keyOf(claim.nodeId) === undefined) return { ok: false, reason: 'signing node is not registered with an identity key' };
    return { ok: true, nodeId: claim.nodeId };
  }

  verify(claim: SignatureClaim, method: string, path: string, body: Buffer, now = Date.now()): VerifyVerdict {
    const early = this.precheck(claim, now);
    if (!early.ok) return early;
    const key = this.identity?.pairKey(this.keyOf(claim.nodeId) as string);
    if (!key) return { ok: false, reason: 'signing node published an unusable identity key, or this node has none' };
    const expected = Buffer.from(mac(key, signedText(method, path, claim.nodeId, claim.at, claim.nonce, body)), 'base64url');
    if (!timingSafeEqual(expected, claim.signature)) return { ok: false, reason: 'node signature does not verify' };
    const seenKey = `${claim.nodeId}.${claim.nonce}`;
    if (this.seen.has(seenKey)) return { ok: false, reason: 'node signature replayed' };
    this.remember(seenKey, now);
    return { ok: true, nodeId: claim.nodeId };
  }

  private remember(seenKey: string, now: number): void {
    this.seen.set(seenKey, now);
    if (this.seen.size <= this.maxSeen) return;
    // Maps keep insertion order: the oldest go first, and those past the window can never verify again anyway.
    for (const [k, at] of this.seen) {
      if (this.seen.size <= this.maxSeen / 2 && now - at <= SIGNATURE_WINDOW_MS) break;
      this.seen.delete(k);
    }
  }
}
