/**
 * The bench's verdicts, as pure functions over recorded results (so tests can plant faults in recorded data).
 *
 * A measurement counts only when it is whole: a paced step only if it delivered what it offered (within
 * PACED_TOLERANCE) with no error, no skipped send and nothing lost; a relay run only without errors or losses; a
 * CPU figure only if both ends of its window were read; an idle or connect run only if every connection opened.
 * A target's figure is the median over rounds of per-round values, and every configured round must supply one:
 * a failed or invalid round makes the figure missing, and a missing figure fails its target. Nothing is read as 0.
 */
import type { BenchResults, ConnectRow, IdleRow, RelayRow, SweepRow } from './report.js';

/** A paced step must deliver within 2 % of the rate it offered (measured: real runs land within 1 %). */
export const PACED_TOLERANCE = 0.02;

/** Rows recorded before losses were counted have no `lost`: that is missing evidence, not zero losses. */
function lossProblem(row: { sent?: number; lost?: number }): string | undefined {
  if (row.lost === undefined) return 'no count of lost messages recorded';
  return row.lost === 0 ? undefined : `${String(row.lost)} of ${String(row.sent)} messages never arrived`;
}

export function relayRowProblems(row: RelayRow): string[] {
  const problems: string[] = [];
  if (row.errors > 0) problems.push(`${String(row.errors)} errors ${JSON.stringify(row.errorCodes)}`);
  const loss = lossProblem(row);
  if (loss) problems.push(loss);
  if (!(row.rate > 0)) problems.push(`no delivery rate (${String(row.rate)})`);
  return problems;
}

/** The CPU figure needs a valid run and a CPU reading at both ends of its window. */
export function cpuProblems(row: RelayRow): string[] {
  const problems = relayRowProblems(row);
  if (!Number.isFinite(row.cpuUsPerMessage)) problems.push('no CPU sample for the server');
  return problems;
}

export function sweepRowProblems(row: SweepRow): string[] {
  const problems: string[] = [];
  if (!(row.errors === 0)) problems.push(`${String(row.errors ?? 'no count of')} errors`);
  if (row.skipped > 0) problems.push(`${String(row.skipped)} sends skipped`);
  const loss = lossProblem(row);
  if (loss) problems.push(loss);
  const achieved = row.rate / row.targetRate;
  if (!(Math.abs(achieved - 1) <= PACED_TOLERANCE)) {
    problems.push(`delivered ${Math.round(row.rate)}/s of ${String(row.targetRate)}/s offered (${(achieved * 100).toFixed(1)} %)`);
  }
  if (!Number.isFinite(row.latencyMs.p99)) problems.push('no latency samples');
  return problems;
}

export function connectRowProblems(row: ConnectRow): string[] {
  const problems: string[] = [];
  if (row.failed > 0) problems.push(`${String(row.failed)} connects failed (${row.firstError ?? '?'})`);
  if (!(row.rate > 0)) problems.push(`no completion rate (${String(row.rate)})`);
  return problems;
}

export function idleRowProblems(row: IdleRow): string[] {
  const problems: string[] = [];
  if (row.failed > 0 || row.connections !== row.target) problems.push(`${String(row.connections)} of ${String(row.target)} connections open`);
  if (!Number.isFinite(row.perConnectionKiB)) problems.push('no RSS reading');
  return problems;
}

/** One round's value of a figure, or why it has none. */
type RoundValue = { value: number } | { missing: string };

/** The figure per configured round: the single matching row's value, or why that round has none. */
function perRound<T extends { round: number }>(
  rounds: number,
  rows: T[],
  what: string,
  problems: (row: T) => string[],
  value: (row: T) => number,
): RoundValue[] {
  return Array.from({ length: rounds }, (_, i) => {
    const round = i + 1;
    const row = rows.find((r) => r.round === round);
    if (!row) return { missing: `round ${String(round)}: no ${what}` };
    const found = problems(row);
    if (found.length > 0) return { missing: `round ${String(round)}: ${what} does not count: ${found.join('; ')}` };
    return { value: value(row) };
  });
}

function strictMedian(values: RoundValue[]): { value: number; missing: string[] } {
  const missing = values.flatMap((v) => ('missing' in v ? [v.missing] : []));
  if (missing.length > 0 || values.length === 0) return { value: Number.NaN, missing: missing.length > 0 ? missing : ['no round configured'] };
  const sorted = values.map((v) => (v as { value: number }).value).sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const value = sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  return { value, missing: [] };
}

