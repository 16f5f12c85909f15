import { expect } from 'chai';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHORT } from '@messaging-server/harness/chaos/config';
import { Ledger } from '@messaging-server/harness/chaos/ledger';
import { writeReport } from '@messaging-server/harness/chaos/report';
import { runChaos, type ChaosResult } from '@messaging-server/harness/chaos/run';
import { verdict } from '@messaging-server/harness/chaos/verdict';

/** The chaos run's bookkeeping must catch what it claims to catch, or a "0 silently lost" means nothing. */
describe('chaos ledger', () => {
  it('counts acked-and-received as fine and errors by code, with no silent loss', () => {
    const ledger = new Ledger(() => 0);
    const a = ledger.send('a>b');
    const b = ledger.send('a>b');
    ledger.settle('a>b', a);
    ledger.receive('a>b', a);
    ledger.settle('a>b', b, 'RELAY_FAILED');
    const t = ledger.totals();
    expect(t).to.include({ sent: 2, acked: 1, errored: 1, silentlyLost: 0, duplicates: 0, ackedOutOfOrder: 0 });
    expect(t.erroredByCode).to.deep.equal({ RELAY_FAILED: 1 });
  });

  it('counts an acked message that never arrived, a TIMEOUT and an unanswered send as silently lost', () => {
    const ledger = new Ledger(() => 0);
    ledger.settle('a>b', ledger.send('a>b'));
    ledger.settle('a>b', ledger.send('a>b'), 'TIMEOUT');
    ledger.send('a>b');
    const t = ledger.totals();
    expect(t.silentlyLost).to.equal(3);
    expect(t.silentlyLostBy).to.deep.equal({ ackedNeverArrived: 1, noAnswer: 1, unsettled: 1 });
    expect(ledger.unsettled).to.equal(1);
    expect(ledger.ackedNotReceived).to.equal(1);
  });

  it('flags duplicates and acked messages that overtook each other, but not an errored one arriving late', () => {
    const ledger = new Ledger(() => 0);
    const [m1, m2, m3, m4] = [1, 2, 3, 4].map(() => ledger.send('a>b')) as [number, number, number, number];
    for (const m of [m1, m2, m4]) ledger.settle('a>b', m);
    ledger.settle('a>b', m3, 'CONNECTION_LOST');
    ledger.receive('a>b', m2);
    ledger.receive('a>b', m1); // acked, overtaken by acked m2
    ledger.receive('a>b', m4);
    ledger.receive('a>b', m3); // its send errored: "fate unknown", so a late arrival is not an acked inversion
    ledger.receive('a>b', m4);
    const t = ledger.totals();
    expect(t).to.include({ ackedOutOfOrder: 1, outOfOrderAny: 2, duplicates: 1, silentlyLost: 0 });
    expect(t.erroredButDeliveredByCode).to.deep.equal({ CONNECTION_LOST: 1 });
  });
});

/**
 * Issue 5, acceptance 1 and 6 on a short schedule: pairs of SDK clients exchange numbered messages while a node
 * is added, one drained, one SIGKILLed, and etcd and memcached restart. Nothing may be lost silently, and the
 * added node takes most of the sessions that arrive after it.
 */
