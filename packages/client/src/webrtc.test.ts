import { expect } from 'chai';
import { createPeerConnection, isSignal, listenForCalls, type IncomingCall, type PeerCall } from './webrtc.js';
import { FakeBus, FakeRTCPeerConnection, eventually } from './testing/fake-rtc.js';

const RTCPeerConnection = FakeRTCPeerConnection as unknown as new () => RTCPeerConnection;
const fake = (call: PeerCall) => call.pc as unknown as FakeRTCPeerConnection;

function connectedPair(a: PeerCall, b: PeerCall): boolean {
  const pa = fake(a);
  const pb = fake(b);
  return (
    pa.signalingState === 'stable' &&
    pb.signalingState === 'stable' &&
    pa.localDescription !== null &&
    pa.localDescription.sdp === pb.remoteDescription?.sdp &&
    pa.remoteDescription?.sdp === pb.localDescription?.sdp &&
    pa.candidates.length > 0 &&
    pb.candidates.length > 0
  );
}

function collectErrors(call: PeerCall): unknown[] {
  const errors: unknown[] = [];
  call.on('error', (e) => errors.push(e));
  return errors;
}

describe('webrtc helper', () => {
  it('calls a peer that accepts: offer, answer and candidates flow, apps see no signaling', async () => {
    const bus = new FakeBus();
    const alice = bus.client('alice');
    const bob = bus.client('bob');
    const chat: unknown[] = [];
    bob.on('message', (m) => {
      if (!isSignal(m.content)) chat.push(m.content);
    });
    let bobCall: PeerCall | undefined;
    const incoming: IncomingCall[] = [];
    listenForCalls(bob, (call) => {
      incoming.push(call);
      bobCall = call.accept({ dataChannel: true, RTCPeerConnection });
    });
    const aliceCall = createPeerConnection(alice, 'bob', { dataChannel: true, RTCPeerConnection });
    const errors = collectErrors(aliceCall);
    await alice.send('bob', 'plain chat');
    await eventually(() => bobCall !== undefined && connectedPair(aliceCall, bobCall), 'negotiation');
    expect(incoming.map((c) => c.peerId)).to.deep.equal(['alice']);
    expect(chat).to.deep.equal(['plain chat']);
    expect(aliceCall.polite).to.equal(false);
    expect(bobCall?.polite).to.equal(true);
    expect(fake(aliceCall).channels[0]?.init).to.deep.equal({ negotiated: true, id: 0 });
    expect(fake(bobCall!).channels[0]?.init).to.deep.equal({ negotiated: true, id: 0 });
    expect(errors).to.deep.equal([]);
    const descriptions = bus.log
      .map((m) => `${m.from}:${signalKind(m.content)}`)
      .filter((kind) => /offer|answer/.test(kind));
    expect(descriptions).to.deep.equal(['alice:offer', 'bob:answer']);
  });

  it('resolves glare: both peers call at once and end with one agreed negotiation', async () => {
    const bus = new FakeBus();
    const alice = bus.client('alice');
    const bob = bus.client('bob');
    const aliceCall = createPeerConnection(alice, 'bob', { dataChannel: true, RTCPeerConnection });
    const bobCall = createPeerConnection(bob, 'alice', { dataChannel: true, RTCPeerConnection });
    const errors = [...collectErrors(aliceCall), ...collectErrors(bobCall)];
    await eventually(() => connectedPair(aliceCall, bobCall), 'negotiation after glare');
    // bob sorts greater, so bob is polite: he rolled back his offer and answered alice's.
    expect(fake(bobCall).log).to.include('rollback');
    expect(fake(aliceCall).log).not.to.include('rollback');
    expect(errors).to.deep.equal([]);
  });

  it('holds candidates that arrive before the remote description', async () => {
    const bus = new FakeBus();
    const alice = bus.client('alice');
    bus.client('bob');
    const call = createPeerConnection(alice, 'bob', { dataChannel: true, RTCPeerConnection });
    await eventually(() => fake(call).signalingState === 'have-local-offer', 'local offer');
    const errors = collectErrors(call);
    call.handleSignal({ kind: 'webrtc', candidate: { candidate: 'early', sdpMid: '0', sdpMLineIndex: 0 } });
    call.handleSignal({ kind: 'webrtc', sdp: { type: 'answer', sdp: 'bob-answer' } });
    await eventually(() => fake(call).candidates.length === 1, 'held candidate added');
    expect(fake(call).log.slice(-2)).to.deep.equal(['setRemoteDescription:answer', 'addIceCandidate']);
    expect(errors).to.deep.equal([]);
  });

  it('adds the callee’s media after applying the offer, so the answer reuses the offered m-lines', async () => {
    const bus = new FakeBus();
    const alice = bus.client('alice');
    const bob = bus.client('bob');
    const stream = { getTracks: () => [{ kind: 'video' }] } as unknown as MediaStream;
    let bobCall: PeerCall | undefined;
    listenForCalls(bob, (call) => {
      bobCall = call.accept({ localStream: stream, RTCPeerConnection });
    });
    const aliceCall = createPeerConnection(alice, 'bob', { localStream: stream, RTCPeerConnection });
    await eventually(() => bobCall !== undefined && connectedPair(aliceCall, bobCall), 'negotiation');
    const log = fake(bobCall!).log;
    expect(log.indexOf('addTrack')).to.be.greaterThan(log.indexOf('setRemoteDescription:offer'));
    expect(log.indexOf('addTrack')).to.be.lessThan(log.indexOf('setLocalDescription:answer'));
  });

  it('hangs up on both sides, and the pair can call again', async () => {
    const bus = new FakeBus();
    const alice = bus.client('alice');
    const bob = bus.client('bob');
    const bobCalls: PeerCall[] = [];
    listenForCalls(bob, (call) => bobCalls.push(call.accept({ RTCPeerConnection, dataChannel: true })));
    const first = createPeerConnection(alice, 'bob', { RTCPeerConnection, dataChannel: true });
    await eventually(() => bobCalls[0] !== undefined && connectedPair(first, bobCalls[0]), 'first call');
    const ended: unknown[] = [];
    bobCalls[0]?.on('closed', (info) => ended.push(info));
    expect(() => createPeerConnection(alice, 'bob', { RTCPeerConnection })).to.throw(/already open/);
    first.hangup();
    expect(fake(first).closed).to.equal(true);
    await eventually(() => ended.length === 1, 'remote hangup');
    expect(ended).to.deep.equal([{ reason: 'remote' }]);
    expect(fake(bobCalls[0]!).closed).to.equal(true);
    const second = createPeerConnection(alice, 'bob', { RTCPeerConnection, dataChannel: true });
    await eventually(() => bobCalls[1] !== undefined && connectedPair(second, bobCalls[1]), 'second call');
  });

  it('tells the caller when the callee rejects', async () => {
    const bus = new FakeBus();
    const alice = bus.client('alice');
    const bob = bus.client('bob');
    listenForCalls(bob, (call) => call.reject());
    const call = createPeerConnection(alice, 'bob', { RTCPeerConnection, dataChannel: true });
    const ended: unknown[] = [];
    call.on('closed', (info) => ended.push(info));
    await eventually(() => ended.length === 1, 'rejection');
    expect(ended).to.deep.equal([{ reason: 'remote' }]);
  });

  it('ignores offers when nobody listens and stops listening on unsubscribe', async () => {
    const bus = new FakeBus();
    const alice = bus.client('alice');
    const bob = bus.client('bob');
    const seen: string[] = [];
    const stop = listenForCalls(bob, (call) => seen.push(call.peerId));
    stop();
    createPeerConnection(alice, 'bob', { RTCPeerConnection, dataChannel: true });
    await eventually(() => bus.log.some((m) => signalKind(m.content) === 'offer'), 'offer sent');
    // A later message reaching bob shows the offer was handed to him before it, and nobody turned it into a call.
    const later: unknown[] = [];
    bob.on('message', (m) => later.push(m.content));
    await alice.send('bob', 'after the offer');
    await eventually(() => later.includes('after the offer'), 'a later message at bob');
    expect(seen).to.deep.equal([]);
  });
});

function signalKind(content: unknown): string {
  if (!isSignal(content)) return 'chat';
  if (content.sdp) return content.sdp.type;
  if (content.candidate) return 'candidate';
  return content.bye ? 'bye' : 'unknown';
}
