/**
 * The node's internal API paths that other processes call (gateways and msgctl); node-to-node paths stay with the
 * node. Requests carry `x-cluster-secret` when the cluster has one.
 * - POST REPLACE_PATH `{userId, listeningKey}`: a /connect replaced this session; close the connection that holds
 *   that (old) key with 4503.
 * - POST DRAIN_PATH: drain exactly as on SIGTERM.
 */
export const REPLACE_PATH = '/internal/v1/replace';
export const DRAIN_PATH = '/internal/v1/drain';
