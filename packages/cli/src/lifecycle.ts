import { ConfigError, isBackendError } from '@messaging-server/core';
import { UsageError } from './flags.js';

/** Exit codes of both commands: 0 ok, 1 runtime failure or not found, 2 usage, 78 configuration (EX_CONFIG). */
export const EXIT = { ok: 0, failure: 1, usage: 2, config: 78 } as const;

/** One line an operator can act on, for any error that stops a process from starting. */
export function describeStartError(error: unknown): { line: string; exitCode: number } {
  if (error instanceof ConfigError) return { line: error.message, exitCode: EXIT.config };
  if (error instanceof UsageError) return { line: error.message, exitCode: EXIT.usage };
  if (isBackendError(error, 'ALREADY_REGISTERED')) return { line: error.message, exitCode: EXIT.failure };
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE' || code === 'EACCES') {
    const { address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
    return { line: `cannot listen on ${String(address)}:${String(port)}: ${code}`, exitCode: EXIT.failure };
  }
  return { line: error instanceof Error ? error.message : String(error), exitCode: EXIT.failure };
}

export function failAndExit(program: string, error: unknown): never {
  const { line, exitCode } = describeStartError(error);
  process.stderr.write(`${program}: ${line}\n`);
  process.exit(exitCode);
}

/** A repeat of the first signal at least this long after it is a person insisting (Ctrl-C again): exit at once. */
export const FORCE_EXIT_AFTER_MS = 1000;

export interface ShutdownHandlerOptions {
  stop: (signal: NodeJS.Signals) => Promise<void>;
  onFailure: (error: unknown) => void;
  exit: (code: number) => void;
  now?: () => number;
}

/**
 * The signal handler behind `onShutdownSignal`: the first SIGTERM/SIGINT runs `stop` once and exits with its
 * result. Only the same signal again, `FORCE_EXIT_AFTER_MS` or more later, exits at once (code 1), so an operator is
 * never stuck behind a drain. Any other repeat is the same request delivered twice, and is ignored: a terminal's
 * Ctrl-C reaches every process of the foreground group, and a supervisor (`make run`'s cluster manager, npm/npx)
 * then forwards its own signal on top, within milliseconds or as a different signal.
 */
export function shutdownSignalHandler(options: ShutdownHandlerOptions): (signal: NodeJS.Signals) => void {
  const now = options.now ?? Date.now;
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  return (signal) => {
    if (first) {
      if (signal === first.signal && now() - first.at >= FORCE_EXIT_AFTER_MS) options.exit(EXIT.failure);
      return;
    }
    first = { signal, at: now() };
    options.stop(signal).then(
      () => options.exit(EXIT.ok),
      (error: unknown) => {
        options.onFailure(error);
        options.exit(EXIT.failure);
      },
    );
  };
}

/** Installs `shutdownSignalHandler` for SIGTERM and SIGINT on this process. */
export function onShutdownSignal(stop: (signal: NodeJS.Signals) => Promise<void>, onFailure: (error: unknown) => void): void {
  const handler = shutdownSignalHandler({ stop, onFailure, exit: (code) => process.exit(code) });
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
