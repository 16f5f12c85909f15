import type { IceServer, JsonValue } from '@messaging-server/protocol';
import { selectedCandidatePair, type CandidatePair } from './candidate-pair.js';
import { Emitter } from './emitter.js';
import { MessagingError } from './errors.js';
import type { IncomingMessage } from './client.js';

export type { CandidateInfo, CandidatePair } from './candidate-pair.js';

/**
 * WebRTC over the messaging SDK with "perfect negotiation" (the MDN/W3C pattern): both sides may renegotiate at any
 * time, and an offer collision is resolved by the polite peer rolling back. Signaling travels as ordinary messages
 * whose content is a `SignalContent`; the contract's per-pair ordering keeps offer, answer and candidates in order.
 * Applications only see `PeerCall`s.
 */
export interface SignalContent {
  kind: 'webrtc';
  sdp?: { type: RTCSdpType; sdp: string };
  candidate?: RTCIceCandidateInit;
  /** The sender hung up (or rejected the call). */
  bye?: true;
}

export function isSignal(content: unknown): content is SignalContent {
  return (
    content !== null &&
    typeof content === 'object' &&
    !Array.isArray(content) &&
    (content as { kind?: unknown }).kind === 'webrtc'
  );
}

/** The part of MessagingClient the helper needs (structural, so tests can pass a fake). */
export interface SignalingClient {
  readonly userId: string;
  /** The STUN/TURN servers of the latest `/connect` (MessagingClient has them); calls use them by default. */
  readonly iceServers?: readonly IceServer[] | undefined;
  send(to: string, content: JsonValue): Promise<void>;
  on(event: 'message', listener: (message: IncomingMessage) => void): () => void;
}

export interface PeerCallOptions {
  /** Who yields on an offer collision. Default: the peer whose userId sorts greater is polite (both sides agree). */
  polite?: boolean;
  /**
   * Its `iceServers`, when given, replace the ones from `/connect`; without them, the client's are filled in, so
   * `{ iceTransportPolicy: 'relay' }` alone means "only through the cluster's TURN servers".
   */
  rtcConfig?: RTCConfiguration;
  onTrack?: (event: RTCTrackEvent) => void;
  /**
   * Open a data channel. Both sides must ask for it: it is a pre-negotiated channel (id 0, label "data"), so there is
   * no in-band open handshake and no asymmetry between caller and callee.
   */
  dataChannel?: boolean;
  /** Local media to send. On the callee it is added after the offer is applied, so it reuses the offered m-lines. */
  localStream?: MediaStream;
  /** Injectable for tests and non-browser runtimes. Default: the global RTCPeerConnection. */
  RTCPeerConnection?: new (config?: RTCConfiguration) => RTCPeerConnection;
}

export type CallEndReason = 'local' | 'remote';

export interface PeerCallEvents {
  track: RTCTrackEvent;
  /** The data channel is open. */
  channel: RTCDataChannel;
  state: RTCPeerConnectionState;
  ice: RTCIceConnectionState;
  closed: { reason: CallEndReason };
  /**
   * Signaling or negotiation failed (e.g. PEER_UNAVAILABLE when sending the offer); a TURN server refused the
   * credentials (MessagingError TURN_UNAUTHORIZED); or ICE found no path (CALL_FAILED). The call object stays.
   */
  error: unknown;
}

export interface IncomingCall {
  readonly peerId: string;
  /** Set once the caller hung up before the call was accepted. */
  readonly cancelled: boolean;
  /** Creates the PeerCall and answers the waiting offer. */
  accept(options?: PeerCallOptions): PeerCall;
  /** Tells the caller no. */
  reject(): void;
}

interface PendingIncoming {
  signals: SignalContent[];
  cancelled: boolean;
  settled: boolean;
}

/** One signaling dispatcher per client: routes webrtc messages to calls, or to call listeners when there is none. */
class Signaling {
  readonly calls = new Map<string, PeerCall>();
  readonly incoming = new Map<string, PendingIncoming>();
  readonly handlers = new Set<(call: IncomingCall) => void>();

  constructor(readonly client: SignalingClient) {
    client.on('message', (message) => {
      if (isSignal(message.content)) this.#dispatch(message.from, message.content);
    });
  }

