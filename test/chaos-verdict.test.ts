// The chaos verdict must fail on every sign that the run did not see what it claims: shown on recorded figures,
// on SDK clients against a relay that hands a message to the wrong client, and on a real run whose scale-out throws.
import { expect } from 'chai';
import { waitFor } from '@messaging-server/testkit';
import { startMiniServer, type MiniServer } from '../packages/client/src/testing/mini-server.js';
import { SHORT, type ChaosConfig } from '@messaging-server/harness/chaos/config';
import { Fleet } from '@messaging-server/harness/chaos/fleet';
import { Ledger } from '@messaging-server/harness/chaos/ledger';
import type { RoomFigures, RoomHalfFigures } from '@messaging-server/harness/chaos/rooms';
import { fleetFigures, runChaos } from '@messaging-server/harness/chaos/run';
import { verdict, type VerdictInput } from '@messaging-server/harness/chaos/verdict';

/** A clean run's figures: one stream, one message acked and received, one scale-out wave fully on the new node. */
function cleanRun(): VerdictInput {
  const ledger = new Ledger(() => 0);
  const seq = ledger.send('a>b');
  ledger.settle('a>b', seq);
  ledger.receive('a>b', seq);
  return {
    config: { ...SHORT, rooms: 0, faults: [{ at: 1, kind: 'scale-out' }] },
    totals: ledger.totals(),
    anomalies: [],
    scaleOut: [{ nodeId: 'node-3', at: 1, waveSize: 4, onNewNode: 4, share: 1, evenedOutAfter: 2 }],
    reconnects: { count: 1, p50: 900, p99: 900, max: 900, unfinished: 0 },
    terminalCloses: [],
    misdelivered: [],
  };
}

/** A clean room run's figures: one room per half, 3 members, 10 messages each acked and at both others once. */
function roomFigures(): RoomFigures {
  const half = (): RoomHalfFigures => ({
    rooms: 1, members: 3, sent: 30, acked: 30, errored: 0, erroredByCode: {}, copiesOwed: 60, copiesDelivered: 60,
    lost: 0, duplicates: 0, outOfOrder: 0, unknownArrivals: 0, repeatsDropped: 0, moves: 3, nodes: ['node-1', 'node-2'],
  });
  return { rooms: 2, members: 6, sent: 60, acked: 60, errored: 0, copies: new Ledger().totals(), removed: [], halves: { receipts: half(), 'v1.1': half() } };
}

