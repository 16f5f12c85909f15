export * from './gateway.js';
export * from './node-view.js';
export * from './session-allocator.js';
export * from './connect-body.js';
export * from './auth.js';
export * from './metrics.js';
export * from './readiness.js';
export { HttpError, errorBody, errorMiddleware } from './http-error.js';
