import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { percentiles } from '../scripts/chaos/stats.js';
import { figures, spread } from '../scripts/scale/analysis.js';
import { TINY } from '../scripts/scale/config.js';
import type { LoadResult } from '../scripts/scale/loadgen.js';
import { writeReport } from '../scripts/scale/report.js';
import { runScale, type ScaleResult } from '../scripts/scale/run.js';
import type { ResourceSample } from '../scripts/scale/sampler.js';
import { acceptance, missingFigures, verdict } from '../scripts/scale/verdict.js';

const T0 = 1_000_000;

function resources(at: number, scale: number): ResourceSample {
  return {
    at,
    nodeRssKiB: { 'node-1': 100_000 + scale, 'node-2': 100_000 + scale },
    nodeConnections: { 'node-1': 50, 'node-2': 50 },
    gatewayRssKiB: [90_000, 90_000],
    etcdRssKiB: 30_000,
    memcachedRssKiB: 8_000,
    etcd: { received: { Txn: 10 * scale, LeaseKeepAlive: 2 * scale }, mvcc: { put_total: 10 * scale, events_total: 30 * scale, watcher_total: 3 } },
    memcached: { cmd_get: 100 * scale, cmd_set: 50 * scale, cmd_touch: 0, delete_hits: 5 * scale, delete_misses: 0, curr_items: 100, bytes: 30_000 },
    cpuSeconds: { 'node:node-1': scale, 'node:node-2': scale, loadgen: scale / 2 },
    machine: { processes: 3 * scale, interrupts: 0.1 * scale, steal: 0, total: 4 * scale },
  };
}

function emptyLoad(): LoadResult {
  const none = percentiles([]);
  return {
    allocations: { byGateway: [{ 'node-3': { first: T0 + 5200, count: 10 } }, { 'node-3': { first: T0 + 5300, count: 9 } }] },
    latency: { sent: 100, received: 100, acked: 100, carriedIn: 0, errors: {}, skipped: 0, crossNode: percentiles([2, 3, 4]), sameNode: none, buckets: [], reconnectMs: none, churnConnectMs: none, warmupCrossNode: none },
    failedAttempts: 0,
    closesByCode: {},
    eventLoopDelayMs: { p50: 1, p99: 2, max: 3 },
  };
}

/** A complete, passing run of 2 settled nodes and one that joins at +5 s: tests break one part at a time. */
function fixture(): ScaleResult {
  return {
    config: { ...TINY, settleSeconds: 3 },
    startedAt: new Date(T0).toISOString(),
    machine: { cpus: 2, cpuModel: 'test', memoryGiB: 1, node: 'v20' },
    runStartedAt: T0 - 5000,
    warmupStartedAt: T0 - 1000,
    trafficStartedAt: T0,
    trafficEndedAt: T0 + 10_000,
    durationSeconds: 30,
    phaseSeconds: { cluster: 2, idle: 1, pairs: 1, warmup: 1, traffic: 10, stop: 1 },
    opened: { idle: TINY.idleClients, pairClients: 2 * TINY.pairs },
    timeline: [
      { at: T0 + 4900, event: 'join', nodeId: 'node-3' },
      { at: T0 + 5100, event: 'joined', nodeId: 'node-3' },
      { at: T0 + 7000, event: 'drain', nodeId: 'node-1' },
      { at: T0 + 8000, event: 'drained', nodeId: 'node-1' },
    ],
    nodeSamples: [
      { at: T0 + 1000, connections: { 'node-1': 50, 'node-2': 52 }, draining: [] },
      { at: T0 + 6000, connections: { 'node-1': 50, 'node-2': 54, 'node-3': 0 }, draining: [] },
      { at: T0 + 7500, connections: { 'node-1': 10, 'node-2': 55, 'node-3': 45 }, draining: ['node-1'] },
    ],
    nodeStartedAt: { 'node-1': T0 - 9000, 'node-2': T0 - 9000, 'node-3': T0 + 5000, 'node-4': T0 - 9000 },
    baseline: resources(T0 - 3000, 0),
    afterOpen: resources(T0 - 1500, 0),
    resourceSamples: [resources(T0 + 500, 1), resources(T0 + 5500, 6)],
    load: emptyLoad(),
    gatewayAllocations: [{ 'node-3': 10 }, { 'node-3': 9 }],
    samplerErrors: [],
  };
}

