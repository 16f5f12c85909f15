export * from './wait-for.js';
export * from './free-port.js';
