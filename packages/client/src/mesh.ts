import { Emitter } from './emitter.js';
import type { MemberEvent, RoomCloseReason } from './rooms.js';
import { createPeerConnection, listenForCalls, type IncomingCall, type PeerCall, type PeerCallOptions, type SignalingClient } from './webrtc.js';

/**
 * A full-mesh call over a room: one PeerCall (perfect negotiation, signals as direct messages `to` the peer) per
 * pair of members. Who offers is decided by the room's join order, which every member sees the same: the member
 * who joined later offers, the earlier one waits for its offer. So a newcomer calls everyone already there, and
 * nobody calls a newcomer. A member who leaves has its peer connection closed.
 */

/** The part of a Room the mesh needs (structural, so tests can pass a fake). */
export interface MeshRoom {
  readonly name: string;
  /** Join order, this user included. */
  readonly members: readonly string[];
  on(event: 'member', listener: (event: MemberEvent) => void): () => void;
  on(event: 'members', listener: (members: readonly string[]) => void): () => void;
  on(event: 'closed', listener: (info: { reason: RoomCloseReason }) => void): () => void;
}

export interface MeshPlan {
  /** Members who joined before us and have no call: we offer. */
  offer: string[];
  /** Members who joined after us and have no call: we wait for their offer. */
  await: string[];
  /** Calls whose peer is no longer a member: close them. */
  close: string[];
}

/** What to do to bring the calls in line with the member list. Pure, so the pairing rule is testable alone. */
export function meshPlan(self: string, members: readonly string[], calls: Iterable<string>): MeshPlan {
  const current = new Set(calls);
  const mine = members.indexOf(self);
  const plan: MeshPlan = { offer: [], await: [], close: [] };
  members.forEach((peer, index) => {
    if (peer === self || current.has(peer)) return;
    // Not (yet) in the list ourselves: everyone there is earlier.
    if (mine === -1 || index < mine) plan.offer.push(peer);
    else plan.await.push(peer);
  });
  for (const peer of current) if (!members.includes(peer)) plan.close.push(peer);
  return plan;
}

export interface MeshCallEvents {
  /** A call with a member exists (offered or accepted); listen on it for `channel`, `track`, `state`. */
  peer: PeerCall;
  /** The call with this member ended (it left, hung up, or the mesh closed). */
  'peer-closed': string;
}

export class MeshCall extends Emitter<MeshCallEvents> {
  readonly #client: SignalingClient;
  readonly #room: MeshRoom;
  readonly #options: PeerCallOptions;
  readonly #calls = new Map<string, PeerCall>();
  /**
   * Offers from users not (yet) in our member list: their `member` event may come after their first signal. One per
   * user at most (keyed by it); a cancelled one is skipped when its turn comes.
   */
  readonly #early = new Map<string, IncomingCall>();
  readonly #unsubscribe: (() => void)[] = [];
  #closed = false;

  constructor(client: SignalingClient, room: MeshRoom, options: PeerCallOptions = {}) {
    super();
    this.#client = client;
    this.#room = room;
    this.#options = options;
    this.#unsubscribe.push(
      listenForCalls(client, (incoming) => this.#onIncoming(incoming)),
      room.on('member', () => this.#reconcile()),
      room.on('members', () => this.#reconcile()),
      room.on('closed', () => this.close()),
    );
    this.#reconcile();
  }

  /** The current calls, by peer. */
  get calls(): ReadonlyMap<string, PeerCall> {
    return this.#calls;
  }

  /** Hangs up every call and stops following the room (the room itself is left alone). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const off of this.#unsubscribe) off();
    for (const peer of [...this.#calls.keys()]) this.#end(peer);
    for (const incoming of this.#early.values()) incoming.reject();
    this.#early.clear();
  }

  #reconcile(): void {
    if (this.#closed) return;
    const plan = meshPlan(this.#client.userId, this.#room.members, this.#calls.keys());
    for (const peer of plan.close) this.#end(peer);
    for (const peer of plan.offer) this.#add(createPeerConnection(this.#client, peer, this.#options));
    for (const peer of plan.await) {
      const early = this.#early.get(peer);
      this.#early.delete(peer);
      if (early && !early.cancelled) this.#add(early.accept(this.#options));
    }
  }

  #onIncoming(incoming: IncomingCall): void {
    if (this.#closed || this.#calls.has(incoming.peerId)) return;
    if (this.#room.members.includes(incoming.peerId)) this.#add(incoming.accept(this.#options));
    else this.#early.set(incoming.peerId, incoming);
  }

  #add(call: PeerCall): void {
    this.#calls.set(call.peerId, call);
    call.on('closed', () => {
      if (this.#calls.get(call.peerId) !== call) return;
      this.#calls.delete(call.peerId);
      this.emit('peer-closed', call.peerId);
    });
    this.emit('peer', call);
  }

  #end(peer: string): void {
    // hangup sends `bye`: a member who left the room but is still online closes its side too. The call's
    // 'closed' listener above removes it and reports peer-closed.
    this.#calls.get(peer)?.hangup();
  }
}

/** Starts a mesh call over `room`; create it right after `join()`, so no newcomer's offer finds nobody listening. */
export function meshCall(client: SignalingClient, room: MeshRoom, options: PeerCallOptions = {}): MeshCall {
  return new MeshCall(client, room, options);
}