  #dispatch(from: string, signal: SignalContent): void {
    const call = this.calls.get(from);
    if (call) {
      call.handleSignal(signal);
      return;
    }
    const pending = this.incoming.get(from);
    if (signal.bye) {
      if (pending) {
        pending.cancelled = true;
        this.incoming.delete(from);
      }
      return;
    }
    if (pending) {
      pending.signals.push(signal);
      return;
    }
    // Candidates or answers for a call that no longer exists are stale; only an offer starts a new call.
    if (signal.sdp?.type !== 'offer' || this.handlers.size === 0) return;
    const record: PendingIncoming = { signals: [signal], cancelled: false, settled: false };
    this.incoming.set(from, record);
    const incoming: IncomingCall = {
      peerId: from,
      get cancelled() {
        return record.cancelled;
      },
      accept: (options = {}) => {
        if (record.settled) throw new Error('call already accepted or rejected');
        return createPeerConnection(this.client, from, options);
      },
      reject: () => {
        if (record.settled) return;
        record.settled = true;
        if (this.incoming.get(from) === record) this.incoming.delete(from);
        this.client.send(from, { kind: 'webrtc', bye: true }).catch(() => {});
      },
    };
    for (const handler of this.handlers) handler(incoming);
  }

  /** Hands the signals of a waiting offer to a new call. */
  takeIncoming(peerId: string): SignalContent[] {
    const pending = this.incoming.get(peerId);
    if (!pending) return [];
    this.incoming.delete(peerId);
    pending.settled = true;
    return pending.signals;
  }
}

const registry = new WeakMap<SignalingClient, Signaling>();

function signalingOf(client: SignalingClient): Signaling {
  let signaling = registry.get(client);
  if (!signaling) {
    signaling = new Signaling(client);
    registry.set(client, signaling);
  }
  return signaling;
}

/** A WebRTC connection to one peer. Create with `createPeerConnection` or `IncomingCall.accept`. */
export class PeerCall extends Emitter<PeerCallEvents> {
  readonly peerId: string;
  readonly polite: boolean;
  readonly pc: RTCPeerConnection;
  #channel: RTCDataChannel | undefined;
  #closed = false;
  #makingOffer = false;
  #ignoreOffer = false;
  #settingRemoteAnswerPending = false;
  #pendingCandidates: RTCIceCandidateInit[] = [];
  /** Local setup (data channel, media) a callee applies after the offer, so its answer covers it. */
  #deferredSetup: (() => void) | undefined;
  #chain: Promise<void> = Promise.resolve();
  readonly #signaling: Signaling;
  /** TURN URLs that refused our credentials, each reported once. */
  readonly #refusedBy = new Set<string>();

