/**
 * A helper process that a harness forks (the bench's and the scale run's load generators), seen from both ends. The
 * parent sends numbered commands and awaits their answers; the child answers each one and may also emit events
 * (progress lines, measurement windows) that the parent hands to its own listener. A load generator lives in its own
 * process so that its CPU is measured apart from the servers', and so that its event loop never delays theirs.
 */
import { fork, type ChildProcess } from 'node:child_process';

/** Anything the child sends that is not the answer to a command. */
export interface HelperEvent {
  event: string;
  text?: string;
}

interface FromChild {
  reqId?: number;
  result?: unknown;
  error?: string;
  event?: string;
  text?: string;
}

interface Waiting {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

/** What a helper serves: a command's name to the function that answers it (one argument, sent over IPC as JSON). */
export type Commands = Record<string, (args: never) => unknown>;

export class ForkedHelper<C extends Commands = Commands> {
  private nextId = 1;
  private readonly waiting = new Map<number, Waiting>();

  private constructor(
    private readonly child: ChildProcess,
    onEvent: (event: HelperEvent) => void,
  ) {
    child.on('message', (message: FromChild) => {
      if (message.reqId === undefined) {
        if (message.event !== undefined) onEvent(message as HelperEvent);
        return;
      }
      const entry = this.waiting.get(message.reqId);
      this.waiting.delete(message.reqId);
      if (message.error !== undefined) entry?.reject(new Error(message.error));
      else entry?.resolve(message.result);
    });
    child.on('exit', (code) => {
      for (const entry of this.waiting.values()) entry.reject(new Error(`load generator exited (${String(code)})`));
      this.waiting.clear();
    });
  }

  /** Forks `script` under tsx and resolves once it has said it is ready. */
  static async start<C extends Commands>(script: string, onEvent: (event: HelperEvent) => void): Promise<ForkedHelper<C>> {
    const child = fork(script, [], { execArgv: ['--conditions=source', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: FromChild): void => {
        if (message.event !== 'ready') return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve();
      };
      const onExit = (code: number | null): void => reject(new Error(`load generator exited at start (${String(code)})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    return new ForkedHelper<C>(child, onEvent);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Runs `cmd` in the child with `args`; resolves with its answer, rejects with its error. */
  call<K extends keyof C & string>(cmd: K, ...args: Parameters<C[K]>): Promise<Awaited<ReturnType<C[K]>>> {
    const reqId = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(reqId, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ cmd, args: args[0], reqId });
    });
  }

  /** Lets the child exit on its own (it exits when the channel closes), and kills it if it has not within 10 s. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** The child's side: sends an event to the parent (a no-op when run without one). */
export function emitToParent(event: HelperEvent & Record<string, unknown>): void {
  process.send?.(event);
}

/** The child's side: answers every command with its handler's result or error, says ready, and exits with its parent. */
export function serveCommands(commands: Commands): void {
  process.on('message', (message: { reqId: number; cmd: string; args: unknown }) => {
    const handler = commands[message.cmd];
    Promise.resolve()
      .then(() => {
        if (!handler) throw new Error(`unknown command ${message.cmd}`);
        return handler(message.args as never);
      })
      .then(
        (result) => process.send?.({ reqId: message.reqId, result }),
        (error: unknown) => process.send?.({ reqId: message.reqId, error: error instanceof Error ? error.message : String(error) }),
      );
  });
  process.on('disconnect', () => process.exit(0));
  emitToParent({ event: 'ready' });
}
