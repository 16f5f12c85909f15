// The benchmark verdicts are pure functions over recorded rounds: these tests plant faults in recorded data (a
// missing CPU sample, a paced step that lost 5 % of its messages, a failed round) and show each one fails.
import { expect } from 'chai';
import type { LatencySummary } from '../scripts/bench/loadgen.js';
import type { BenchResults, IdleRow, RelayRow, SweepRow } from '../scripts/bench/report.js';
import { judge, sweepRowProblems } from '../scripts/bench/verdict.js';

const ROUNDS = 3;
const latency = (p99: number): LatencySummary => ({ count: 10_000, p50: p99 / 4, p90: p99 / 2, p99, max: p99 * 2 });

function relay(system: RelayRow['system'], scenario: RelayRow['scenario'], round: number, rate: number, cpuUs: number): RelayRow {
  return {
    system,
    scenario,
    size: 'candidate',
    round,
    rate,
    latencyMs: latency(8),
    cpuUsPerMessage: cpuUs,
    serverCpuCores: 0.9,
    writesPerMessage: 0.3,
    readsPerMessage: 0.25,
    loadgenCpuCores: 1,
    errors: 0,
    errorCodes: {},
    sent: rate * 5,
    lost: 0,
    otherCpuUsPerMessage: {},
  };
}

function paced(system: SweepRow['system'], scenario: SweepRow['scenario'], round: number, fraction: number, targetRate: number, p99: number): SweepRow {
  return { system, scenario, round, fraction, targetRate, rate: targetRate, latencyMs: latency(p99), skipped: 0, errors: 0, errorCodes: {}, sent: targetRate * 3, lost: 0 };
}

function idle(system: IdleRow['system'], round: number, target: number, kib: number): IdleRow {
  const server = system === 'ours' ? ['node-1', 'node-2', 'gateway'] : [system];
  return { system, round, target, connections: target, failed: 0, serverProcesses: server, baseKiB: 100_000, rssKiB: 100_000 + kib * target, perConnectionKiB: kib, others: {} };
}

/** Three clean rounds in which every target is met. */
function recorded(): BenchResults {
  const results: BenchResults = {
    startedAt: '2026-01-01T00:00:00.000Z',
    machine: { cpus: 2, cpuModel: 'test', node: 'v20', platform: 'linux x64', memoryGiB: 8 },
    config: { rounds: ROUNDS, pairs: 50, window: 8, seconds: 4, sweepSeconds: 2.5, fractions: [0.25, 0.5, 0.75, 0.9], idle: [5000, 10_000], connects: 2000, connectConcurrency: 50, systems: ['ours', 'peerjs', 'ws'], quick: false },
    relay: [],
    sweep: [],
    connect: [],
    idle: [],
    failures: [],
    durationSeconds: 360,
  };
  for (let round = 1; round <= ROUNDS; round += 1) {
    results.relay.push(relay('ours', 'relay-1', round, 110_000, 9), relay('ours', 'relay-2', round, 70_000, 25), relay('peerjs', 'relay-1', round, 100_000, 8.5), relay('ws', 'relay-1', round, 104_000, 8));
    for (const fraction of results.config.fractions) {
      results.sweep.push(paced('ours', 'relay-1', round, fraction, 110_000 * fraction, 4), paced('ours', 'relay-2', round, fraction, 70_000 * fraction, 9));
    }
    results.connect.push({ system: 'ours', round, rate: 2500, latencyMs: latency(40), completed: 2000, failed: 0 });
    for (const n of results.config.idle) results.idle.push(idle('ours', round, n, 7), idle('peerjs', round, n, 8));
  }
  return results;
}

function row<T extends { round: number }>(rows: T[], round: number, match: (r: T) => boolean): T {
  const found = rows.find((r) => r.round === round && match(r));
  if (!found) throw new Error('fixture row missing');
  return found;
}

