// The benchmark verdicts are pure functions over recorded rounds: these tests plant faults in recorded data (a
// missing CPU sample, a paced step that lost 5 % of its messages, a failed round, a missing baseline round, a shape
// without data) and show each one fails, and that nothing missing is read as a zero.
import { expect } from 'chai';
import { parseShapes, parseSystems, readConfig } from '@messaging-server/harness/bench/config';
import { unitsOf } from '@messaging-server/harness/bench/rounds';
import { untilQuiet } from '@messaging-server/harness/bench/scenarios';
import type { LatencySummary } from '@messaging-server/harness/bench/loadgen';
import { fromSaved, receiptsRuns, shapeKey, type BenchResults, type IdleRow, type ReceiptsRow, type RelayRow, type SavedResults, type SweepRow } from '@messaging-server/harness/bench/results';
import { BASE_RUNS, baseTargets, CONNECT_TARGET, judge, receiptsTarget, SHAPE_TARGETS, stormTarget, sweepRowProblems } from '@messaging-server/harness/bench/verdict';

const BASE_FAMILIES = BASE_RUNS.flatMap((run) => Object.values(baseTargets(run.scenario, run.size)));

const ROUNDS = 3;
const SHAPES = ['50x8', '200x4'];
const latency = (p99: number): LatencySummary => ({ count: 10_000, p50: p99 / 4, p90: p99 / 2, p99, max: p99 * 2 });

function relay(system: RelayRow['system'], scenario: RelayRow['scenario'], shape: string, round: number, rate: number, cpuUs: number, size: RelayRow['size'] = 'candidate'): RelayRow {
  return {
    system,
    scenario,
    shape,
    size,
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
    busyElsewhereCores: 0.02,
  };
}

/** A receipts run (issue 24) of ours, off or on. */
function receiptsRow(receipts: boolean, scenario: RelayRow['scenario'], shape: string, size: RelayRow['size'], round: number, allCpuUs: number): ReceiptsRow {
  return { ...relay('ours', scenario, shape, round, 90_000, allCpuUs - 1, size), receipts, allCpuUsPerMessage: allCpuUs, ackLatencyMs: latency(receipts ? 150 : 20) };
}

/** The receipts lines of the verdict, in the order it judges them. */
const RECEIPTS_TARGETS = [
  'receipts CPU/msg ≤ 1.10 × off (one node, 50 pairs × 8, 200 B)',
  'receipts CPU/msg ≤ 1.10 × off (one node, 50 pairs × 8, 2 KB)',
  'receipts CPU/msg ≤ 1.10 × off (across nodes, 50 pairs × 8, 200 B)',
  'receipts CPU/msg ≤ 1.10 × off (one node, 200 pairs × 4, 200 B)',
  'receipts CPU/msg ≤ 1.10 × off (across nodes, 200 pairs × 4, 200 B)',
];

function paced(system: SweepRow['system'], scenario: SweepRow['scenario'], shape: string, round: number, fraction: number, targetRate: number, p99: number): SweepRow {
  return { system, scenario, shape, round, fraction, targetRate, rate: targetRate, latencyMs: latency(p99), skipped: 0, errors: 0, errorCodes: {}, sent: targetRate * 3, lost: 0, busyElsewhereCores: 0.02 };
}

function idle(system: IdleRow['system'], round: number, target: number, kib: number): IdleRow {
  const server = system === 'ours' ? ['node-1', 'node-2', 'gateway'] : [system];
  return { system, round, target, connections: target, failed: 0, serverProcesses: server, baseKiB: 100_000, rssKiB: 100_000 + kib * target, perConnectionKiB: kib, others: {} };
}