/** The verdict functions: a figure without data is a failure, never a zero that passes. */
describe('scale run verdicts', () => {
  it('passes a complete run within the limits', () => {
    const result = fixture();
    expect(verdict(result, figures(result))).to.deep.equal([]);
  });

  it('judges spread among settled active nodes only: a draining node and a node that just joined are left out', () => {
    const points = spread(fixture()).points;
    expect(points.map((p) => p.eligible)).to.deep.equal([2, 2, 1]);
    expect(points[1]?.max).to.equal(54);
    expect(points[1]?.over).to.be.closeTo(54 / 52 - 1, 1e-9);
  });

  it('fails a gateway that never allocated to a joined node, instead of counting it as no delay', () => {
    const result = fixture();
    result.load.allocations.byGateway[1] = {};
    expect(missingFigures(result, figures(result))).to.include('missing: gateway-2 → node-3 was never allocated to (or its registration never seen)');
  });

  it('fails a run with no etcd or memcached readings, no latency samples, no RSS and no settled node', () => {
    const result = fixture();
    result.resourceSamples = [];
    result.load.latency.crossNode = percentiles([]);
    result.nodeSamples = result.nodeSamples.map((s) => ({ at: s.at, connections: {}, draining: s.draining }));
    const failures = missingFigures(result, figures(result));
    expect(failures).to.include('missing: fewer than two etcd and memcached readings during the run');
    expect(failures).to.include('missing: no cross-node message arrived');
    expect(failures).to.include('missing: no RSS sample with connections');
    expect(failures).to.include('missing: no sample with settled active nodes, so no spread');
  });

  it('fails readings that show no etcd or memcached work at all', () => {
    const result = fixture();
    result.resourceSamples = [resources(T0 + 500, 1), resources(T0 + 5500, 1)];
    const failures = missingFigures(result, figures(result));
    expect(failures).to.include('missing: etcd served no request during the run');
    expect(failures).to.include('missing: memcached served no command during the run');
  });

  it('fails slow propagation, an uneven spread and a run over its budget', () => {
    const result = fixture();
    const first = result.load.allocations.byGateway[1]?.['node-3'];
    if (first) first.first = T0 + 5000 + 1500;
    result.nodeSamples.push({ at: T0 + 9000, connections: { 'node-2': 80, 'node-4': 40 }, draining: [] });
    result.durationSeconds = TINY.budgetSeconds + 1;
    const failures = acceptance(result, figures(result));
    expect(failures).to.have.length(3);
    expect(failures[0]).to.match(/p99 1500 ms > 1000 ms/);
    expect(failures[1]).to.match(/node-2 had 80 connections .* 33\.3 % over the mean 60/);
    expect(failures[2]).to.match(/over its 90 s budget/);
  });
});

/**
 * The scale script's own code at a size CI affords: 2 nodes, 100 idle clients and 10 pairs through 2 gateways, two
 * joins and two drains in 8 s. Every figure of the report must come out measured.
 */
describe('scale run (tiny)', function () {
  this.timeout(120_000);
  let result: ScaleResult;
  let dir: string;

  before(async () => {
    result = await runScale(TINY);
    dir = mkdtempSync(join(tmpdir(), 'scale-report-'));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('measures every figure, and every gateway allocates to each joined node within 1 s', () => {
    const f = figures(result);
    const summary = JSON.stringify({ propagation: f.propagation, worst: f.spread.worst, timeline: result.timeline, errors: result.samplerErrors });
    expect(missingFigures(result, f), summary).to.deep.equal([]);
    expect(f.propagation.joins.map((j) => j.nodeId), summary).to.deep.equal(['node-3', 'node-4']);
    expect(f.propagation.delays.p99, summary).to.be.a('number').at.most(1000);
    expect(result.timeline.filter((e) => e.event === 'drained').map((e) => e.nodeId)).to.deep.equal(['node-1', 'node-2']);
  });

  it('agrees with the gateways\' own allocation counters', () => {
    result.gatewayAllocations.forEach((counted, g) => {
      const logged = Object.fromEntries(Object.entries(result.load.allocations.byGateway[g] ?? {}).map(([id, a]) => [id, a.count]));
      expect(logged, `gateway-${String(g + 1)}`).to.deep.equal(counted);
    });
  });

  it('delivers the pairs\' messages across nodes while nodes come and go', () => {
    const l = result.load.latency;
    const answered = l.acked + Object.values(l.errors).reduce((a, b) => a + b, 0);
    expect(l.crossNode.count).to.be.greaterThan(200);
    // Every ack stands for a message handed to its recipient, so receipts cover the acks; only a message in flight
    // when the phase started can have arrived before it while its ack came after. A sender closed by a drain before
    // its answer came loses that answer (the SDK reports CONNECTION_LOST), so not every send is answered; nearly all
    // must be.
    expect(l.received + l.carriedIn, JSON.stringify(l)).to.be.at.least(l.acked);
    expect(answered, JSON.stringify(l)).to.be.at.least(0.95 * l.sent);
    expect(l.reconnectMs.count, 'drained clients came back').to.be.greaterThan(0);
  });

  it('writes the Markdown report, its JSON and the SVG plot', () => {
    const path = writeReport(result, figures(result), dir);
    const md = readFileSync(path, 'utf8');
    for (const heading of ['## Acceptance 5', '## Allocation spread over time', '## Watch propagation', '## Cross-node latency', '## etcd and memcached', '## Connections per node', '## Extrapolation']) {
      expect(md).to.include(heading);
    }
    expect(readFileSync(join(dir, 'scale.svg'), 'utf8')).to.match(/^<svg[\s\S]*<\/svg>\n$/);
    expect(existsSync(join(dir, 'scale.json'))).to.equal(true);
  });
});
