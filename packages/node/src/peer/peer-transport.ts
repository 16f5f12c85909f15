import { UndiciPeerTransport, type UndiciPeerTransportOptions } from '@messaging-server/core';
import { PEER_LANES } from './peer-links.js';

/**
 * The node-to-node transport a node needs: one connection per delivery lane to each peer, so its lanes really run
 * side by side. The lane count is the node's own business; callers choose only the rest.
 */
export function createPeerTransport(options: Omit<UndiciPeerTransportOptions, 'connections'> = {}): UndiciPeerTransport {
  return new UndiciPeerTransport({ ...options, connections: PEER_LANES });
}