/** Three clean rounds in both shapes, with a baseline, in which every target is met. */
function recorded(): BenchResults {
  const results: BenchResults = {
    startedAt: '2026-01-01T00:00:00.000Z',
    machine: { cpus: 2, cpuModel: 'test', node: 'v20', platform: 'linux x64', memoryGiB: 8 },
    config: {
      rounds: ROUNDS,
      shapes: parseShapes(SHAPES.join(',')),
      seconds: 3,
      sweepSeconds: 2,
      idle: [5000, 10_000],
      connects: 2000,
      connectConcurrency: 50,
      stormClients: 5000,
      receiptsShapes: parseShapes(SHAPES.join(',')).map((shape) => ({ ...shape, fractions: [] })),
      systems: ['ours', 'base', 'peerjs', 'ws'],
      baseline: { ref: '18eb00c', commit: '18eb00c23ce45a3cbcb5c88f013fc054a49f4a63' },
      out: 'docs',
      quick: false,
    },
    relay: [],
    sweep: [],
    connect: [],
    idle: [],
    storm: [],
    receipts: [],
    failures: [],
    durationSeconds: 600,
  };
  for (let round = 1; round <= ROUNDS; round += 1) {
    for (const shape of SHAPES) {
      results.relay.push(
        relay('ours', 'relay-1', shape, round, 130_000, 9),
        relay('ours', 'relay-1', shape, round, 60_000, 20, 'sdp'),
        relay('ours', 'relay-2', shape, round, 100_000, 17),
        relay('base', 'relay-1', shape, round, 128_000, 9.1),
        relay('base', 'relay-1', shape, round, 61_000, 19.8, 'sdp'),
        relay('base', 'relay-2', shape, round, 98_000, 17.2),
        relay('peerjs', 'relay-1', shape, round, 100_000, 8.5),
        relay('peerjs', 'relay-1', shape, round, 55_000, 19, 'sdp'),
        relay('ws', 'relay-1', shape, round, 104_000, 8),
      );
      results.sweep.push(paced('ours', 'relay-1', shape, round, 0.5, 65_000, 3), paced('ours', 'relay-2', shape, round, 0.5, 50_000, 4.5), paced('peerjs', 'relay-1', shape, round, 0.5, 50_000, 5));
    }
    results.connect.push({ system: 'ours', round, rate: 4500, latencyMs: latency(40), completed: 2000, failed: 0, busyElsewhereCores: 0.01 });
    results.connect.push({ system: 'peerjs', round, rate: 7000, latencyMs: latency(20), completed: 2000, failed: 0, busyElsewhereCores: 0.01 });
    for (const n of results.config.idle) results.idle.push(idle('ours', round, n, 7), idle('peerjs', round, n, 8));
    results.storm.push({ system: 'ours', round, clients: 5000, reconnected: 5000, failed: 0, lastWelcomeMs: 2400, latencyMs: latency(900) });
    for (const run of receiptsRuns(results.config.receiptsShapes ?? [])) {
      const off = run.scenario === 'relay-1' ? 20 : 40;
      const k = shapeKey(run.shape);
      results.receipts.push(receiptsRow(false, run.scenario, k, run.size, round, off), receiptsRow(true, run.scenario, k, run.size, round, off * 1.08));
    }
  }
  return results;
}

function row<T extends { round: number }>(rows: T[], round: number, match: (r: T) => boolean): T {
  const found = rows.find((r) => r.round === round && match(r));
  if (!found) throw new Error('fixture row missing');
  return found;
}

const missingTargets = (results: BenchResults): string[] =>
  judge(results)
    .targets.filter((t) => t.missing.length > 0)
    .map((t) => t.target);

