// The one constant-time compare lives in core, where the session stores match keys too.
export { secretsEqual } from '@messaging-server/core';
