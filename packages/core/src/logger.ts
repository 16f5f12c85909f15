/**
 * The small logging surface that packages depend on. Processes back it with pino (`createPinoLogger`); tests may
 * pass `silentLogger`. Messages are static lowercase strings; values go in `fields`. Never put a listeningKey,
 * a JWT, SDP or ICE candidates in a field at info level.
 */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(fields: LogFields, message: string): void;
  info(fields: LogFields, message: string): void;
  warn(fields: LogFields, message: string): void;
  error(fields: LogFields, message: string): void;
  child(bindings: LogFields): Logger;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
