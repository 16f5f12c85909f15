/** The harness's side of the load generator: a forked process, commands over IPC, CPU sampled on its window events. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ConnectArgs, ConnectResult, PairsArgs, RelayArgs, RelayResult } from './loadgen.js';
import { cpuOf, syscallsOf } from './procstat.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

export interface Window {
  /** CPU seconds per watched pid over the measurement window. */
  cpu: Record<number, number>;
  /** Read and write system calls per watched pid over the window. */
  syscalls: Record<number, { reads: number; writes: number }>;
}

export class LoadGen {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private watched: number[] = [];
  private cpuAtStart = new Map<number, number>();
  private syscallsAtStart = new Map<number, { reads: number; writes: number }>();
  private lastWindow: Window = { cpu: {}, syscalls: {} };

  private constructor(private readonly child: ChildProcess, private readonly progress: (text: string) => void) {
    child.on('message', (message: { reqId?: number; result?: unknown; error?: string; event?: string; text?: string }) => {
      if (message.event === 'window-start') {
        this.cpuAtStart = new Map(this.watched.map((pid) => [pid, cpuOf([pid])]));
        this.syscallsAtStart = new Map(this.watched.map((pid) => [pid, syscallsOf(pid)]));
      } else if (message.event === 'window-end') {
        const cpu: Record<number, number> = {};
        const syscalls: Window['syscalls'] = {};
        for (const pid of this.watched) {
          cpu[pid] = cpuOf([pid]) - (this.cpuAtStart.get(pid) ?? 0);
          const now = syscallsOf(pid);
          const before = this.syscallsAtStart.get(pid) ?? { reads: NaN, writes: NaN };
          syscalls[pid] = { reads: now.reads - before.reads, writes: now.writes - before.writes };
        }
        this.lastWindow = { cpu, syscalls };
      } else if (message.event === 'progress' && message.text) {
        this.progress(message.text);
      } else if (message.reqId !== undefined) {
        const entry = this.waiting.get(message.reqId);
        this.waiting.delete(message.reqId);
        if (message.error !== undefined) entry?.reject(new Error(message.error));
        else entry?.resolve(message.result);
      }
    });
    child.on('exit', (code) => {
      for (const entry of this.waiting.values()) entry.reject(new Error(`load generator exited (${String(code)})`));
      this.waiting.clear();
    });
  }

  static async start(progress: (text: string) => void): Promise<LoadGen> {
    const child = fork(LOADGEN, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { event?: string }): void => {
        if (message.event !== 'ready') return;
        child.off('message', onMessage);
        resolve();
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`load generator exited at start (${String(code)})`)));
    });
    return new LoadGen(child, progress);
  }

  get pid(): number {
    return this.child.pid as number;
  }

  private request<T>(command: Record<string, unknown>): Promise<T> {
    const reqId = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(reqId, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...command, reqId });
    });
  }

  pairs(args: PairsArgs): Promise<{ clients: number }> {
    return this.request({ cmd: 'pairs', args });
  }

  /** Runs a relay measurement and returns it with the CPU each watched pid used during its window. */
  async relay(args: RelayArgs, watch: number[]): Promise<RelayResult & Window> {
    this.watched = [...watch, this.pid];
    this.lastWindow = { cpu: {}, syscalls: {} };
    const result = await this.request<RelayResult>({ cmd: 'relay', args });
    return { ...result, ...this.lastWindow };
  }

  connect(args: ConnectArgs): Promise<ConnectResult> {
    return this.request({ cmd: 'connect', args });
  }

  close(): Promise<{ closed: number }> {
    return this.request({ cmd: 'close' });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
