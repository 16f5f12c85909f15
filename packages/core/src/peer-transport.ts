/**
 * Node-to-node requests over the internal API (undici in production). One keep-alive connection pool per peer.
 *
 * `post` resolves with the peer's parsed JSON answer for a 2xx. It rejects with BackendError:
 * - `PEER_UNREACHABLE`: connection refused/reset, DNS failure;
 * - `PEER_TIMEOUT`: no complete answer within `timeoutMs` (default 1500, so delivery errors come within 2 s);
 * - `PEER_REJECTED`: a non-2xx answer (the error carries `status`), or an answer longer than the transport reads (a
 *   few MiB; its connection is dropped, no more of it is read).
 *
 * Ordering: none is promised across requests. A pool may hold several connections per peer (the node's router uses
 * one per delivery lane), and requests in flight at once may arrive in any order. Callers that need order keep at
 * most one request in flight per ordered stream, as the router's lanes do (one request in flight per lane, a
 * recipient always on the same lane).
 */
export interface PeerTransport {
  post<T = unknown>(peerAddress: string, path: string, body: unknown, options?: { timeoutMs?: number }): Promise<T>;
  /** Drops the pool for a peer that left the registry. */
  forget(peerAddress: string): void;
  close(): Promise<void>;
}