describe('chaos run (short)', function () {
  this.timeout(120_000);
  let result: ChaosResult;
  let dir: string;

  before(async () => {
    result = await runChaos(SHORT);
    dir = mkdtempSync(join(tmpdir(), 'chaos-report-'));
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loses no message silently, delivers none twice and keeps acked messages in order', () => {
    const t = result.totals;
    const summary = JSON.stringify({ totals: t, anomalies: result.anomalies, timeline: result.timeline });
    expect(t.sent, summary).to.be.greaterThan(1000);
    // Errors are allowed (the sender is told), but only where a fault explains them: none in steady traffic, and
    // together under 5 % of the run (measured: 0.6 %: PEER_UNAVAILABLE to pairs still joining, RELAY_FAILED to a
    // killed node).
    expect(t.acked, summary).to.be.at.least(t.sent * 0.95);
    expect(result.reconnectsByFault[0]?.fault).to.equal('steady traffic');
    expect(result.reconnectsByFault[0]?.errors, 'errors in steady traffic').to.deep.equal({});
    expect(Object.keys(t.erroredByCode).filter((code) => !['PEER_UNAVAILABLE', 'RELAY_FAILED', 'EXPIRED', 'CONNECTION_LOST'].includes(code)), summary).to.deep.equal([]);
    expect(t.silentlyLost, summary).to.equal(0);
    expect(t.duplicates, summary).to.equal(0);
    expect(t.ackedOutOfOrder, summary).to.equal(0);
    expect(verdict(result), summary).to.deep.equal([]);
  });

  it('applied every fault, and every client came back through the SDK', () => {
    const events = result.timeline.map((e) => e.event);
    for (const e of ['scale-out', 'drain (SIGTERM)', 'drained', 'SIGKILL', 'etcd restarted', 'registry complete', 'silent death', 'silent death: all back', 'memcached restarted (empty)']) {
      expect(events, JSON.stringify(result.timeline)).to.include(e);
    }
    expect(result.anomalies).to.deep.equal([]);
    expect(result.terminalCloses).to.deep.equal([]);
    expect(result.misdelivered).to.deep.equal([]);
    // The drained and the killed node's clients reconnected elsewhere.
    expect(result.reconnects.count).to.be.greaterThanOrEqual(SHORT.pairs);
    expect(result.reconnects.unfinished).to.equal(0);
    // Every reconnect, in every phase, within the contract's bound for a crash: lease TTL + 3 s (measured: 251 ms).
    const ttlSeconds = Number(SHORT.env['MSG_LEASE_TTL_SECONDS']);
    expect(result.reconnects.max, JSON.stringify(result.reconnectsByFault)).to.be.a('number').at.most((ttlSeconds + 3) * 1000);
  });

  // Issue 24, acceptance 5: half the clients confirm (receipts on), half are v1.1; both lose nothing, and the
  // receipted clients whose network died silently got, after their reconnect, everything their partners saw acked.
  it('holds both halves, receipts on and off, to zero loss, and the silently dead receipted clients too', () => {
    const { receipts, 'v1.1': v11 } = result.halves;
    const d = result.silentDeath;
    const summary = JSON.stringify({ halves: result.halves, silentDeath: d });
    expect(receipts.clients, summary).to.equal(v11.clients);
    for (const half of [receipts, v11]) {
      expect(half.sent, summary).to.be.greaterThan(500);
      expect(half.silentlyLost, summary).to.equal(0);
      expect(half.duplicates, summary).to.equal(0);
      expect(half.delivered, summary).to.be.at.least(half.acked);
    }
    expect(receipts.sent + v11.sent, 'the halves cover every judged stream').to.equal(result.totals.sent);
    expect(d.users, summary).to.equal(SHORT.silentDeathPairs);
    expect(d.frozenConnections, summary).to.equal(d.users);
    expect(d.notBack, summary).to.equal(0);
    expect(d.toThem.sent, summary).to.be.greaterThan(0);
    expect(d.toThem.delivered, summary).to.equal(d.toThem.acked);
    // Back after their heartbeat timeout: no sooner than a missed pong can tell, no later than two pings and a reconnect.
    expect(d.backAfterMs.p50, summary).to.be.a('number').within(SHORT.pingTimeoutMs, SHORT.pingIntervalMs + SHORT.pingTimeoutMs + 5000);
  });

  // Issue 23, acceptance 7: the rooms (one per half) rode through the same faults; every room message a sender saw
  // acked reached every other member once, in order, and no member was dropped from its room.
  it('holds the rooms to zero loss through the same faults, in both halves', () => {
    const rooms = result.rooms;
    const summary = JSON.stringify(rooms);
    expect(rooms, 'room figures').to.not.equal(undefined);
    if (!rooms) return;
    expect(rooms.rooms).to.equal(SHORT.rooms);
    expect(rooms.members).to.equal((SHORT.rooms ?? 0) * (SHORT.roomMembers ?? 0));
    expect(rooms.removed, summary).to.deep.equal([]);
    for (const half of [rooms.halves.receipts, rooms.halves['v1.1']]) {
      expect(half.sent, summary).to.be.greaterThan(200);
      expect(half.lost, summary).to.equal(0);
      expect(half.duplicates, summary).to.equal(0);
      expect(half.outOfOrder, summary).to.equal(0);
      expect(half.copiesOwed, summary).to.equal(half.acked * ((SHORT.roomMembers ?? 0) - 1));
      expect(half.copiesDelivered, summary).to.be.at.least(half.copiesOwed);
    }
    // The faults reached the rooms: the drained and the killed node's members were welcomed again elsewhere.
    expect(rooms.halves.receipts.moves + rooms.halves['v1.1'].moves, summary).to.be.greaterThan(0);
  });

  it('sends most new sessions to the node added by the scale-out (acceptance 6)', () => {
    const [scale] = result.scaleOut;
    expect(scale, JSON.stringify(result.scaleOut)).to.not.equal(undefined);
    expect(scale?.share, JSON.stringify(scale)).to.be.at.least(SHORT.minScaleOutShare);
    // And the load samples show it rising from nothing.
    const onNew = result.samples.map((s) => s.connections[scale?.nodeId ?? '']).filter((c) => c !== undefined);
    expect(Math.max(...onNew)).to.be.at.least(scale?.onNewNode ?? 1);
  });

  it('writes a Markdown report with the totals, reconnect percentiles and sessions per node, plus JSON and SVG', () => {
    const path = writeReport(result, dir);
    const md = readFileSync(path, 'utf8');
    expect(md).to.match(/\*\*Silently lost: 0\*\*/);
    expect(md).to.include('## Fault timeline');
    expect(md).to.match(/\| whole run \| \d+ \| \d+ ms \| \d+ ms \| \d+ ms \|/);
    expect(md).to.include('## Sessions per node over time');
    expect(existsSync(join(dir, 'chaos-sessions.svg'))).to.equal(true);
    const json = JSON.parse(readFileSync(join(dir, 'chaos-report.json'), 'utf8')) as ChaosResult;
    expect(json.totals.sent).to.equal(result.totals.sent);
  });
});