describe('chaos verdict on recorded figures', () => {
  it('passes a clean run', () => {
    expect(verdict(cleanRun())).to.deep.equal([]);
  });

  it('fails a fault step that threw and a drained node that exited non-zero', () => {
    const failures = verdict({ ...cleanRun(), anomalies: ['kill at 12 s: no node left', 'node-1 exited 1 after a drain'] });
    expect(failures).to.deep.equal(['anomaly: kill at 12 s: no node left', 'anomaly: node-1 exited 1 after a drain']);
  });

  it('fails a scale-out step that measured no wave instead of passing it vacuously', () => {
    expect(verdict({ ...cleanRun(), scaleOut: [] })).to.deep.equal(['scale-out: 1 step(s) scheduled, 0 wave(s) measured']);
    const empty = { nodeId: 'node-3', at: 1, waveSize: 0, onNewNode: 0, share: 0, evenedOutAfter: null };
    expect(verdict({ ...cleanRun(), scaleOut: [empty] })).to.deep.equal(['scale-out: no session joined after node-3 was added']);
  });

  it('fails terminal closes, unfinished reconnects and arrivals nobody sent', () => {
    const ledger = new Ledger(() => 0);
    const seq = ledger.send('a>b');
    ledger.settle('a>b', seq);
    ledger.receive('a>b', seq);
    ledger.receive('a>b', 7);
    const failures = verdict({
      ...cleanRun(),
      totals: ledger.totals(),
      terminalCloses: [{ userId: 'pair3-a', reason: 'remote', code: 4503 }],
      reconnects: { count: 2, p50: 900, p99: 900, max: 900, unfinished: 1 },
    });
    expect(failures).to.deep.equal([
      '1 arrivals of messages never sent on that stream',
      '1 clients closed for good (remote 4503)',
      '1 reconnects never finished',
    ]);
  });

  it('fails a run that sent nothing', () => {
    expect(verdict({ ...cleanRun(), totals: new Ledger().totals() })).to.deep.equal(['no message was sent: nothing was judged']);
  });

  // Issue 23, acceptance 7: the rooms are held to the same zero-loss rule, per half, and must have been judged at all.
  it('fails room copies lost, doubled or reordered, a removed member, and rooms scheduled but silent or unmeasured', () => {
    const withRooms = { ...cleanRun(), config: { ...SHORT, rooms: 2, faults: [{ at: 1, kind: 'scale-out' as const }] } };
    expect(verdict({ ...withRooms, rooms: roomFigures() })).to.deep.equal([]);
    expect(verdict(withRooms)).to.deep.equal(['rooms: scheduled, but no room figures were measured']);
    const bad = roomFigures();
    bad.halves['v1.1'] = { ...bad.halves['v1.1'], lost: 2, duplicates: 1, outOfOrder: 3 };
    bad.removed = ['chaos-room-2-m1 (removed)'];
    expect(verdict({ ...withRooms, rooms: bad })).to.deep.equal([
      'rooms, v1.1 half: 2 room message copies lost (acked, or never answered, and not delivered)',
      'rooms, v1.1 half: 1 room message copies delivered twice after the SDK dropped repeats',
      'rooms, v1.1 half: 3 acked room messages out of their sender\'s order',
      'rooms: 1 members removed or closed (chaos-room-2-m1 (removed))',
    ]);
    const silent = roomFigures();
    silent.sent = 0;
    silent.halves.receipts.sent = 0;
    expect(verdict({ ...withRooms, rooms: silent })).to.deep.equal(['rooms: no room message was sent: nothing was judged', 'rooms, receipts half: no room message was sent']);
  });
});

/** SDK clients in pairs against the SDK's stand-in relay; `plant` may tamper with the relay before traffic starts. */
async function fleetRun(plant: (server: MiniServer) => void): Promise<VerdictInput> {
  const server = await startMiniServer();
  const ledger = new Ledger();
  const fleet = new Fleet({ gatewayUrls: [server.url], ledger, clock: () => Date.now(), intervalMs: 20, maxInflightPerStream: 5 });
  try {
    await fleet.addPairs(2, 'initial');
    plant(server);
    fleet.startTraffic();
    // Enough traffic on every stream that a misrouted stream shows, whichever stream it is.
    await waitFor(() => ledger.totals().acked >= 40, { what: '40 acked sends' });
    fleet.stopTraffic();
    await waitFor(() => ledger.unsettled === 0, { what: 'every send answered' });
  } finally {
    fleet.close();
    await server.close();
  }
  const config: ChaosConfig = { ...SHORT, rooms: 0, faults: [] };
  return { config, ...fleetFigures(fleet, ledger), anomalies: [], scaleOut: [] };
}

describe('chaos verdict on SDK clients against a relay', function () {
  this.timeout(20_000);

  it('passes when the relay routes every message to its addressee', async () => {
    const result = await fleetRun(() => undefined);
    expect(verdict(result), JSON.stringify(result.totals)).to.deep.equal([]);
  });

  it('fails when the relay hands one stream to the wrong client (planted misroute), although every send was acked', async () => {
    const result = await fleetRun((server) => {
      // From now on the relay delivers pair1-b's messages to pair2-a's connection, frame unchanged (to: pair1-b).
      const wrong = server.connections.get('pair2-a');
      if (!wrong) throw new Error('pair2-a is not connected');
      server.connections.set('pair1-b', wrong);
    });
    const t = result.totals;
    expect(t.errored, 'the relay acked everything').to.equal(0);
    expect(t.silentlyLostBy.ackedNeverArrived, 'acked for pair1-b, never at pair1-b').to.be.greaterThan(0);
    expect(t.unknownArrivals, 'arrived at pair2-a from pair1-a, who never sends to it').to.equal(t.silentlyLostBy.ackedNeverArrived);
    expect(result.misdelivered.every((m) => m.receiver === 'pair2-a' && m.to === 'pair1-b' && m.from === 'pair1-a')).to.equal(true);
    const failures = verdict(result);
    expect(failures).to.include(`${String(t.silentlyLost)} messages silently lost`);
    expect(failures.some((f) => f.includes('reached a client they were not addressed to (first: for pair1-b, at pair2-a)'))).to.equal(true);
  });
});