describe('bench verdicts over recorded rounds', () => {
  it('meets every target on three whole rounds, and judges each shape-dependent target in both shapes', () => {
    const verdict = judge(recorded());
    expect(verdict.failures).to.deep.equal([]);
    const perShape = verdict.targets.filter((t) => t.shape !== undefined);
    const families = [...Object.values(SHAPE_TARGETS), ...BASE_FAMILIES];
    expect(perShape).to.have.length(families.length * SHAPES.length);
    for (const family of families) expect(perShape.filter((t) => t.family === family).map((t) => t.shape)).to.deep.equal(SHAPES);
    expect(verdict.targets.find((t) => t.family === SHAPE_TARGETS.oneNodeVsPeerjs && t.shape === '200x4')?.target).to.equal('one node ≥ 1.2 × PeerJS server msgs/s (200 B), 200 pairs × 4');
    expect(verdict.targets.filter((t) => t.shape === undefined).map((t) => t.target)).to.deep.equal([
      CONNECT_TARGET,
      stormTarget(5000),
      "idle RSS per connection ≤ PeerJS server's (5,000 connections, whole server side)",
      "idle RSS per connection ≤ PeerJS server's (10,000 connections, whole server side)",
      ...RECEIPTS_TARGETS,
    ]);
  });

  it('holds CPU per message with receipts on within 1.10 × off, per run, and reports a ratio over it with its figure', () => {
    const results = recorded();
    for (const r of results.receipts) if (r.receipts && r.scenario === 'relay-2' && r.shape === '50x8') r.allCpuUsPerMessage = 40 * 1.15;
    // The relaying node's own figure is not what is judged: every server process is.
    for (const r of results.receipts) if (r.receipts && r.scenario === 'relay-1') r.cpuUsPerMessage = 100;
    expect(judge(results).failures).to.deep.equal(['receipts CPU/msg ≤ 1.10 × off (across nodes, 50 pairs × 8, 200 B): missed (1.150 ×)']);
    const first = judge(results).targets.find((t) => t.target === RECEIPTS_TARGETS[0]);
    expect(first?.pass).to.equal(true);
    expect(first?.value).to.be.closeTo(1.08, 1e-9);
  });

  it('fails a receipts line whose round is missing, lacks a CPU sample or timed no ack, and each placement when no receipts shape ran', () => {
    const results = recorded();
    results.receipts = results.receipts.filter((r) => !(r.receipts && r.round === 2 && r.shape === '200x4' && r.scenario === 'relay-1'));
    row(results.receipts, 1, (r) => !r.receipts && r.shape === '50x8' && r.size === 'sdp').allCpuUsPerMessage = Number.NaN;
    row(results.receipts, 3, (r) => r.receipts && r.shape === '200x4' && r.scenario === 'relay-2').ackLatencyMs = { count: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN };
    expect(judge(results).failures).to.deep.equal([
      'receipts CPU/msg ≤ 1.10 × off (one node, 50 pairs × 8, 2 KB): no valid figure (round 1: receipts off relay-1 sdp run in 50x8 does not count: no CPU sample for a server process)',
      'receipts CPU/msg ≤ 1.10 × off (one node, 200 pairs × 4, 200 B): no valid figure (round 2: no receipts on relay-1 candidate run in 200x4)',
      'receipts CPU/msg ≤ 1.10 × off (across nodes, 200 pairs × 4, 200 B): no valid figure (round 3: receipts on relay-2 candidate run in 200x4 does not count: no ack timed)',
    ]);
    const none = recorded();
    none.config.receiptsShapes = [];
    expect(judge(none).failures).to.deep.equal([
      `${receiptsTarget('relay-1', undefined, 'candidate')}: no valid figure (no receipts shape configured)`,
      `${receiptsTarget('relay-2', undefined, 'candidate')}: no valid figure (no receipts shape configured)`,
    ]);
    delete none.config.receiptsShapes;
    expect(judge(none).failures, 'a run saved before the receipts scenario has no receipts lines').to.deep.equal([]);
  });

  it('judges issue 16 ratios at their thresholds: 1.2 × PeerJS, 0.75 × one node at ≤ 2 × its CPU, 0.75 × PeerJS p99, 0.6 × connects', () => {
    const results = recorded();
    for (const r of results.relay) if (r.system === 'ours' && r.scenario === 'relay-1' && r.size === 'candidate' && r.shape === '50x8') r.rate = 118_000;
    for (const r of results.relay) if (r.system === 'ours' && r.scenario === 'relay-2' && r.shape === '200x4') r.cpuUsPerMessage = 18.5;
    for (const r of results.sweep) if (r.system === 'peerjs' && r.shape === '200x4') r.latencyMs = latency(3.8);
    for (const r of results.connect) if (r.system === 'ours') r.rate = 4000;
    expect(judge(results).failures).to.deep.equal([
      'one node ≥ 1.2 × PeerJS server msgs/s (200 B), 50 pairs × 8: missed (1.180 ×)',
      'msgs/s ≥ 0.95 × base (one node, 200 B), 50 pairs × 8: missed (0.922 ×)',
      "across nodes CPU per message ≤ 2.0 × one node's (both nodes counted), 200 pairs × 4: missed (2.056 ×)",
      "p99 at 50 % load on one node ≤ 0.75 × PeerJS server's, 200 pairs × 4: missed (0.789 ×)",
      "p99 at 50 % load across nodes ≤ PeerJS server's one-node p99, 200 pairs × 4: missed (1.184 ×)",
      'CPU per message ≤ 1.05 × base (across nodes, 200 B), 200 pairs × 4: missed (1.076 ×)',
      "connect ≥ 0.6 × PeerJS server's completions/s: missed (0.571 ×)",
    ]);
    // Across nodes at 100,000 against one node's 118,000 is 0.85 ×: still ≥ 0.75, so that target holds.
    expect(judge(results).targets.find((t) => t.family === SHAPE_TARGETS.crossVsOne && t.shape === '50x8')).to.include({ pass: true });
  });

  it('holds ours within 5 % of the baseline: 6 % more CPU or 6 % fewer msgs/s fails, 4 % passes', () => {
    const results = recorded();
    for (const r of results.relay) if (r.system === 'base' && r.scenario === 'relay-2') Object.assign(r, { rate: 106_500, cpuUsPerMessage: 16 });
    expect(judge(results).failures).to.deep.equal([
      'CPU per message ≤ 1.05 × base (across nodes, 200 B), 50 pairs × 8: missed (1.063 ×)',
      'msgs/s ≥ 0.95 × base (across nodes, 200 B), 50 pairs × 8: missed (0.939 ×)',
      'CPU per message ≤ 1.05 × base (across nodes, 200 B), 200 pairs × 4: missed (1.063 ×)',
      'msgs/s ≥ 0.95 × base (across nodes, 200 B), 200 pairs × 4: missed (0.939 ×)',
    ]);
    const close = recorded();
    for (const r of close.relay) if (r.system === 'base' && r.scenario === 'relay-2') Object.assign(r, { rate: 104_000, cpuUsPerMessage: 16.4 });
    expect(judge(close).failures).to.deep.equal([]);
  });

  it('holds 2 KB messages on one node to the baseline too: a regression there fails even when 200 B holds', () => {
    const results = recorded();
    for (const r of results.relay) if (r.system === 'base' && r.size === 'sdp' && r.shape === '200x4') Object.assign(r, { rate: 66_000, cpuUsPerMessage: 18 });
    expect(judge(results).failures).to.deep.equal([
      'CPU per message ≤ 1.05 × base (one node, 2 KB), 200 pairs × 4: missed (1.111 ×)',
      'msgs/s ≥ 0.95 × base (one node, 2 KB), 200 pairs × 4: missed (0.909 ×)',
    ]);
  });

  it('fails the baseline targets of a round whose base run is missing, naming the round, and leaves the others whole', () => {
    const results = recorded();
    results.relay = results.relay.filter((r) => !(r.system === 'base' && r.round === 2));
    results.failures.push({ system: 'base', round: 2, error: 'gateway-1 exited during start' });
    const verdict = judge(results);
    expect(verdict.failures[0]).to.equal('round 2: base failed: gateway-1 exited during start');
    const missing = verdict.targets.filter((t) => t.missing.length > 0);
    expect(missing).to.have.length(2 * BASE_FAMILIES.length);
    expect(missing.every((t) => BASE_FAMILIES.includes(t.family))).to.equal(true);
    for (const t of missing) {
      expect(t.value).to.be.NaN;
      expect(t.missing).to.have.length(1);
      expect(t.missing[0]).to.match(/^round 2: no base (relay-1 (candidate|sdp)|relay-2 candidate) (closed-loop run|CPU figure) in (50x8|200x4)$/);
    }
    expect(verdict.failures).to.have.length(1 + missing.length);
  });

  it('fails every baseline target when a baseline was asked for and no base run recorded anything', () => {
    const results = recorded();
    results.relay = results.relay.filter((r) => r.system !== 'base');
    expect(missingTargets(results)).to.have.length(2 * BASE_FAMILIES.length);
    expect(judge(results).failures.every((f) => f.includes('× base') && f.includes('no valid figure'))).to.equal(true);
  });

  it('has no baseline targets when no baseline was asked for, whatever base rows lie around', () => {
    const results = recorded();
    delete results.config.baseline;
    const verdict = judge(results);
    expect(verdict.failures).to.deep.equal([]);
    expect(verdict.targets.some((t) => t.family.includes('base'))).to.equal(false);
  });

  it('fails every target of a shape that has no data, and only those', () => {
    const results = recorded();
    results.relay = results.relay.filter((r) => r.shape !== '200x4');
    results.sweep = results.sweep.filter((r) => r.shape !== '200x4');
    const verdict = judge(results);
    const missing = verdict.targets.filter((t) => t.missing.length > 0);
    expect(missing).to.have.length(Object.keys(SHAPE_TARGETS).length + BASE_FAMILIES.length);
    expect(missing.every((t) => t.shape === '200x4' && t.target.endsWith(', 200 pairs × 4'))).to.equal(true);
    expect(missing.every((t) => t.missing.length === ROUNDS)).to.equal(true);
    expect(verdict.targets.filter((t) => t.shape === '50x8').every((t) => t.pass)).to.equal(true);
    expect(verdict.failures).to.have.length(missing.length);
  });

  it('fails the run when no shape is configured at all', () => {
    const results = recorded();
    results.config.shapes = [];
    expect(judge(results).failures[0]).to.equal('no relay shape configured: nothing was relayed');
  });

  it("needs PeerJS server's paced step to count too: an invalid PeerJS step leaves both p99 targets without data", () => {
    const results = recorded();
    row(results.sweep, 3, (r) => r.system === 'peerjs' && r.shape === '50x8').skipped = 40;
    expect(missingTargets(results)).to.deep.equal([`${SHAPE_TARGETS.p99OneVsPeerjs}, 50 pairs × 8`, `${SHAPE_TARGETS.p99CrossVsPeerjs}, 50 pairs × 8`]);
  });

  it('never reads a zero reference as a ratio: a base CPU figure of 0 µs leaves the target without data', () => {
    const results = recorded();
    row(results.relay, 1, (r) => r.system === 'base' && r.scenario === 'relay-1' && r.shape === '50x8').cpuUsPerMessage = 0;
    const target = judge(results).targets.find((t) => t.family === baseTargets('relay-1', 'candidate').cpu && t.shape === '50x8');
    expect(target?.pass).to.equal(false);
    expect(target?.missing).to.deep.equal(['a reference figure of 0, which no ratio can be taken against']);
  });

  it('fails a round with missing CPU data instead of reading it as 0 µs/msg or dropping the round', () => {
    const results = recorded();
    row(results.relay, 2, (r) => r.system === 'ws' && r.shape === '50x8').cpuUsPerMessage = Number.NaN;
    const verdict = judge(results);
    const cpu = verdict.targets.find((t) => t.family === SHAPE_TARGETS.cpuVsWs && t.shape === '50x8');
    expect(cpu?.pass).to.equal(false);
    expect(cpu?.value).to.be.NaN;
    expect(cpu?.missing).to.deep.equal(['round 2: ws relay-1 candidate CPU figure in 50x8 does not count: no CPU sample for the server']);
    expect(verdict.failures).to.deep.equal([`${SHAPE_TARGETS.cpuVsWs}, 50 pairs × 8: no valid figure (${cpu?.missing[0] ?? ''})`]);
  });

  it("does not count a relay, paced or connect run while the machine was busy with other people's work, nor one without that reading", () => {
    const results = recorded();
    row(results.relay, 2, (r) => r.system === 'base' && r.scenario === 'relay-2' && r.shape === '50x8').busyElsewhereCores = 0.4;
    delete row(results.sweep, 3, (r) => r.system === 'ours' && r.scenario === 'relay-1' && r.shape === '200x4').busyElsewhereCores;
    row(results.connect, 1, (r) => r.system === 'peerjs').busyElsewhereCores = 0.9;
    const verdict = judge(results);
    expect(verdict.targets.filter((t) => t.missing.length > 0).map((t) => [t.target, t.missing])).to.deep.equal([
      ['CPU per message ≤ 1.05 × base (across nodes, 200 B), 50 pairs × 8', ['round 2: base relay-2 candidate CPU figure in 50x8 does not count: the machine was busy elsewhere (0.40 cores)']],
      ['msgs/s ≥ 0.95 × base (across nodes, 200 B), 50 pairs × 8', ['round 2: base relay-2 candidate closed-loop run in 50x8 does not count: the machine was busy elsewhere (0.40 cores)']],
      [`${SHAPE_TARGETS.p99OneVsPeerjs}, 200 pairs × 4`, ["round 3: ours relay-1 paced step at 50 % in 200x4 does not count: no reading of the machine's other work"]],
      [CONNECT_TARGET, ['round 1: peerjs connect run does not count: the machine was busy elsewhere (0.90 cores)']],
    ]);
  });

  it('fails a paced step that lost 5 % of its messages, however good its latency', () => {
    const results = recorded();
    const step = row(results.sweep, 1, (r) => r.system === 'ours' && r.scenario === 'relay-1' && r.shape === '200x4');
    step.lost = Math.round(step.sent * 0.05);
    step.rate = step.targetRate * 0.95;
    step.latencyMs = latency(0.5);
    expect(sweepRowProblems(step)).to.deep.equal([`${String(step.lost)} of ${String(step.sent)} messages never arrived`, 'delivered 61750/s of 65000/s offered (95.0 %)']);
    expect(missingTargets(results)).to.deep.equal([`${SHAPE_TARGETS.p99OneVsPeerjs}, 200 pairs × 4`]);
  });

  it('does not count a paced step with errors or skipped sends, or one that delivered less than it offered', () => {
    const base = paced('ours', 'relay-1', '50x8', 1, 0.5, 50_000, 3);
    expect(sweepRowProblems(base)).to.deep.equal([]);
    expect(sweepRowProblems({ ...base, errors: 3 })).to.deep.equal(['3 errors']);
    expect(sweepRowProblems({ ...base, skipped: 12 })).to.deep.equal(['12 sends skipped']);
    expect(sweepRowProblems({ ...base, rate: 48_500 })).to.deep.equal(['delivered 48500/s of 50000/s offered (97.0 %)']);
    expect(sweepRowProblems({ ...base, rate: 49_100 })).to.deep.equal([]);
  });

  it('fails every target of a system whose round failed, naming the round', () => {
    const results = recorded();
    results.relay = results.relay.filter((r) => !(r.system === 'peerjs' && r.round === 3));
    results.sweep = results.sweep.filter((r) => !(r.system === 'peerjs' && r.round === 3));
    results.connect = results.connect.filter((r) => !(r.system === 'peerjs' && r.round === 3));
    results.idle = results.idle.filter((r) => !(r.system === 'peerjs' && r.round === 3));
    results.failures.push({ system: 'peerjs', round: 3, error: 'load generator exited (1)' });
    const verdict = judge(results);
    expect(verdict.failures[0]).to.equal('round 3: peerjs failed: load generator exited (1)');
    const againstPeerjs = [SHAPE_TARGETS.oneNodeVsPeerjs, SHAPE_TARGETS.oneNodeVsPeerjsSdp, SHAPE_TARGETS.p99OneVsPeerjs, SHAPE_TARGETS.p99CrossVsPeerjs];
    expect(missingTargets(results)).to.deep.equal([
      ...againstPeerjs.map((t) => `${t}, 50 pairs × 8`),
      ...againstPeerjs.map((t) => `${t}, 200 pairs × 4`),
      CONNECT_TARGET,
      "idle RSS per connection ≤ PeerJS server's (5,000 connections, whole server side)",
      "idle RSS per connection ≤ PeerJS server's (10,000 connections, whole server side)",
    ]);
  });

  it('judges the reconnect storm at 3,000 ms, and leaves it without data when a client did not come back', () => {
    const slow = recorded();
    row(slow.storm, 2, () => true).lastWelcomeMs = 3100;
    row(slow.storm, 3, () => true).lastWelcomeMs = 3050;
    expect(judge(slow).failures).to.deep.equal([`${stormTarget(5000)}: missed (3050 ms)`]);
    const lost = recorded();
    Object.assign(row(lost.storm, 1, () => true), { reconnected: 4999, failed: 1, firstError: '/connect 503' });
    expect(judge(lost).targets.find((t) => t.target === stormTarget(5000))?.missing).to.deep.equal([
      'round 1: ours reconnect storm does not count: 4999 of 5000 clients back, 1 failed (/connect 503)',
    ]);
  });

  it('shows a miss at 10,000 idle connections that 5,000 alone would hide, and an idle round with failed connects', () => {
    const results = recorded();
    for (const r of results.idle) if (r.system === 'ours' && r.target === 10_000) r.perConnectionKiB = 8.9;
    expect(judge(results).failures).to.deep.equal(["idle RSS per connection ≤ PeerJS server's (10,000 connections, whole server side): missed (1.113 ×)"]);
    const partial = recorded();
    const short = row(partial.idle, 1, (r) => r.system === 'ours' && r.target === 5000);
    short.connections = 4990;
    short.failed = 10;
    expect(judge(partial).targets.find((t) => t.target.startsWith('idle') && t.target.includes('5,000'))?.missing).to.deep.equal(['round 1: ours idle run at 5000 does not count: 4990 of 5000 connections open']);
  });

  it('reads a run saved by the one-shape harness, giving its rows that shape and judging it on it alone', () => {
    const now = recorded();
    const { shapes: _shapes, baseline: _baseline, ...config } = now.config;
    const saved: SavedResults = {
      ...now,
      config: { ...config, pairs: 50, window: 8, fractions: [0.25, 0.5, 0.75, 0.9] },
      relay: now.relay.filter((r) => r.shape === '50x8').map(({ shape: _shape, ...r }) => r as RelayRow),
      sweep: now.sweep.filter((r) => r.shape === '50x8').map(({ shape: _shape, ...r }) => r as SweepRow),
    };
    delete saved.failures;
    const results = fromSaved(saved);
    expect(results.config.shapes).to.deep.equal([{ pairs: 50, window: 8, fractions: [0.25, 0.5, 0.75, 0.9] }]);
    expect(results.relay.every((r) => r.shape === '50x8')).to.equal(true);
    expect(judge(results).failures).to.deep.equal([]);
  });
});