/** Per-round ratios a/b; a round where either side has no value has no ratio. */
function ratios(a: RoundValue[], b: RoundValue[]): RoundValue[] {
  return a.map((x, i) => {
    const y = b[i] as RoundValue;
    if ('missing' in x) return x;
    if ('missing' in y) return y;
    return { value: x.value / y.value };
  });
}

export interface TargetVerdict {
  target: string;
  /** The judged figure (a median over rounds); NaN when a round has none. */
  value: number;
  pass: boolean;
  /** Why the figure is missing (each round without a valid measurement); empty when it is whole. */
  missing: string[];
}

export interface BenchVerdict {
  targets: TargetVerdict[];
  /** Everything that fails the run: missing figures, failed rounds and missed targets. */
  failures: string[];
}

/** Judges every target over the recorded rounds. */
export function judge(results: BenchResults): BenchVerdict {
  const rounds = results.config.rounds;
  const relay = (system: string, scenario: RelayRow['scenario']): RelayRow[] =>
    results.relay.filter((r) => r.system === system && r.scenario === scenario && r.size === 'candidate');
  const rate = (system: string, scenario: RelayRow['scenario']): RoundValue[] =>
    perRound(rounds, relay(system, scenario), `${system} ${scenario} closed-loop run`, relayRowProblems, (r) => r.rate);
  const cpu = (system: string): RoundValue[] => perRound(rounds, relay(system, 'relay-1'), `${system} relay-1 CPU figure`, cpuProblems, (r) => r.cpuUsPerMessage);
  const p99 = (scenario: SweepRow['scenario']): RoundValue[] =>
    perRound(
      rounds,
      results.sweep.filter((r) => r.system === 'ours' && r.scenario === scenario && r.fraction === 0.5),
      `ours ${scenario} paced step at 50 %`,
      sweepRowProblems,
      (r) => r.latencyMs.p99,
    );
  const idle = (system: string, n: number): RoundValue[] =>
    perRound(rounds, results.idle.filter((r) => r.system === system && r.target === n), `${system} idle run at ${String(n)}`, idleRowProblems, (r) => r.perConnectionKiB);
  const connect = perRound(rounds, results.connect.filter((r) => r.system === 'ours'), 'ours connect run', connectRowProblems, (r) => r.rate);

  const targets: TargetVerdict[] = [];
  const add = (target: string, values: RoundValue[], pass: (v: number) => boolean): void => {
    const { value, missing } = strictMedian(values);
    targets.push({ target, value, pass: missing.length === 0 && pass(value), missing });
  };
  add('relay on one node ≥ PeerJS server (msgs/s, 200 B)', ratios(rate('ours', 'relay-1'), rate('peerjs', 'relay-1')), (v) => v >= 1);
  add('relay across nodes ≥ 0.6 × one node', ratios(rate('ours', 'relay-2'), rate('ours', 'relay-1')), (v) => v >= 0.6);
  add('p99 at 50 % load ≤ 5 ms on one node', p99('relay-1'), (v) => v <= 5);
  add('p99 at 50 % load ≤ 10 ms across nodes', p99('relay-2'), (v) => v <= 10);
  add('connect ≥ 1,000 completions/s (one gateway, one node)', connect, (v) => v >= 1000);
  for (const n of results.config.idle) {
    add(`idle RSS per connection ≤ PeerJS server's (${n.toLocaleString('en-US')} connections, whole server side)`, ratios(idle('ours', n), idle('peerjs', n)), (v) => v <= 1);
  }
  add('CPU per relayed message ≤ 2 × bare ws', ratios(cpu('ours'), cpu('ws')), (v) => v <= 2);

  const failures: string[] = [];
  for (const f of results.failures) failures.push(`round ${String(f.round)}: ${f.system} failed: ${f.error}`);
  for (const t of targets) {
    if (t.missing.length > 0) failures.push(`${t.target}: no valid figure (${t.missing.join(' | ')})`);
    else if (!t.pass) failures.push(`${t.target}: missed (${t.value.toFixed(2)})`);
  }
  return { targets, failures };
}
