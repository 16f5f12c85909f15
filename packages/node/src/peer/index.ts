/**
 * Everything node-to-node, in one room. Outbound: the router forwards through PeerDelivery (PeerLinks: lanes per
 * peer) and hears back through ForwardAnswers; outcome reports leave through OutcomeLinks. Inbound: the internal port
 * hands admitted deliveries and reports to PeerRoutes, which reach the node only through LocalDelivery. The rest of
 * the node imports from here; the files behind it are this module's own business.
 */
export type { ForwardAnswers, LocalDelivery, OutcomeSender, PeerAnswer, PeerDelivery } from './ports.js';
export { OutcomeLinks } from './outcome-links.js';
export { PEER_LANES, PeerLinks, type PeerLinksDeps } from './peer-links.js';
export { createPeerRoutes, type PeerRoutes } from './peer-routes.js';
export { createPeerTransport } from './peer-transport.js';
export { peerKeyLookup } from './peer-keys.js';
export * from './internal-wire.js';