describe('bench knobs', () => {
  it('reads shapes as <pairs>x<in flight>: the first gets the full paced sweep, the others the judged 50 % step', () => {
    expect(parseShapes('50x8, 200x4')).to.deep.equal([
      { pairs: 50, window: 8, fractions: [0.25, 0.5, 0.75, 0.9] },
      { pairs: 200, window: 4, fractions: [0.5] },
    ]);
    expect(() => parseShapes('50*8')).to.throw('BENCH_SHAPES: "50*8" is not <pairs>x<in flight per pair>, for example 200x4');
    expect(() => parseShapes('50x3')).to.throw('needs at least 1 pair and an even number (≥ 2) in flight per pair');
    expect(() => parseShapes('50x8,50x8')).to.throw('BENCH_SHAPES names 50x8 twice');
    expect(() => parseShapes(' , ')).to.throw('BENCH_SHAPES names no shape');
  });

  it('runs base right after ours when a baseline is given, and refuses base without one', () => {
    expect(parseSystems(undefined, undefined)).to.deep.equal(['ours', 'peerjs', 'ws']);
    expect(parseSystems(undefined, '18eb00c')).to.deep.equal(['ours', 'base', 'peerjs', 'ws']);
    expect(parseSystems('peerjs,ours', 'HEAD~3')).to.deep.equal(['peerjs', 'ours', 'base']);
    expect(() => parseSystems('ours,base', undefined)).to.throw('BENCH_SYSTEMS names base, but BENCH_BASELINE does not say which commit it is');
    expect(() => parseSystems('ours,nginx', undefined)).to.throw('BENCH_SYSTEMS: unknown nginx');
  });

  it('takes turns with ours and base as one unit, so their runs alternate within it; base alone runs alone', () => {
    expect(unitsOf(['ours', 'base', 'peerjs', 'ws'])).to.deep.equal([['ours', 'base'], ['peerjs'], ['ws']]);
    expect(unitsOf(['peerjs', 'base', 'ours'])).to.deep.equal([['peerjs'], ['ours', 'base']]);
    expect(unitsOf(['peerjs', 'base'])).to.deep.equal([['peerjs'], ['base']]);
  });

  it('defaults to both shapes, says which knob replaced BENCH_PAIRS, and rejects numbers that are not counts', () => {
    const config = readConfig({}, '/out');
    expect(config.shapes.map((s) => [s.pairs, s.window])).to.deep.equal([[50, 8], [200, 4]]);
    expect(config.receiptsShapes?.map((s) => [s.pairs, s.window, s.fractions.length])).to.deep.equal([[50, 8, 0], [200, 4, 0]]);
    expect(readConfig({ BENCH_RECEIPTS_SHAPES: '50x8' }, '/out').receiptsShapes?.map((s) => s.pairs)).to.deep.equal([50]);
    expect(config.baselineRef).to.equal(undefined);
    expect(readConfig({ BENCH_BASELINE: '18eb00c', BENCH_QUICK: '1' }, '/out')).to.include({ baselineRef: '18eb00c', rounds: 1, quick: true });
    expect(() => readConfig({ BENCH_PAIRS: '200' }, '/out')).to.throw('BENCH_PAIRS is replaced by BENCH_SHAPES');
    expect(() => readConfig({ BENCH_ROUNDS: '2.5' }, '/out')).to.throw('BENCH_ROUNDS=2.5 is not a positive whole number');
    expect(() => readConfig({ BENCH_IDLE: '5000,lots' }, '/out')).to.throw('BENCH_IDLE=5000,lots is not a list of positive counts');
  });
});

