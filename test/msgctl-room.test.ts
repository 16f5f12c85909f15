import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { MemcachedRoomStore } from '@messaging-server/core';
import { requestSession, startCluster, uniqueName, waitFor, type LocalCluster } from '@messaging-server/testkit';

const MSGCTL = fileURLToPath(new URL('../packages/cli/dist/bin/msgctl.js', import.meta.url));

function msgctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MSGCTL, ...args], { env: { PATH: process.env['PATH'] ?? '' }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

interface RoomJson {
  room: string;
  members: string[];
  placement: string | null;
}

describe('msgctl room against a cluster of real processes', function () {
  this.timeout(60_000);
  let cluster: LocalCluster;
  let target: string[];
  let store: MemcachedRoomStore;

  before(async function () {
    this.timeout(60_000);
    cluster = await startCluster({ nodes: 3, gateways: 1 });
    const env = cluster.baseEnv();
    target = ['--endpoints', cluster.etcdEndpoint, '--prefix', cluster.prefix];
    target.push('--memcached-servers', String(env['MSG_MEMCACHED_SERVERS']), '--memcached-prefix', String(env['MSG_MEMCACHED_PREFIX']));
    store = new MemcachedRoomStore({ servers: [String(env['MSG_MEMCACHED_SERVERS'])], prefix: String(env['MSG_MEMCACHED_PREFIX']) });
  });
  after(async () => {
    await store?.close();
    await cluster?.stop();
  });

  /** The room's record as a home node writes it (the layout of the room store the nodes share). */
  async function writeMembers(room: string, members: string[]): Promise<void> {
    const now = new Date().toISOString();
    await store.update(room, () => ({ room, members: members.map((userId) => ({ userId, joinedAt: now })), seq: 0, home: 'test', updatedAt: now }), 60);
  }

  it('prints the members in join order and the node the gateway places the room on', async () => {
    const room = uniqueName('room');
    await writeMembers(room, ['carol', 'alice', 'bob']);
    const run = await msgctl(['room', room, '--json', ...target]);
    expect(run.code, run.stderr).to.equal(0);
    const answer = JSON.parse(run.stdout) as RoomJson;
    const session = await requestSession(cluster.gatewayUrl, uniqueName('probe'), { room });
    expect(answer).to.deep.equal({ room, members: ['carol', 'alice', 'bob'], placement: session.nodeId });

    const table = await msgctl(['room', room, ...target]);
    expect(table.code, table.stderr).to.equal(0);
    expect(table.stdout).to.match(/^ROOM\s+MEMBERS\s+PLACEMENT\n/).and.to.contain('carol,alice,bob').and.to.contain(session.nodeId);
  });

  it('follows the placement when the room’s node drains, as the gateway does', async () => {
    const room = uniqueName('moving');
    await writeMembers(room, ['dave']);
    const first = (JSON.parse((await msgctl(['room', room, '--json', ...target])).stdout) as RoomJson).placement;
    expect(first).to.be.a('string');
    await cluster.drainNode(String(first), 30_000);
    let moved: string | null = null;
    await waitFor(
      async () => {
        moved = (JSON.parse((await msgctl(['room', room, '--json', ...target])).stdout) as RoomJson).placement;
        return moved !== first;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: 'placement after the drain' },
    );
    const session = await requestSession(cluster.gatewayUrl, uniqueName('probe'), { room });
    expect(moved).to.equal(session.nodeId);
  });

  it('exits 1 for a room without members, 2 without a room name', async () => {
    const missing = await msgctl(['room', uniqueName('empty'), '--json', ...target]);
    expect(missing.code).to.equal(1);
    expect(missing.stderr).to.contain('has no members');
    expect((await msgctl(['room', ...target])).code).to.equal(2);
  });
});
