// The WebRTC helper's use of the ICE servers from /connect, and what it reports about the path a call takes.
import { expect } from 'chai';
import { MessagingError } from './errors.js';
import { createPeerConnection, type PeerCall } from './webrtc.js';
import { FakeBus, FakeRTCPeerConnection } from './testing/fake-rtc.js';

const RTCPeerConnection = FakeRTCPeerConnection as unknown as new () => RTCPeerConnection;
const fake = (call: PeerCall) => call.pc as unknown as FakeRTCPeerConnection;
const TURN = { urls: ['turn:turn.example:3478'], username: '1700000000:alice', credential: 'c2lnbmVk' };

function setup() {
  const bus = new FakeBus();
  const alice = bus.client('alice');
  bus.client('bob');
  alice.iceServers = [{ urls: ['stun:stun.example:3478'] }, TURN];
  return { alice };
}

function errorsOf(call: PeerCall): MessagingError[] {
  const errors: MessagingError[] = [];
  call.on('error', (error) => errors.push(error as MessagingError));
  return errors;
}

describe('webrtc helper and ICE servers', () => {
  it('uses the iceServers from /connect when the app gives none', () => {
    const { alice } = setup();
    const call = createPeerConnection(alice, 'bob', { RTCPeerConnection });
    expect(fake(call).config).to.deep.equal({ iceServers: [{ urls: ['stun:stun.example:3478'] }, TURN] });
    call.hangup();
  });

  it("fills them into the app's rtcConfig (relay only through the cluster's TURN), unless it names its own", () => {
    const { alice } = setup();
    const relay = createPeerConnection(alice, 'bob', { RTCPeerConnection, rtcConfig: { iceTransportPolicy: 'relay' } });
    expect(fake(relay).config).to.deep.include({ iceTransportPolicy: 'relay' });
    expect(fake(relay).config?.iceServers).to.have.length(2);
    relay.hangup();
    const own = createPeerConnection(alice, 'bob', { RTCPeerConnection, rtcConfig: { iceServers: [] } });
    expect(fake(own).config).to.deep.equal({ iceServers: [] });
    own.hangup();
  });

  it('reports a TURN server that refuses the credentials once, as TURN_UNAUTHORIZED, and ignores routine STUN errors', () => {
    const { alice } = setup();
    const call = createPeerConnection(alice, 'bob', { RTCPeerConnection });
    const errors = errorsOf(call);
    fake(call).iceServerError('stun:stun.example:3478', 701, 'STUN host lookup received error.');
    fake(call).iceServerError('turn:turn.example:3478', 401, 'Unauthorized');
    fake(call).iceServerError('turn:turn.example:3478', 401, 'Unauthorized');
    expect(errors.map((e) => e.code)).to.deep.equal(['TURN_UNAUTHORIZED']);
    expect(errors[0]?.message).to.equal('TURN server turn:turn.example:3478 refused the credentials (401 Unauthorized)');
    call.hangup();
  });

  it('reports a connection ICE could not establish as CALL_FAILED, naming a TURN refusal as the likely cause', () => {
    const { alice } = setup();
    const call = createPeerConnection(alice, 'bob', { RTCPeerConnection });
    const errors = errorsOf(call);
    fake(call).iceServerError('turn:turn.example:3478', 401, 'Unauthorized');
    fake(call).setConnectionState('failed');
    expect(errors.map((e) => e.code)).to.deep.equal(['TURN_UNAUTHORIZED', 'CALL_FAILED']);
    expect(errors[1]?.message).to.contain('TURN refused the credentials at turn:turn.example:3478');
    call.hangup();
  });

  it('tells which candidate pair the call uses, by type and protocol only', async () => {
    const { alice } = setup();
    const call = createPeerConnection(alice, 'bob', { RTCPeerConnection });
    expect(await call.selectedCandidatePair()).to.equal(undefined);
    const stats = fake(call).stats;
    stats.set('T1', { id: 'T1', type: 'transport', selectedCandidatePairId: 'P1' });
    stats.set('P1', { id: 'P1', type: 'candidate-pair', localCandidateId: 'L1', remoteCandidateId: 'R1' });
    stats.set('L1', { id: 'L1', type: 'local-candidate', candidateType: 'relay', protocol: 'udp', relayProtocol: 'udp', address: '10.0.0.9' });
    stats.set('R1', { id: 'R1', type: 'remote-candidate', candidateType: 'relay', protocol: 'udp', address: '10.0.0.9' });
    expect(await call.selectedCandidatePair()).to.deep.equal({
      local: { type: 'relay', protocol: 'udp', relayProtocol: 'udp' },
      remote: { type: 'relay', protocol: 'udp' },
    });
    call.hangup();
  });
});
