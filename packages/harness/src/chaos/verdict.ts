import { roomFailures } from './rooms.js';
import type { ChaosResult } from './run.js';

/** What the verdict reads: the figures of a run, whether it came from `runChaos` or from a fleet a test drove itself. */
export type VerdictInput = Pick<ChaosResult, 'config' | 'totals' | 'anomalies' | 'scaleOut' | 'reconnects' | 'terminalCloses' | 'misdelivered'> &
  Partial<Pick<ChaosResult, 'vanished' | 'halves' | 'silentDeath' | 'rooms'>>;

/**
 * What must hold for the run to pass; empty when it does. Any sign that the run did not see what it claims to have
 * seen fails it too: a fault step that threw, a check with nothing to judge, a client that gave up, a reconnect
 * that never finished, an arrival nobody sent.
 */
export function verdict(result: VerdictInput): string[] {
  const t = result.totals;
  const failures: string[] = [];
  if (t.sent === 0) failures.push('no message was sent: nothing was judged');
  if (t.silentlyLost > 0) failures.push(`${String(t.silentlyLost)} messages silently lost`);
  if (t.duplicates > 0) failures.push(`${String(t.duplicates)} messages delivered twice`);
  if (t.ackedOutOfOrder > 0) failures.push(`${String(t.ackedOutOfOrder)} acked messages out of order`);
  if (t.unknownArrivals > 0) failures.push(`${String(t.unknownArrivals)} arrivals of messages never sent on that stream`);
  if (result.misdelivered.length > 0) {
    const first = result.misdelivered[0];
    failures.push(`${String(result.misdelivered.length)} messages reached a client they were not addressed to (first: for ${first?.to ?? '?'}, at ${first?.receiver ?? '?'})`);
  }
  for (const anomaly of result.anomalies) failures.push(`anomaly: ${anomaly}`);
  if (result.terminalCloses.length > 0) {
    const reasons = [...new Set(result.terminalCloses.map((c) => `${c.reason}${c.code === undefined ? '' : ` ${String(c.code)}`}`))];
    failures.push(`${String(result.terminalCloses.length)} clients closed for good (${reasons.join(', ')})`);
  }
  if (result.reconnects.unfinished > 0) failures.push(`${String(result.reconnects.unfinished)} reconnects never finished`);
  failures.push(...scaleOutFailures(result));
  failures.push(...continuityFailures(result));
  failures.push(...receiptsFailures(result));
  // Issue 23: a config with rooms must produce room figures, and those are held to the same zero-loss rule.
  if ((result.config.rooms ?? 0) > 0 && !result.rooms) failures.push('rooms: scheduled, but no room figures were measured');
  failures.push(...roomFailures(result.rooms));
  return failures;
}

/**
 * Issue 24: both halves judged (the zero-loss checks above cover every stream of either), each named where it
 * failed; and a scheduled silent death must have silenced every routed client, seen each come back, and had traffic
 * to judge while they were gone.
 */
function receiptsFailures(result: VerdictInput): string[] {
  const failures: string[] = [];
  for (const [half, h] of Object.entries(result.halves ?? {})) {
    if (h.sent === 0) failures.push(`${half} half: no message was sent to it, so nothing was judged`);
    if (h.silentlyLost > 0) failures.push(`${half} half: ${String(h.silentlyLost)} messages silently lost`);
    if (h.duplicates > 0) failures.push(`${half} half: ${String(h.duplicates)} messages delivered twice after the SDK dropped repeats`);
  }
  if (!result.config.faults.some((f) => f.kind === 'silent-death')) return failures;
  const d = result.silentDeath;
  if (!d || d.at === undefined || d.users === 0) return [...failures, 'silent death: scheduled, but no connection went silent'];
  if (d.frozenConnections < d.users) failures.push(`silent death: ${String(d.frozenConnections)} connections froze for ${String(d.users)} clients`);
  if (d.notBack > 0) failures.push(`silent death: ${String(d.notBack)} of ${String(d.users)} clients never welcomed again`);
  if (d.toThem.sent === 0) failures.push('silent death: nothing was sent to the silenced clients while they were gone, so nothing was judged');
  return failures;
}

/**
 * Contract v1.1 (a resume window above 0): users who move come back having lost nothing and without their partners
 * seeing a single error; users who never come back get EXPIRED at the window's end, and no sooner.
 */
function continuityFailures(result: VerdictInput): string[] {
  const window = Number(result.config.env['MSG_RESUME_WINDOW_MS'] ?? 10_000);
  if (window <= 0) return [];
  const failures: string[] = [];
  const t = result.totals;
  if (t.errored > 0) failures.push(`${String(t.errored)} sends to users who came back errored (${JSON.stringify(t.erroredByCode)})`);
  const scheduled = result.config.faults.some((f) => f.kind === 'vanish');
  const v = result.vanished;
  if (!scheduled) return failures;
  if (!v || v.at === undefined || v.users === 0) return [...failures, 'vanish: scheduled, but no user vanished'];
  if (v.after.sent === 0) failures.push('vanish: nothing was sent to the vanished users, so nothing was judged');
  const notExpired = Object.entries(v.after.byCode).filter(([code]) => code !== 'EXPIRED');
  if (notExpired.length > 0) failures.push(`vanish: sends to users who never came back got ${JSON.stringify(Object.fromEntries(notExpired))}, not EXPIRED`);
  if (v.after.expiredEarly > 0) failures.push(`vanish: ${String(v.after.expiredEarly)} EXPIRED before the window ended`);
  if (v.after.expiredLate > 0) failures.push(`vanish: ${String(v.after.expiredLate)} EXPIRED more than 2 s after the window ended`);
  if (v.before.ackedAndReceived !== v.before.sent) {
    failures.push(`vanish: ${String(v.before.sent - v.before.ackedAndReceived)} of the sends before the vanish were not acked and received`);
  }
  return failures;
}

/** Every scale-out step must have produced a judged wave; a step that threw before its wave must not pass by default. */
function scaleOutFailures(result: VerdictInput): string[] {
  const failures: string[] = [];
  const steps = result.config.faults.filter((f) => f.kind === 'scale-out').length;
  if (result.scaleOut.length !== steps) {
    failures.push(`scale-out: ${String(steps)} step(s) scheduled, ${String(result.scaleOut.length)} wave(s) measured`);
  }
  for (const s of result.scaleOut) {
    if (s.waveSize === 0) failures.push(`scale-out: no session joined after ${s.nodeId} was added`);
    else if (s.share < result.config.minScaleOutShare) {
      failures.push(`scale-out: only ${String(s.onNewNode)}/${String(s.waveSize)} new sessions on ${s.nodeId}`);
    }
  }
  return failures;
}
