import type { ChaosResult } from './run.js';

/** What must hold for the run to pass; empty when it does. */
export function verdict(result: ChaosResult): string[] {
  const t = result.totals;
  const failures: string[] = [];
  if (t.silentlyLost > 0) failures.push(`${String(t.silentlyLost)} messages silently lost`);
  if (t.duplicates > 0) failures.push(`${String(t.duplicates)} messages delivered twice`);
  if (t.ackedOutOfOrder > 0) failures.push(`${String(t.ackedOutOfOrder)} acked messages out of order`);
  for (const s of result.scaleOut) {
    if (s.share < result.config.minScaleOutShare) {
      failures.push(`scale-out: only ${String(s.onNewNode)}/${String(s.waveSize)} new sessions on ${s.nodeId}`);
    }
  }
  return failures;
}
