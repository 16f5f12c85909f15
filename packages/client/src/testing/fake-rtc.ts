// A signaling-state model of RTCPeerConnection (no media, no ICE): enough to exercise perfect negotiation, glare,
// rollback and candidate buffering in Node. Operations are asynchronous like the real ones.
import type { JsonValue } from '@messaging-server/protocol';
import type { IncomingMessage } from '../client.js';
import type { SignalingClient } from '../webrtc.js';

const later = () => new Promise<void>((resolve) => setTimeout(resolve, 0));
let nextPc = 1;

class FakeDataChannel {
  readyState = 'connecting';
  constructor(readonly label: string, readonly init: RTCDataChannelInit | undefined) {}
  addEventListener(): void {}
  close(): void {
    this.readyState = 'closed';
  }
}

export class FakeRTCPeerConnection {
  static all: FakeRTCPeerConnection[] = [];
  readonly name = `pc${nextPc++}`;
  signalingState: RTCSignalingState = 'stable';
  connectionState: RTCPeerConnectionState = 'new';
  iceConnectionState: RTCIceConnectionState = 'new';
  localDescription: { type: RTCSdpType; sdp: string } | null = null;
  remoteDescription: { type: RTCSdpType; sdp: string } | null = null;
  onnegotiationneeded: (() => void) | null = null;
  onicecandidate: ((event: { candidate: { toJSON(): RTCIceCandidateInit } | null }) => void) | null = null;
  ontrack: ((event: unknown) => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  oniceconnectionstatechange: (() => void) | null = null;
  onicecandidateerror: ((event: Partial<RTCPeerConnectionIceErrorEvent>) => void) | null = null;
  /** What getStats() reports; tests fill it in. */
  readonly stats = new Map<string, Record<string, unknown>>();
  readonly candidates: RTCIceCandidateInit[] = [];
  /** Every operation in order, e.g. `setRemoteDescription:offer`, `addTrack`. */
  readonly log: string[] = [];
  readonly channels: FakeDataChannel[] = [];
  closed = false;
  #needsNegotiation = false;
  #offers = 0;

  constructor(readonly config?: RTCConfiguration) {
    FakeRTCPeerConnection.all.push(this);
  }

  createDataChannel(label: string, init?: RTCDataChannelInit): FakeDataChannel {
    const channel = new FakeDataChannel(label, init);
    this.channels.push(channel);
    this.log.push('createDataChannel');
    this.#markNegotiationNeeded();
    return channel;
  }

  addTrack(): void {
    this.log.push('addTrack');
    this.#markNegotiationNeeded();
  }

  async setLocalDescription(): Promise<void> {
    await later();
    if (this.signalingState === 'stable') {
      this.localDescription = { type: 'offer', sdp: `${this.name}-offer-${++this.#offers}` };
      this.signalingState = 'have-local-offer';
    } else if (this.signalingState === 'have-remote-offer') {
      this.localDescription = { type: 'answer', sdp: `${this.name}-answer-to-${this.remoteDescription?.sdp ?? ''}` };
      this.signalingState = 'stable';
    } else {
      throw new Error(`InvalidStateError: setLocalDescription in ${this.signalingState}`);
    }
    this.#needsNegotiation = false;
    this.log.push(`setLocalDescription:${this.localDescription.type}`);
    setTimeout(() => {
      if (this.closed) return;
      const candidate = { candidate: `candidate:${this.name}`, sdpMid: '0', sdpMLineIndex: 0 };
      this.onicecandidate?.({ candidate: { toJSON: () => candidate } });
    }, 0);
  }

  async setRemoteDescription(description: { type: RTCSdpType; sdp: string }): Promise<void> {
    await later();
    if (description.type === 'offer') {
      if (this.signalingState === 'have-local-offer') {
        // Implicit rollback, as browsers do for the polite peer.
        this.log.push('rollback');
        this.localDescription = null;
        this.#needsNegotiation = true;
      } else if (this.signalingState !== 'stable') {
        throw new Error(`InvalidStateError: offer in ${this.signalingState}`);
      }
      this.signalingState = 'have-remote-offer';
    } else if (description.type === 'answer') {
      if (this.signalingState !== 'have-local-offer') throw new Error(`InvalidStateError: answer in ${this.signalingState}`);
      this.signalingState = 'stable';
    }
    this.remoteDescription = { type: description.type, sdp: description.sdp };
    this.log.push(`setRemoteDescription:${description.type}`);
    if (this.signalingState === 'stable' && this.#needsNegotiation) this.#markNegotiationNeeded();
  }

  async addIceCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    await later();
    if (!this.remoteDescription) throw new Error('InvalidStateError: no remote description');
    this.candidates.push(candidate);
    this.log.push('addIceCandidate');
  }

  restartIce(): void {}

  async getStats(): Promise<Map<string, Record<string, unknown>>> {
    await later();
    return this.stats;
  }

  /** What a browser does when an ICE server answers with an error. */
  iceServerError(url: string, errorCode: number, errorText: string): void {
    this.onicecandidateerror?.({ url, errorCode, errorText, address: null, port: null });
  }

  setConnectionState(state: RTCPeerConnectionState): void {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }

  close(): void {
    this.closed = true;
    this.signalingState = 'closed';
  }

  #markNegotiationNeeded(): void {
    this.#needsNegotiation = true;
    setTimeout(() => {
      if (this.#needsNegotiation && this.signalingState === 'stable' && !this.closed) this.onnegotiationneeded?.();
    }, 0);
  }
}

/** In-memory clients that deliver to each other in order, like the cluster does for one sender/recipient pair. */
export class FakeBus {
  readonly clients = new Map<string, FakeSignalingClient>();
  readonly log: { from: string; to: string; content: JsonValue }[] = [];

  client(userId: string): FakeSignalingClient {
    const client = new FakeSignalingClient(userId, this);
    this.clients.set(userId, client);
    return client;
  }
}

export class FakeSignalingClient implements SignalingClient {
  readonly #listeners = new Set<(message: IncomingMessage) => void>();
  iceServers: SignalingClient['iceServers'];
  constructor(readonly userId: string, readonly bus: FakeBus) {}

  send(to: string, content: JsonValue): Promise<void> {
    this.bus.log.push({ from: this.userId, to, content });
    const target = this.bus.clients.get(to);
    if (!target) return Promise.reject(new Error('PEER_UNAVAILABLE'));
    setTimeout(() => target.deliver({ from: this.userId, to, content }), 0);
    return Promise.resolve();
  }

  on(_event: 'message', listener: (message: IncomingMessage) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  deliver(message: IncomingMessage): void {
    for (const listener of this.#listeners) listener(message);
  }
}

export async function eventually(probe: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise<void>((resolve) => setTimeout(resolve, 2));
  }
}
