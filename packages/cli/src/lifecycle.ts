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

/**
 * Runs `stop` once on the first SIGTERM/SIGINT and exits with its result. A second signal exits at once, so an
 * operator is never stuck behind a drain.
 */
export function onShutdownSignal(stop: (signal: NodeJS.Signals) => Promise<void>, onFailure: (error: unknown) => void): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(EXIT.failure);
    stopping = true;
    stop(signal).then(
      () => process.exit(EXIT.ok),
      (error: unknown) => {
        onFailure(error);
        process.exit(EXIT.failure);
      },
    );
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
