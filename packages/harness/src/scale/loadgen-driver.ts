/** The scale run's side of its load generator: a forked process, its commands (loadgen.ts's) over IPC. */
import { fileURLToPath } from 'node:url';
import { ForkedHelper } from '../forked-helper.js';
import type { ScaleCommands } from './loadgen.js';

const LOADGEN = fileURLToPath(new URL('./loadgen.ts', import.meta.url));

export type ScaleLoadGen = ForkedHelper<ScaleCommands>;

/** Forks the load generator and points it at the gateways; its progress lines go to `progress`. */
export async function startScaleLoadGen(gateways: string[], progress: (text: string) => void): Promise<ScaleLoadGen> {
  const helper = await ForkedHelper.start<ScaleCommands>(LOADGEN, (event) => {
    if (event.event === 'progress' && event.text) progress(event.text);
  });
  await helper.call('init', gateways);
  return helper;
}
