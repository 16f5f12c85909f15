// The browser-safe part of the contract: codes, types, limits and the retry schedule. The ajv validators are a
// separate entry point, `@messaging-server/protocol/schemas`, so that the SDK never loads ajv.
export * from './codes.js';
export * from './types.js';
export * from './limits.js';
export * from './backoff.js';
export * from './ids.js';
