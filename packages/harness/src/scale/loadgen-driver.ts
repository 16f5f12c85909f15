/** The scale run's side of its load generator: a forked process, commands and answers over IPC. */
import { fileURLToPath } from 'node:url';
import { ForkedHelper } from '../forked-helper.js';
import type { LoadResult, OpenArgs, TrafficArgs } from './loadgen.js';
import type { LoadTotals, RoomArgs } from './loadgen-rooms.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

export interface LoadStatus {
  open: number;
  reconnecting: number;
  clients: number;
}

export class ScaleLoadGen {
  private constructor(private readonly helper: ForkedHelper) {}

  static async start(gateways: string[], progress: (text: string) => void): Promise<ScaleLoadGen> {
    const helper = await ForkedHelper.start(LOADGEN, (event) => {
      if (event.event === 'progress' && event.text) progress(event.text);
    });
    const loadgen = new ScaleLoadGen(helper);
    await helper.request({ cmd: 'init', gateways });
    return loadgen;
  }

  get pid(): number {
    return this.helper.pid;
  }

  openIdle(args: OpenArgs): Promise<{ opened: number; seconds: number }> {
    return this.helper.request({ cmd: 'idle', args });
  }

  openPairs(args: OpenArgs): Promise<{ opened: number; seconds: number }> {
    return this.helper.request({ cmd: 'pairs', args });
  }

  openRooms(args: RoomArgs): Promise<{ opened: number; joined: number; seconds: number }> {
    return this.helper.request({ cmd: 'rooms', args });
  }

  /** Pauses or resumes each kind of message (a paused kind does not catch up). */
  pace(kinds: { pairs: boolean; rooms: boolean }): Promise<unknown> {
    return this.helper.request({ cmd: 'pace', ...kinds });
  }

  /** Running totals since the load generator started (the edges of a measurement window). */
  totals(): Promise<LoadTotals> {
    return this.helper.request({ cmd: 'totals' });
  }

  startTraffic(args: TrafficArgs): Promise<{ startedAt: number }> {
    return this.helper.request({ cmd: 'start', args });
  }

  /** Ends the warm-up; resolves with the phase's start (epoch ms, the load generator's clock). */
  startPhase(): Promise<{ startedAt: number }> {
    return this.helper.request({ cmd: 'phase' });
  }

  status(): Promise<LoadStatus> {
    return this.helper.request({ cmd: 'status' });
  }

  stopTraffic(): Promise<LoadResult> {
    return this.helper.request({ cmd: 'stop' });
  }

  closeAll(): Promise<{ closed: number }> {
    return this.helper.request({ cmd: 'close' });
  }

  stop(): Promise<void> {
    return this.helper.stop();
  }
}
