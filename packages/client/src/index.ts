export * from './errors.js';
export * from './emitter.js';
export * from './policy.js';
export * from './transport.js';
export * from './client.js';
export * from './rooms.js';
export * from './webrtc.js';
export * from './mesh.js';
