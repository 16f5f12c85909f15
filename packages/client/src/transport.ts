/**
 * The slice of the SockJS client API the SDK uses. `sockjs-client` satisfies it; tests inject a fake. Handlers are
 * assigned before anything else happens, because the first frame can arrive in the same tick as `open`.
 */
export interface SockJSLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export interface SockJSOptions {
  transports?: string | string[];
  timeout?: number;
}

export type SockJSConstructor = new (url: string, reserved?: unknown, options?: SockJSOptions) => SockJSLike;

/** Timer functions, injectable so tests can drive time by hand. */
export interface Clock {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  setTimeout: (callback, ms) => globalThis.setTimeout(callback, ms),
  clearTimeout: (handle) => globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
};

/** Structurally compatible with `@messaging-server/core`'s Logger, so a pino-backed logger can be passed as is. */
export interface ClientLogger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

export const silentClientLogger: ClientLogger = { debug() {}, info() {}, warn() {}, error() {} };
