/** The harness's side of the load generator: a forked process, commands over IPC, CPU sampled on its window events. */
import { fileURLToPath } from 'node:url';
import { ForkedHelper, type HelperEvent } from '../forked-helper.js';
import type { BenchCommands, ConnectArgs, ConnectResult, PairsArgs, RelayArgs, RelayResult, StormArgs, StormResult } from './loadgen.js';
import { cpuOf, elsewhereCpu, syscallsOf } from '../proc.js';

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

/** CPU seconds of `pids` over a window; NaN when any of them has no figure (missing, never counted as 0). */
export function cpuSecondsOf(window: Pick<Window, 'cpu'>, pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (window.cpu[pid] ?? Number.NaN), 0);
}

const cpuOf1 = (pid: number): number => cpuOf([pid]);
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

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
  private watched: number[] = [];
  private cpuAtStart = new Map<number, number>();
  private syscallsAtStart = new Map<number, { reads: number; writes: number }>();
  private elsewhereAtStart = NaN;
  /** Processes of the bench's own that are not measured (a second cluster idling beside the one measured). */
  private alsoBench: number[] = [];
  private lastWindow: Window = { cpu: {}, syscalls: {}, elsewhere: NaN };
  /**
   * The last window's start and end on the monotonic clock in µs, the clock V8's CPU profiles use, so a profile can
   * be cut to the window (profile.ts). NaN until a window has started or ended.
   */
  readonly windowSpanUs = { start: NaN, end: NaN };

  private constructor(
    private readonly helper: ForkedHelper<BenchCommands>,
    private readonly progress: (text: string) => void,
  ) {}

  static async start(progress: (text: string) => void): Promise<LoadGen> {
    let loadgen: LoadGen | undefined;
    const helper = await ForkedHelper.start<BenchCommands>(LOADGEN, (event) => loadgen?.onEvent(event));
    loadgen = new LoadGen(helper, progress);
    return loadgen;
  }

  get pid(): number {
    return this.helper.pid;
  }

  /** The load generator samples nothing itself: it says when a window starts and ends, and CPU is read here. */
  private onEvent(event: HelperEvent): void {
    if (event.event === 'window-start') {
      this.windowSpanUs.start = monotonicUs();
      this.windowSpanUs.end = NaN;
      this.elsewhereAtStart = elsewhereCpu([...this.watched, ...this.alsoBench]);
      this.cpuAtStart = sampleEach(this.watched, cpuOf1);
      this.syscallsAtStart = sampleEach(this.watched, syscallsOf);
    } else if (event.event === 'window-end') {
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
      this.windowSpanUs.end = monotonicUs();
    } else if (event.event === 'progress' && event.text) {
      this.progress(event.text);
    }
  }

  /** Counts `pids` as the bench's own, not as other people's work, in the windows' `elsewhere`. */
  ignoreElsewhere(pids: number[]): void {
    this.alsoBench = [...pids];
  }

  pairs(args: PairsArgs): Promise<{ clients: number }> {
    return this.helper.call('pairs', args);
  }

  /** Runs a relay measurement and returns it with the CPU each watched pid used during its window. */
  async relay(args: RelayArgs, watch: number[]): Promise<RelayResult & Window> {
    this.watched = [...watch, this.pid];
    this.lastWindow = { cpu: {}, syscalls: {}, elsewhere: NaN };
    const result = await this.helper.call('relay', args);
    return { ...result, ...this.lastWindow };
  }

  connect(args: ConnectArgs): Promise<ConnectResult> {
    return this.helper.call('connect', args);
  }

  /** Makes every idle client reconnect once its connection closes. */
  armStorm(args: StormArgs): Promise<{ armed: number }> {
    return this.helper.call('arm-storm', args);
  }

  /** Resolves once every armed client is back (or the storm's timeout passed). */
  stormResult(): Promise<StormResult> {
    return this.helper.call('storm-result');
  }

  close(): Promise<{ closed: number }> {
    return this.helper.call('close');
  }

  stop(): Promise<void> {
    return this.helper.stop();
  }
}