  /** @internal use createPeerConnection */
  constructor(signaling: Signaling, peerId: string, options: PeerCallOptions, answering: boolean) {
    super();
    this.#signaling = signaling;
    this.peerId = peerId;
    this.polite = options.polite ?? signaling.client.userId > peerId;
    const Ctor = options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    if (!Ctor) throw new Error('RTCPeerConnection is not available in this runtime');
    const pc = new Ctor(rtcConfigFor(options.rtcConfig, signaling.client.iceServers));
    this.pc = pc;
    pc.onnegotiationneeded = () => void this.#negotiate();
    pc.onicecandidate = ({ candidate }) => {
      if (candidate) this.#signal({ candidate: candidate.toJSON() });
    };
    pc.ontrack = (event) => {
      options.onTrack?.(event);
      this.emit('track', event);
    };
    pc.onconnectionstatechange = () => {
      this.emit('state', pc.connectionState);
      if (pc.connectionState === 'failed') this.emit('error', this.#failure());
    };
    pc.onicecandidateerror = (event) => this.#onIceServerError(event);
    pc.oniceconnectionstatechange = () => {
      if (pc.iceConnectionState === 'failed') pc.restartIce();
      this.emit('ice', pc.iceConnectionState);
    };
    const setup = () => {
      if (options.dataChannel) {
        const channel = pc.createDataChannel('data', { negotiated: true, id: 0 });
        channel.addEventListener('open', () => this.emit('channel', channel));
        this.#channel = channel;
      }
      if (options.localStream) this.addStream(options.localStream);
    };
    if (answering) this.#deferredSetup = setup;
    else setup();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The pre-negotiated data channel when `dataChannel` was asked for (on a callee: once the offer is applied). */
  get channel(): RTCDataChannel | undefined {
    return this.#channel;
  }

  /** The ICE candidate pair in use (e.g. `relay` ↔ `relay` through TURN), or undefined before ICE picked one. */
  selectedCandidatePair(): Promise<CandidatePair | undefined> {
    return selectedCandidatePair(this.pc);
  }

  /** Sends a stream's tracks; renegotiates by itself. */
  addStream(stream: MediaStream): void {
    for (const track of stream.getTracks()) this.pc.addTrack(track, stream);
  }

  /** Ends the call on both sides. */
  hangup(): void {
    if (this.#closed) return;
    this.#signal({ bye: true });
    this.#close('local');
  }

  /** @internal called by the dispatcher, in arrival order */
  handleSignal(signal: SignalContent): void {
    this.#chain = this.#chain
      .then(() => this.#process(signal))
      .catch((error: unknown) => this.emit('error', error));
  }

  async #negotiate(): Promise<void> {
    try {
      this.#makingOffer = true;
      await this.pc.setLocalDescription();
      this.#sendDescription();
    } catch (error) {
      this.emit('error', error);
    } finally {
      this.#makingOffer = false;
    }
  }

  async #process(signal: SignalContent): Promise<void> {
    if (this.#closed) return;
    if (signal.bye) {
      this.#close('remote');
      return;
    }
    const pc = this.pc;
    if (signal.sdp) {
      const description = signal.sdp;
      const readyForOffer =
        !this.#makingOffer && (pc.signalingState === 'stable' || this.#settingRemoteAnswerPending);
      const collision = description.type === 'offer' && !readyForOffer;
      this.#ignoreOffer = !this.polite && collision;
      if (this.#ignoreOffer) return;
      this.#settingRemoteAnswerPending = description.type === 'answer';
      await pc.setRemoteDescription(description);
      this.#settingRemoteAnswerPending = false;
      await this.#drainCandidates();
      if (description.type === 'offer') {
        const setup = this.#deferredSetup;
        this.#deferredSetup = undefined;
        setup?.();
        await pc.setLocalDescription();
        this.#sendDescription();
      }
      return;
    }
    if (signal.candidate) {
      // Candidates can overtake nothing on the wire, but they can arrive while our own offer is pending or before
      // an accepted call applied its offer: hold them until there is a remote description.
      if (!pc.remoteDescription) {
        this.#pendingCandidates.push(signal.candidate);
        return;
      }
      try {
        await pc.addIceCandidate(signal.candidate);
      } catch (error) {
        if (!this.#ignoreOffer) throw error;
      }
    }
  }

  async #drainCandidates(): Promise<void> {
    const candidates = this.#pendingCandidates;
    this.#pendingCandidates = [];
    for (const candidate of candidates) {
      try {
        await this.pc.addIceCandidate(candidate);
      } catch {
        // Held candidates may belong to an offer we ignored; they are not worth failing the call over.
      }
    }
  }

  #sendDescription(): void {
    const description = this.pc.localDescription;
    if (description) this.#signal({ sdp: { type: description.type, sdp: description.sdp } });
  }

  #signal(fields: Omit<SignalContent, 'kind'>): void {
    const content = { kind: 'webrtc', ...fields } as unknown as JsonValue;
    this.#signaling.client.send(this.peerId, content).catch((error: unknown) => this.emit('error', error));
  }

  #onIceServerError(event: RTCPeerConnectionIceErrorEvent): void {
    // 401 Unauthorized / 403 Forbidden / 441 Wrong Credentials from a TURN server. Other codes (701: a STUN server
    // out of reach on one interface) are routine while ICE explores its options.
    if (!/^turns?:/.test(event.url) || ![401, 403, 441].includes(event.errorCode) || this.#refusedBy.has(event.url)) return;
    this.#refusedBy.add(event.url);
    const detail = `${String(event.errorCode)} ${event.errorText}`.trim();
    this.emit('error', new MessagingError('TURN_UNAUTHORIZED', `TURN server ${event.url} refused the credentials (${detail})`));
  }

  #failure(): MessagingError {
    const refused = [...this.#refusedBy];
    const why = refused.length > 0 ? `; TURN refused the credentials at ${refused.join(', ')}` : '';
    return new MessagingError('CALL_FAILED', `no network path to ${this.peerId} worked${why}`);
  }

  #close(reason: CallEndReason): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#signaling.calls.get(this.peerId) === this) this.#signaling.calls.delete(this.peerId);
    this.channel?.close();
    this.pc.close();
    this.emit('closed', { reason });
  }
}

/**
 * Starts (or joins) a WebRTC connection with `peerId`. If that peer's offer is already waiting (a call not yet
 * accepted), this accepts it. Only one call per peer: a second call to the same peer throws until `hangup()`.
 */
export function createPeerConnection(
  client: SignalingClient,
  peerId: string,
  options: PeerCallOptions = {},
): PeerCall {
  const signaling = signalingOf(client);
  const existing = signaling.calls.get(peerId);
  if (existing && !existing.closed) throw new Error(`a call with ${peerId} is already open`);
  const waiting = signaling.takeIncoming(peerId);
  const call = new PeerCall(signaling, peerId, options, waiting.length > 0);
  signaling.calls.set(peerId, call);
  for (const signal of waiting) call.handleSignal(signal);
  return call;
}

/** Calls `handler` for every offer from a peer without a call; returns a function that stops listening. */
export function listenForCalls(client: SignalingClient, handler: (call: IncomingCall) => void): () => void {
  const signaling = signalingOf(client);
  signaling.handlers.add(handler);
  return () => {
    signaling.handlers.delete(handler);
  };
}

/** The app's configuration, with the servers from `/connect` unless it names its own. */
function rtcConfigFor(
  rtcConfig: RTCConfiguration | undefined,
  iceServers: readonly IceServer[] | undefined,
): RTCConfiguration | undefined {
  if (rtcConfig?.iceServers !== undefined || iceServers === undefined) return rtcConfig;
  return { ...rtcConfig, iceServers: iceServers.map((server) => ({ ...server, urls: [...server.urls] })) };
}
