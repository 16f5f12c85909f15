import type { NodeConfig } from '@messaging-server/core';
import type { SessionLimits } from './client-session.js';
import { transportFrameLimit } from './sockjs-endpoint.js';

/** Each connection's limits, from the node's configuration. */
export function sessionLimits(config: NodeConfig): SessionLimits {
  return {
    rateMessagesPerSecond: config.rateMessagesPerSecond,
    rateBurst: config.rateBurst,
    rateBytesPerSecond: config.rateBytesPerSecond,
    bytesBurst: Math.max(config.rateBytesBurst, config.maxMessageBytes),
    // Never below one maximum-size frame, or such a message could never be delivered.
    maxBufferedBytes: Math.max(config.maxBufferedBytes, transportFrameLimit(config.maxMessageBytes)),
  };
}
