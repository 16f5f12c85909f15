/** The harness's side of the load generator: a forked process, commands over IPC, CPU sampled on its window events. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ConnectArgs, ConnectResult, PairsArgs, RelayArgs, RelayResult } from './loadgen.js';
import { cpuOf, elsewhereCpu, syscallsOf } from './procstat.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

export interface Window {
  /** CPU seconds per watched pid over the measurement window; a pid without a figure is absent. */
  cpu: Record<number, number>;
  /** Read and write system calls per watched pid over the window. */
  syscalls: Record<number, { reads: number; writes: number }>;
  /**
   * CPU seconds that processes other than the watched ones (and the kernel's threads, which carry the bench's own
   * loopback traffic) used over the window, plus time stolen by the hypervisor: other people's work. NaN if unread.
   * It includes this harness: about a hundredth of a core.
   */
  elsewhere: number;
}

const cpuOf1 = (pid: number): number => cpuOf([pid]);

/** Reads `read(pid)` for each pid; a pid that cannot be read (gone, no /proc entry) is left out. */
function sampleEach<T>(pids: number[], read: (pid: number) => T): Map<number, T> {
  const out = new Map<number, T>();
  for (const pid of pids) {
    try {
      out.set(pid, read(pid));
    } catch {
      // left out: the window has no figure for it
    }
  }
  return out;
}

export class LoadGen {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private watched: number[] = [];
  private cpuAtStart = new Map<number, number>();
  private syscallsAtStart = new Map<number, { reads: number; writes: number }>();
  private elsewhereAtStart = NaN;
  /** Processes of the bench's own that are not measured (a second cluster idling beside the one measured). */
  private alsoBench: number[] = [];
  private lastWindow: Window = { cpu: {}, syscalls: {}, elsewhere: NaN };

  private constructor(private readonly child: ChildProcess, private readonly progress: (text: string) => void) {
    child.on('message', (message: { reqId?: number; result?: unknown; error?: string; event?: string; text?: string }) => {
      if (message.event === 'window-start') {
        this.elsewhereAtStart = elsewhereCpu([...this.watched, ...this.alsoBench]);
        this.cpuAtStart = sampleEach(this.watched, cpuOf1);
        this.syscallsAtStart = sampleEach(this.watched, syscallsOf);
      } else if (message.event === 'window-end') {
        // A pid that could not be read at either end of the window has no figure: missing, never 0.
        const cpu: Record<number, number> = {};
        const syscalls: Window['syscalls'] = {};
        const cpuNow = sampleEach(this.watched, cpuOf1);
        const syscallsNow = sampleEach(this.watched, syscallsOf);
        const elsewhereNow = elsewhereCpu([...this.watched, ...this.alsoBench]);
        for (const pid of this.watched) {
          const [c0, c1] = [this.cpuAtStart.get(pid), cpuNow.get(pid)];
          if (c0 !== undefined && c1 !== undefined) cpu[pid] = c1 - c0;
          const [s0, s1] = [this.syscallsAtStart.get(pid), syscallsNow.get(pid)];
          if (s0 !== undefined && s1 !== undefined) syscalls[pid] = { reads: s1.reads - s0.reads, writes: s1.writes - s0.writes };
        }
        this.lastWindow = { cpu, syscalls, elsewhere: elsewhereNow - this.elsewhereAtStart };
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

  /** Counts `pids` as the bench's own, not as other people's work, in the windows' `elsewhere`. */
  ignoreElsewhere(pids: number[]): void {
    this.alsoBench = [...pids];
  }

  pairs(args: PairsArgs): Promise<{ clients: number }> {
    return this.request({ cmd: 'pairs', args });
  }

  /** Runs a relay measurement and returns it with the CPU each watched pid used during its window. */
  async relay(args: RelayArgs, watch: number[]): Promise<RelayResult & Window> {
    this.watched = [...watch, this.pid];
    this.lastWindow = { cpu: {}, syscalls: {}, elsewhere: NaN };
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
