// Issue 23, acceptance 1: users who connect with the same room land on one node, every gateway picks the same one
// from the registry alone, and a node that joins or leaves moves only the rooms it wins or held.
import { expect } from 'chai';
import { requestSession, startCluster, type LocalCluster } from '@messaging-server/testkit';

const ROOMS = Array.from({ length: 60 }, (_, i) => `call-${String(i)}`);

describe('placement by room across gateways and node changes (contract v1.2)', function () {
  this.timeout(120_000);
  let cluster: LocalCluster;

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 3, gateways: 2 });
  });
  after(async () => {
    await cluster?.stop();
  });

  /** Each room's node, asked of every gateway with a member of its own; fails when the gateways disagree. */
  async function placements(label: string): Promise<Map<string, string>> {
    const placed = new Map<string, string>();
    for (const room of ROOMS) {
      const answers = await Promise.all(cluster.gateways.map((g, i) => requestSession(g.url, `${label}-${room}-${String(i)}`, { room })));
      const nodes = new Set(answers.map((a) => a.nodeId));
      expect([...nodes], `${room}: every gateway picks one node`).to.have.length(1);
      placed.set(room, answers[0]?.nodeId as string);
    }
    return placed;
  }

  it('puts three users of one room on one node, whichever gateway each asks', async () => {
    const [a, b] = cluster.gateways;
    const members = await Promise.all([
      requestSession(String(a?.url), 'room-alice', { room: 'standup' }),
      requestSession(String(b?.url), 'room-bob', { room: 'standup' }),
      requestSession(String(a?.url), 'room-carol', { room: 'standup', form: true }),
    ]);
    expect(new Set(members.map((m) => m.nodeId)).size).to.equal(1);
    // Without a room, placement is least-loaded as before: the three spread over the nodes.
    const strangers = await Promise.all(['x', 'y', 'z', 'w', 'v', 'u'].map((u) => requestSession(String(a?.url), `stranger-${u}`)));
    expect(new Set(strangers.map((s) => s.nodeId)).size).to.be.greaterThan(1);
  });

  it('moves only the rooms a joining node wins, and only the rooms a draining node held', async () => {
    const before = await placements('before');
    expect(new Set(before.values()).size, 'rooms spread over the three nodes').to.equal(3);

    const added = await cluster.addNode();
    await cluster.waitForGatewaysToSee(4);
    const joined = await placements('joined');
    const moved = ROOMS.filter((room) => joined.get(room) !== before.get(room));
    expect(moved.length, 'the new node wins some rooms').to.be.greaterThan(0);
    expect(moved.filter((room) => joined.get(room) !== added.nodeId), 'rooms that moved elsewhere than the new node').to.deep.equal([]);

    const leaving = before.get(ROOMS[0] as string) as string;
    await cluster.drainNode(leaving);
    await cluster.waitForGatewaysToSee(3);
    const left = await placements('left');
    const displaced = ROOMS.filter((room) => left.get(room) !== joined.get(room));
    expect(displaced.filter((room) => joined.get(room) !== leaving), 'rooms that moved without their node leaving').to.deep.equal([]);
    expect(displaced).to.deep.equal(ROOMS.filter((room) => joined.get(room) === leaving));
  });
});
