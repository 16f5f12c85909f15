export * from './errors.js';
export * from './logger.js';
export * from './registry.js';
export * from './session-store.js';
export * from './peer-transport.js';
export * from './config.js';
