import { pino, type Logger as Pino } from 'pino';
import type { LogLevel } from './config.js';
import type { LogFields, Logger } from './logger.js';

/**
 * Field paths whose values never reach a log line, at any level: session keys, tokens, credentials and the cluster
 * secret, at the top level, one level down (`session.listeningKey`), and in request headers.
 */
export const REDACTED_LOG_PATHS: readonly string[] = [
  'listeningKey',
  '*.listeningKey',
  'token',
  '*.token',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'headers.cookie',
  'req.headers.cookie',
  'headers["x-cluster-secret"]',
  'req.headers["x-cluster-secret"]',
  'clusterSecret',
  '*.clusterSecret',
  'authJwtSecret',
  '*.authJwtSecret',
  'password',
  '*.password',
];

export const REDACTED = '[redacted]';

export interface PinoLoggerOptions {
  level: LogLevel;
  /** Logged as `name` on every line, e.g. `gateway` or `node`. */
  name?: string;
  /** Fields on every line, e.g. `{ nodeId }`. */
  bindings?: LogFields;
  /** A file descriptor, a file path, or a stream with `write(line)`. Default: stdout, written asynchronously. */
  destination?: number | string | { write(line: string): unknown };
}

/** The core Logger backed by pino: JSON lines with ISO timestamps, `err` fields serialized, secrets redacted. */
export function createPinoLogger(options: PinoLoggerOptions): Logger {
  const instance = pino(
    {
      level: options.level,
      ...(options.name === undefined ? {} : { name: options.name }),
      redact: { paths: [...REDACTED_LOG_PATHS], censor: REDACTED },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
    },
    destinationOf(options.destination),
  );
  return wrap(options.bindings ? instance.child(options.bindings) : instance);
}

function destinationOf(destination: PinoLoggerOptions['destination']) {
  // Asynchronous stdout: a line per /connect must not cost a blocking write on the hot path. Lines written while
  // one write is in flight leave together; pino flushes what is left when the process exits. Only a SIGKILL can
  // lose the last lines, and a crash report never depended on them.
  if (destination === undefined) return pino.destination({ dest: 1, sync: false });
  if (typeof destination === 'number') return pino.destination(destination);
  if (typeof destination === 'string') return pino.destination({ dest: destination, mkdir: true });
  return { write: (line: string) => void destination.write(line) };
}

function wrap(instance: Pino): Logger {
  return {
    debug: (fields, message) => instance.debug(fields, message),
    info: (fields, message) => instance.info(fields, message),
    warn: (fields, message) => instance.warn(fields, message),
    error: (fields, message) => instance.error(fields, message),
    child: (bindings) => wrap(instance.child(bindings)),
  };
}
