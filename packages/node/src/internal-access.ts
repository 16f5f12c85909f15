import type { IncomingMessage } from 'node:http';
import {
  NODE_SIGNATURE_HEADER,
  NodeSignatureVerifier,
  type NodeIdentity,
  parseSignatureHeader,
  type SignatureClaim,
} from '@messaging-server/core';
import { CLUSTER_SECRET_HEADER } from './peer/index.js';
import { secretsEqual } from './secure-compare.js';

/**
 * Who may call an internal route, declared per route (internal-api.ts's table):
 * - `node`: only a registered node, by a request MACed with the key of its pair with this node (node-identity.ts). The cluster
 *   secret opens nothing here: its holder could otherwise make any user appear to send anything.
 * - `cluster`: the cluster secret, which gateways (replace) and msgctl (drain) hold. It never opens a `node` route.
 * Without a cluster secret (local runs and tests) every route is open, as before; deliveries still pass the sender check.
 */
export type RouteAccess = 'node' | 'cluster';

export type Admission =
  | { ok: true; claim?: SignatureClaim }
  | { ok: false; message: string };

export class InternalAccess {
  private readonly secrets: readonly string[];
  private readonly verifier: NodeSignatureVerifier;

  constructor(secrets: readonly (string | undefined)[], identity: NodeIdentity | undefined, keyOf: (nodeId: string) => string | undefined) {
    this.secrets = secrets.filter((s): s is string => s !== undefined && s !== '');
    this.verifier = new NodeSignatureVerifier(identity, keyOf);
  }

  /** True without a cluster secret: nothing is checked. */
  get open(): boolean {
    return this.secrets.length === 0;
  }

  /** What can be decided from the headers alone, so a refused body is never read. */
  admit(req: IncomingMessage, access: RouteAccess): Admission {
    if (this.open) return { ok: true };
    if (access === 'cluster') {
      const given = req.headers[CLUSTER_SECRET_HEADER];
      const ok = typeof given === 'string' && this.secrets.some((secret) => secretsEqual(given, secret));
      return ok ? { ok: true } : { ok: false, message: 'missing or wrong cluster secret' };
    }
    const claim = parseSignatureHeader(req.headers[NODE_SIGNATURE_HEADER]);
    const verdict = this.verifier.precheck(claim);
    return verdict.ok && claim ? { ok: true, claim } : { ok: false, message: verdict.ok ? 'no node signature' : verdict.reason };
  }

  /** For a `node` route once its body is read: the signature over method, path and body. Returns the signer's id. */
  confirm(claim: SignatureClaim, req: IncomingMessage, body: Buffer): { ok: true; nodeId: string } | { ok: false; message: string } {
    const verdict = this.verifier.verify(claim, req.method ?? '', req.url ?? '', body);
    return verdict.ok ? verdict : { ok: false, message: verdict.reason };
  }
}
