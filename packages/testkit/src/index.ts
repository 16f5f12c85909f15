export * from './wait-for.js';
export * from './free-port.js';
export * from './unique.js';
export * from './memcached-server.js';
export * from './session-store-contract.js';
export * from './etcd-server.js';
export * from './registry-contract.js';