describe('bench verdicts over recorded rounds', () => {
  it('meets every target on three whole rounds, and judges idle memory at every connection count', () => {
    const verdict = judge(recorded());
    expect(verdict.failures).to.deep.equal([]);
    expect(verdict.targets.filter((t) => t.target.startsWith('idle')).map((t) => t.target)).to.deep.equal([
      "idle RSS per connection ≤ PeerJS server's (5,000 connections, whole server side)",
      "idle RSS per connection ≤ PeerJS server's (10,000 connections, whole server side)",
    ]);
  });

  it('fails a round with missing CPU data instead of reading it as 0 µs/msg or dropping the round', () => {
    const results = recorded();
    row(results.relay, 2, (r) => r.system === 'ours' && r.scenario === 'relay-1').cpuUsPerMessage = Number.NaN;
    const verdict = judge(results);
    const cpu = verdict.targets.find((t) => t.target.startsWith('CPU'));
    expect(cpu?.pass).to.equal(false);
    expect(cpu?.value).to.be.NaN;
    expect(cpu?.missing).to.deep.equal(['round 2: ours relay-1 CPU figure does not count: no CPU sample for the server']);
    expect(verdict.failures).to.have.length(1);
    expect(verdict.failures[0]).to.match(/^CPU per relayed message ≤ 2 × bare ws: no valid figure \(round 2: /);
  });

  it('fails a paced step that lost 5 % of its messages, however good its latency', () => {
    const results = recorded();
    const step = row(results.sweep, 1, (r) => r.scenario === 'relay-1' && r.fraction === 0.5);
    step.lost = Math.round(step.sent * 0.05);
    step.rate = step.targetRate * 0.95;
    step.latencyMs = latency(0.5);
    expect(sweepRowProblems(step)).to.deep.equal([`${String(step.lost)} of ${String(step.sent)} messages never arrived`, 'delivered 52250/s of 55000/s offered (95.0 %)']);
    const verdict = judge(results);
    const target = verdict.targets.find((t) => t.target === 'p99 at 50 % load ≤ 5 ms on one node');
    expect(target?.pass).to.equal(false);
    expect(target?.missing).to.have.length(1);
    expect(verdict.failures).to.have.length(1);
  });

  it('does not count a paced step with errors or skipped sends, or one that delivered less than it offered', () => {
    const base = paced('ours', 'relay-1', 1, 0.5, 50_000, 3);
    expect(sweepRowProblems(base)).to.deep.equal([]);
    expect(sweepRowProblems({ ...base, errors: 3 })).to.deep.equal(['3 errors']);
    expect(sweepRowProblems({ ...base, skipped: 12 })).to.deep.equal(['12 sends skipped']);
    expect(sweepRowProblems({ ...base, rate: 48_500 })).to.deep.equal(['delivered 48500/s of 50000/s offered (97.0 %)']);
    expect(sweepRowProblems({ ...base, rate: 49_100 })).to.deep.equal([]);
  });

  it('fails every target of a system whose round failed, naming the round', () => {
    const results = recorded();
    results.relay = results.relay.filter((r) => !(r.system === 'peerjs' && r.round === 3));
    results.idle = results.idle.filter((r) => !(r.system === 'peerjs' && r.round === 3));
    results.failures.push({ system: 'peerjs', round: 3, error: 'load generator exited (1)' });
    const verdict = judge(results);
    expect(verdict.failures[0]).to.equal('round 3: peerjs failed: load generator exited (1)');
    const missing = verdict.targets.filter((t) => t.missing.length > 0).map((t) => t.target);
    expect(missing).to.deep.equal([
      'relay on one node ≥ PeerJS server (msgs/s, 200 B)',
      "idle RSS per connection ≤ PeerJS server's (5,000 connections, whole server side)",
      "idle RSS per connection ≤ PeerJS server's (10,000 connections, whole server side)",
    ]);
  });

  it('shows a miss at 10,000 idle connections that 5,000 alone would hide, and an idle round with failed connects', () => {
    const results = recorded();
    for (const r of results.idle) if (r.system === 'ours' && r.target === 10_000) r.perConnectionKiB = 8.9;
    expect(judge(results).failures).to.deep.equal(["idle RSS per connection ≤ PeerJS server's (10,000 connections, whole server side): missed (1.11)"]);
    const partial = recorded();
    const short = row(partial.idle, 1, (r) => r.system === 'ours' && r.target === 5000);
    short.connections = 4990;
    short.failed = 10;
    expect(judge(partial).targets.find((t) => t.target.includes('5,000'))?.missing).to.deep.equal(['round 1: ours idle run at 5000 does not count: 4990 of 5000 connections open']);
  });
});
