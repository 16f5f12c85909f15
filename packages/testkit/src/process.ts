import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * A child process whose output is kept (tests read the logs) and whose exit is always awaited, because PID 1 on
 * these machines does not reap orphans.
 */
export class ManagedProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<ExitStatus>;
  private output = '';
  private exitStatus: ExitStatus | undefined;

  constructor(
    readonly name: string,
    command: string,
    args: readonly string[],
    env: NodeJS.ProcessEnv,
    private readonly echo: ((line: string) => void) | undefined = undefined,
    logFile?: string,
  ) {
    this.child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const file: WriteStream | undefined = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    if (file) this.child.once('exit', () => file.end());
    const collect = (chunk: Buffer): void => {
      file?.write(chunk);
      const text = chunk.toString('utf8');
      // Keep the tail only, so a chatty long run cannot grow without bound.
      this.output = (this.output + text).slice(-4_000_000);
      if (this.echo) for (const line of text.split('\n')) if (line) this.echo(line);
    };
    this.child.stdout?.on('data', collect);
    this.child.stderr?.on('data', collect);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitStatus === undefined;
  }

  logs(): string {
    return this.output;
  }

  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
  async stop(graceMs = 10_000): Promise<ExitStatus> {
    if (!this.running) return this.exitStatus as ExitStatus;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Resolves when the output matches, rejects if the process exits first or the time runs out. */
  async waitForOutput(pattern: RegExp, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.output);
      if (match) return match[0];
      if (!this.running) throw new Error(`${this.name} exited (${JSON.stringify(this.exitStatus)}) before printing ${String(pattern)}:\n${this.output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`${this.name} did not print ${String(pattern)} within ${String(timeoutMs)} ms:\n${this.output.slice(-2000)}`);
      await sleep(50);
    }
  }
}

/** True while a process with this pid exists (signal 0 checks without signalling). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
