import { createHash, createPublicKey, generateKeyPairSync, randomBytes, sign, verify, type KeyObject } from 'node:crypto';

/**
 * Each node's own identity on the internal port (docs/decisions.md, "Node identity"). A node makes an Ed25519 key pair
 * when its process starts, publishes the public half in its `nodes/<id>` registration (`identityKey`), and signs every
 * node-to-node request with the private half, which never leaves the process. A receiver checks the signature with
 * the key the registry shows for that node: one stolen cluster secret no longer lets anyone speak as a node, and a
 * key dies with its process (a restart rotates it).
 *
 * Header `x-node-signature: <nodeId>.<unix ms>.<nonce>.<signature>`; the signature covers the method, the path, the
 * same three fields and the SHA-256 of the body, so a captured header is worth nothing for another body or route,
 * nothing after SIGNATURE_WINDOW_MS, and (the nonce) nothing a second time within it. Signing is per HTTP request:
 * a delivery batch of many messages costs one signature and one verification.
 */
export const NODE_SIGNATURE_HEADER = 'x-node-signature';
/** How far a signature's time may be from the receiver's clock, either way. */
export const SIGNATURE_WINDOW_MS = 30_000;

/** Adds headers to one outgoing request; the body is the exact text that is sent. */
export interface RequestSigner {
  headers(method: string, path: string, body: string): Record<string, string>;
}

function signedText(method: string, path: string, nodeId: string, at: string, nonce: string, body: Buffer | string): Buffer {
  const digest = createHash('sha256').update(body).digest('hex');
  return Buffer.from(`msg-node-v1\n${method}\n${path}\n${nodeId}\n${at}\n${nonce}\n${digest}`);
}

/** A node's key pair, made once per process. */
export class NodeIdentity implements RequestSigner {
  /** The public key as published in the registry: base64 of its SPKI DER form. */
  readonly publicKey: string;
  private readonly privateKey: KeyObject;
  private counter = 0;
  private readonly prefix = randomBytes(6).toString('base64url');

  constructor(readonly nodeId: string) {
    const pair = generateKeyPairSync('ed25519');
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  }

  headers(method: string, path: string, body: string): Record<string, string> {
    const at = String(Date.now());
    // Unique per process (random prefix) and per request (counter): what the receiver's replay check keys on.
    const nonce = `${this.prefix}${(this.counter++).toString(36)}`;
    const signature = sign(null, signedText(method, path, this.nodeId, at, nonce, body), this.privateKey).toString('base64url');
    return { [NODE_SIGNATURE_HEADER]: `${this.nodeId}.${at}.${nonce}.${signature}` };
  }
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
  if (nodeId === '' || !/^\d{1,15}$/.test(at) || !/^[A-Za-z0-9_-]{1,64}$/.test(nonce) || !/^[A-Za-z0-9_-]{86}$/.test(signature)) {
    return undefined;
  }
  return { nodeId, at, nonce, signature: Buffer.from(signature, 'base64url') };
}

export type VerifyVerdict = { ok: true; nodeId: string } | { ok: false; reason: string };

/**
 * Checks signed requests against the registry's keys. Parsed keys are cached by their published text (a node's key
 * changes only when its process does); seen nonces are remembered for the window, bounded in number.
 */
export class NodeSignatureVerifier {
  private readonly keys = new Map<string, KeyObject>();
  private readonly seen = new Map<string, number>();

  constructor(
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
    const key = this.key(this.keyOf(claim.nodeId) as string);
    if (!key) return { ok: false, reason: 'signing node published an unusable identity key' };
    const text = signedText(method, path, claim.nodeId, claim.at, claim.nonce, body);
    if (!verify(null, text, key, claim.signature)) return { ok: false, reason: 'node signature does not verify' };
    const seenKey = `${claim.nodeId}.${claim.nonce}`;
    if (this.seen.has(seenKey)) return { ok: false, reason: 'node signature replayed' };
    this.remember(seenKey, now);
    return { ok: true, nodeId: claim.nodeId };
  }

  private key(published: string): KeyObject | undefined {
    let key = this.keys.get(published);
    if (key) return key;
    try {
      key = createPublicKey({ key: Buffer.from(published, 'base64'), format: 'der', type: 'spki' });
    } catch {
      return undefined;
    }
    if (key.asymmetricKeyType !== 'ed25519') return undefined;
    if (this.keys.size >= 10_000) this.keys.clear();
    this.keys.set(published, key);
    return key;
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