/** The smallest run with a scale-out: one node, one gateway, two pairs, a few seconds of traffic. */
const TINY: ChaosConfig = {
  ...SHORT,
  name: 'tiny',
  pairs: 2,
  scaleOutPairs: 2,
  initialNodes: 1,
  gateways: 1,
  durationSeconds: 3,
  rooms: 0,
  faults: [{ at: 1, kind: 'scale-out' }],
  sendTimeoutMs: 5000,
};

describe('chaos run with a planted fault', function () {
  this.timeout(60_000);

  it('fails when its scale-out step throws, naming the step and the scale-out check that had nothing to judge', async () => {
    const result = await runChaos(TINY, {
      faultHook: (step) => {
        if (step.kind === 'scale-out') throw new Error('planted: addNode failed');
      },
    });
    expect(result.totals.sent, 'traffic ran around the failed step').to.be.greaterThan(0);
    expect(verdict(result)).to.deep.equal(['anomaly: scale-out at 1 s: planted: addNode failed', 'scale-out: 1 step(s) scheduled, 0 wave(s) measured']);
  });
});

/**
 * Issue 24: the smallest run with a silent network death: two nodes, pair1 with receipts on and pair2 off, the
 * second user of one routed pair silenced at its proxy after 1 s; pings every 500 ms, dead after 1 s.
 */
const SILENT: ChaosConfig = {
  ...SHORT,
  name: 'silent',
  pairs: 2,
  vanishingPairs: 0,
  silentDeathPairs: 1,
  initialNodes: 2,
  gateways: 1,
  durationSeconds: 5,
  rooms: 0,
  pingIntervalMs: 500,
  pingTimeoutMs: 1000,
  faults: [{ at: 1, kind: 'silent-death' }],
  sendTimeoutMs: 5000,
};

describe('chaos run with a silent network death', function () {
  this.timeout(60_000);

  it('passes with receipts on: what the partner saw acked while the network was dead arrives after the reconnect', async () => {
    const result = await runChaos(SILENT);
    const d = result.silentDeath;
    const summary = JSON.stringify({ silentDeath: d, halves: result.halves, timeline: result.timeline });
    expect(d.users, summary).to.equal(1);
    expect(d.frozenConnections, summary).to.equal(1);
    expect(d.notBack, summary).to.equal(0);
    expect(d.toThem.sent, summary).to.be.greaterThan(0);
    expect(d.toThem.delivered, summary).to.equal(d.toThem.acked);
    expect(verdict(result), summary).to.deep.equal([]);
  });

  it('fails when the silenced clients are v1.1 ones (planted): what was acked into the dead socket is lost, and the verdict names the half', async () => {
    const result = await runChaos({ ...SILENT, silentDeathHalf: 'v1.1' });
    const d = result.silentDeath;
    const lost = result.halves['v1.1'].silentlyLost;
    const summary = JSON.stringify({ silentDeath: d, halves: result.halves });
    expect(d.frozenConnections, summary).to.equal(1);
    expect(d.toThem.acked - d.toThem.delivered, 'acked into the dead socket, never delivered').to.be.greaterThan(0);
    expect(result.halves.receipts.silentlyLost, summary).to.equal(0);
    expect(verdict(result), summary).to.include(`v1.1 half: ${String(lost)} messages silently lost`);
  });
});
