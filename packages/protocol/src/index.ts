export * from './codes.js';
export * from './types.js';
export * from './schemas.js';
export * from './backoff.js';
