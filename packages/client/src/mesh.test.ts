import { expect } from 'chai';
import { Emitter } from './emitter.js';
import { meshCall, meshPlan, type MeshCall, type MeshRoom } from './mesh.js';
import type { RoomEvents } from './rooms.js';
import { FakeBus, FakeRTCPeerConnection, eventually } from './testing/fake-rtc.js';
import { isSignal, type PeerCall } from './webrtc.js';

const RTCPeerConnection = FakeRTCPeerConnection as unknown as new () => RTCPeerConnection;

/** One member's view of a shared room: every view sees the same join order, as the contract promises. */
class FakeRoomView extends Emitter<RoomEvents> implements MeshRoom {
  members: string[];
  constructor(readonly name: string, members: string[]) {
    super();
    this.members = [...members];
  }
  memberJoined(userId: string): void {
    this.members.push(userId);
    this.emit('member', { userId, event: 'joined' });
  }
  memberLeft(userId: string): void {
    this.members = this.members.filter((m) => m !== userId);
    this.emit('member', { userId, event: 'left' });
  }
  close(): void {
    this.emit('closed', { reason: 'left' });
  }
}

class FakeRoom {
  readonly views = new Map<string, FakeRoomView>();
  readonly order: string[] = [];
  join(userId: string): FakeRoomView {
    for (const view of this.views.values()) view.memberJoined(userId);
    this.order.push(userId);
    const view = new FakeRoomView('r', this.order);
    this.views.set(userId, view);
    return view;
  }
  leave(userId: string): void {
    this.views.get(userId)?.close();
    this.views.delete(userId);
    this.order.splice(this.order.indexOf(userId), 1);
    for (const view of this.views.values()) view.memberLeft(userId);
  }
}

function negotiated(a: PeerCall | undefined, b: PeerCall | undefined): boolean {
  if (!a || !b) return false;
  const pa = a.pc as unknown as FakeRTCPeerConnection;
  const pb = b.pc as unknown as FakeRTCPeerConnection;
  return pa.signalingState === 'stable' && pa.localDescription !== null && pa.localDescription.sdp === pb.remoteDescription?.sdp && pa.remoteDescription?.sdp === pb.localDescription?.sdp;
}

describe('mesh call over a room', () => {
  describe('meshPlan', () => {
    it('offers to members who joined before us and waits for those after us', () => {
      expect(meshPlan('carol', ['alice', 'bob', 'carol', 'dave'], [])).to.deep.equal({ offer: ['alice', 'bob'], await: ['dave'], close: [] });
    });
    it('leaves existing calls alone and closes those whose peer left', () => {
      expect(meshPlan('bob', ['alice', 'bob', 'dave'], ['alice', 'carol'])).to.deep.equal({ offer: [], await: ['dave'], close: ['carol'] });
    });
    it('both sides of every pair agree on who offers', () => {
      const members = ['u3', 'u1', 'u4', 'u2'];
      for (const a of members) {
        for (const b of members) {
          if (a === b) continue;
          const aOffers = meshPlan(a, members, []).offer.includes(b);
          const bOffers = meshPlan(b, members, []).offer.includes(a);
          expect(aOffers !== bOffers, `${a}/${b}`).to.equal(true);
          expect(meshPlan(a, members, []).await.includes(b)).to.equal(bOffers);
        }
      }
    });
  });

  it('three members: the newcomer offers to each earlier member, every pair negotiates, a leaver is hung up', async () => {
    const bus = new FakeBus();
    const room = new FakeRoom();
    const meshes = new Map<string, MeshCall>();
    for (const user of ['alice', 'bob', 'carol']) {
      const client = bus.client(user);
      meshes.set(user, meshCall(client, room.join(user), { dataChannel: true, RTCPeerConnection }));
    }
    const call = (a: string, b: string) => meshes.get(a)?.calls.get(b);
    await eventually(
      () => negotiated(call('alice', 'bob'), call('bob', 'alice')) && negotiated(call('alice', 'carol'), call('carol', 'alice')) && negotiated(call('bob', 'carol'), call('carol', 'bob')),
      'three pairs negotiated',
    );
    const offers = bus.log.filter((m) => isSignal(m.content) && m.content.sdp?.type === 'offer').map((m) => `${m.from}>${m.to}`);
    expect(offers.sort()).to.deep.equal(['bob>alice', 'carol>alice', 'carol>bob']);
    const bobPcs = [call('alice', 'bob'), call('carol', 'bob')].map((c) => c?.pc as unknown as FakeRTCPeerConnection);
    const closed: string[] = [];
    meshes.get('alice')?.on('peer-closed', (peer) => closed.push(peer));
    room.leave('bob');
    await eventually(() => bobPcs.every((pc) => pc.closed), 'peer connections to bob closed');
    expect(closed).to.deep.equal(['bob']);
    expect([...(meshes.get('alice')?.calls.keys() ?? [])]).to.deep.equal(['carol']);
    expect([...(meshes.get('bob')?.calls.keys() ?? [])], 'bob closed its side when its room closed').to.deep.equal([]);
    expect(negotiated(call('alice', 'carol'), call('carol', 'alice'))).to.equal(true);
  });

  it('an offer that arrives before the newcomer’s member event waits and is accepted once it is a member', async () => {
    const bus = new FakeBus();
    const aliceView = new FakeRoomView('r', ['alice']);
    const alice = meshCall(bus.client('alice'), aliceView, { dataChannel: true, RTCPeerConnection });
    const bobView = new FakeRoomView('r', ['alice', 'bob']);
    const bob = meshCall(bus.client('bob'), bobView, { dataChannel: true, RTCPeerConnection });
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(alice.calls.size, 'no call before bob is a member').to.equal(0);
    aliceView.memberJoined('bob');
    await eventually(() => negotiated(alice.calls.get('bob'), bob.calls.get('alice')), 'pair negotiated');
  });
});
