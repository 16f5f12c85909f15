import type { ChaosConfig } from './config.js';
import type { ScaleOutResult } from './faults.js';
import type { SessionEvent } from './fleet.js';
import type { Ledger } from './ledger.js';
import type { NodeSample } from '../sampler.js';
import type { Percentiles } from '../stats.js';

export interface ObservationInput {
  config: ChaosConfig;
  samples: NodeSample[];
  scaleOut: ScaleOutResult[];
  sessions: SessionEvent[];
  reconnectsByFault: { fault: string; at: number; stats: Percentiles }[];
  faultStarts: { fault: string; at: number }[];
  /** When memcached came back, ms on the ledger's clock. */
  memcachedBack: number[];
  ledger: Ledger;
  initialConcurrency: number;
}

/** Facts worth a sentence in the report, derived from the figures (they explain; they never judge). */
export function observe(input: ObservationInput): string[] {
  const { config, samples, scaleOut, sessions, reconnectsByFault, faultStarts, memcachedBack, ledger, initialConcurrency } = input;
  const observations: string[] = [];
  const first = samples.find((s) => s.source === 'registry' && Object.values(s.connections).reduce((a, b) => a + b, 0) === config.pairs * 2);
  const initial = first ? Object.values(first.connections) : [];
  if (initial.length > 1 && Math.max(...initial) - Math.min(...initial) > (config.pairs * 2) / initial.length / 4) {
    observations.push(
      `The first ${String(config.pairs * 2)} clients, connected ${String(initialConcurrency)} at a time through ${String(config.gateways)} gateway(s), ` +
        `landed ${initial.join(' / ')} on the ${String(initial.length)} nodes: each gateway adds only its own recent assignments to ` +
        `the load in etcd (refreshed about once a second), so concurrent bursts through several gateways spread unevenly.`,
    );
  }
  for (const s of scaleOut) {
    const after = samples.find((x) => x.source === 'registry' && x.at / 1000 >= s.at + s.waveSize / config.scaleOutJoinsPerSecond + 2);
    const others = after ? Object.entries(after.connections).filter(([id]) => id !== s.nodeId && !after.draining.includes(id)).map(([, c]) => c) : [];
    const mine = after?.connections[s.nodeId];
    if (mine === undefined || others.length === 0) continue;
    const average = others.reduce((a, b) => a + b, 0) / others.length;
    if (mine > average * 1.25 + 2) {
      observations.push(
        `${s.nodeId} ended the scale-out wave with ${String(mine)} sessions against ${average.toFixed(0)} on the other nodes: ` +
          `the gateways kept choosing it after it had caught up, because their view of its load lags by up to a second.`,
      );
    }
  }
  const firstSession = new Map<string, number>();
  for (const e of sessions) if (!firstSession.has(e.userId)) firstSession.set(e.userId, e.at);
  const scaleOutPhase = reconnectsByFault.findIndex((f) => f.fault === 'scale-out');
  if (scaleOutPhase >= 0) {
    const from = (reconnectsByFault[scaleOutPhase]?.at ?? 0) * 1000;
    const to = (reconnectsByFault[scaleOutPhase + 1]?.at ?? Number.POSITIVE_INFINITY) * 1000;
    const errors = ledger.errorsOf('PEER_UNAVAILABLE', from, to);
    // The recipient had not been welcomed yet when the message was sent: its pair was still joining.
    const early = errors.filter((e) => (firstSession.get(e.stream.split('>')[1] ?? '') ?? Number.POSITIVE_INFINITY) > e.sentAt).length;
    if (early > 0) {
      observations.push(
        `${String(early)} of the ${String(errors.length)} PEER_UNAVAILABLE answers in the scale-out phase were sends to a joining ` +
          `client that had not been welcomed yet (the pairs join one client at a time): correct answers, not faults.`,
      );
    }
  }
  const sessionTtl = Number(config.env['MSG_SESSION_TTL_SECONDS'] ?? 120);
  for (const back of memcachedBack) {
    const next = (faultStarts.find((f) => f.at * 1000 > back)?.at ?? Number.POSITIVE_INFINITY) * 1000;
    const misses = ledger.errorTimes('PEER_UNAVAILABLE', back, next);
    const last = misses.at(-1);
    if (last === undefined) continue;
    observations.push(
      `After memcached came back empty at t=${(back / 1000).toFixed(1)} s, ${String(misses.length)} sends were answered PEER_UNAVAILABLE, ` +
        `the last ${((last - back) / 1000).toFixed(1)} s after the restart (nodes re-assert their live sessions within ` +
        `MSG_SESSION_TTL_SECONDS / 3 = ${(sessionTtl / 3).toFixed(0)} s). The senders were told; nothing was lost silently.`,
    );
  }
  return observations;
}