describe('bench runs disturbed by other work', () => {
  /** A measurement whose n-th attempt saw `busy[n]` cores of other work, recorded as the runner records it. */
  function attempts(results: BenchResults, busy: number[]): { measure: () => Promise<RelayRow[]>; calls: () => number } {
    let calls = 0;
    return {
      calls: () => calls,
      measure: () => {
        const r = relay('ours', 'relay-1', '50x8', 1, 100_000 + calls, 9);
        r.busyElsewhereCores = busy[calls] as number;
        calls += 1;
        results.relay.push(r);
        return Promise.resolve([r]);
      },
    };
  }

  it('measures again while the machine was busy elsewhere, and keeps only the last attempt', async () => {
    const results = recorded();
    const before = results.relay.length;
    const run = attempts(results, [0.5, 0.3, 0.05]);
    await untilQuiet({ config: results.config, results, log: () => undefined }, 'test run', run.measure, 0);
    expect(run.calls()).to.equal(3);
    expect(results.relay.slice(before).map((r) => r.busyElsewhereCores)).to.deep.equal([0.05]);
  });

  it('stops after 3 attempts and leaves the last one for the verdict to refuse; a quiet first attempt is kept at once', async () => {
    const results = recorded();
    const before = results.relay.length;
    const busy = attempts(results, [0.5, 0.3, 0.2, 0.01]);
    await untilQuiet({ config: results.config, results, log: () => undefined }, 'test run', busy.measure, 0);
    expect(busy.calls()).to.equal(3);
    expect(results.relay.slice(before).map((r) => r.busyElsewhereCores)).to.deep.equal([0.2]);
    const quiet = attempts(results, [0.04, 0.5]);
    await untilQuiet({ config: results.config, results, log: () => undefined }, 'test run', quiet.measure, 0);
    expect(quiet.calls()).to.equal(1);
  });
});
