/** The scale run's side of its load generator: a forked process, commands and answers over IPC. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { LoadResult, OpenArgs, TrafficArgs } from './loadgen.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

export interface LoadStatus {
  open: number;
  reconnecting: number;
  clients: number;
}

export class ScaleLoadGen {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private constructor(
    private readonly child: ChildProcess,
    progress: (text: string) => void,
  ) {
    child.on('message', (message: { reqId?: number; result?: unknown; error?: string; event?: string; text?: string }) => {
      if (message.event === 'progress' && message.text) return progress(message.text);
      if (message.reqId === undefined) return;
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

  static async start(gateways: string[], progress: (text: string) => void): Promise<ScaleLoadGen> {
    const child = fork(LOADGEN, [], { execArgv: ['--conditions=source', '--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { event?: string }): void => {
        if (message.event !== 'ready') return;
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve();
      };
      const onExit = (code: number | null): void => reject(new Error(`load generator exited at start (${String(code)})`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    const loadgen = new ScaleLoadGen(child, progress);
    await loadgen.request({ cmd: 'init', gateways });
    return loadgen;
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

  openIdle(args: OpenArgs): Promise<{ opened: number; seconds: number }> {
    return this.request({ cmd: 'idle', args });
  }

  openPairs(args: OpenArgs): Promise<{ opened: number; seconds: number }> {
    return this.request({ cmd: 'pairs', args });
  }

  startTraffic(args: TrafficArgs): Promise<{ startedAt: number }> {
    return this.request({ cmd: 'start', args });
  }

  /** Ends the warm-up; resolves with the phase's start (epoch ms, the load generator's clock). */
  startPhase(): Promise<{ startedAt: number }> {
    return this.request({ cmd: 'phase' });
  }

  status(): Promise<LoadStatus> {
    return this.request({ cmd: 'status' });
  }

  stopTraffic(): Promise<LoadResult> {
    return this.request({ cmd: 'stop' });
  }

  closeAll(): Promise<{ closed: number }> {
    return this.request({ cmd: 'close' });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    if (this.child.connected) this.child.disconnect();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }
}
