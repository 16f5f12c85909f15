export { createNode, nodeInternalLimits, nodePublicLimits, type NodeDeps, type RelayNode } from './node.js';
export { createInternalServer } from './internal-server.js';
export { createPublicServer, DEFAULT_PUBLIC_LIMITS, type PublicLimits } from './public-guard.js';
export { startNodeServer, type NodeServer } from './server.js';
export {
  CLUSTER_SECRET_HEADER,
  DELIVER_PATH,
  DRAIN_PATH,
  OUTCOMES_PATH,
  REPLACE_PATH,
  type DeliverRequest,
  type DeliverResponse,
  type DeliverResult,
  type ForwardedMessage,
  type OutcomeReport,
  PEER_LANES,
  createPeerTransport,
} from './peer/index.js';
