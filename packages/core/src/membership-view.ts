import { asNodeId, type LoadRecord, type NodeId, type NodeRecord } from '@messaging-server/protocol';
import type { RegistryEvent } from './registry.js';

/** What a view's owner hears as the membership changes; every handler is optional. */
export interface MembershipHandlers {
  /** A node appeared (snapshot or put). Also called when a known node's record changed (e.g. it started draining). */
  nodeUpdated?(nodeId: NodeId, record: NodeRecord, isNew: boolean): void;
  /**
   * A node left (delete, or absent from a resynchronising snapshot). `addressReleased` is true when no remaining
   * member uses its internal address: only then may the owner drop a connection pool to that address (a node
   * restarted under a new id on the same address, or two ids behind one address, must keep theirs).
   */
  nodeLeft?(nodeId: NodeId, record: NodeRecord, addressReleased: boolean): void;
  /** A node reported its load (a put; a resynchronising snapshot replaces loads without calling this). */
  loadUpdated?(nodeId: string, load: LoadRecord): void;
  /** The watch lost (false) or regained (true) its stream. The view keeps its last state in between. */
  syncChanged?(synced: boolean): void;
}

/**
 * One process's picture of the cluster's nodes and their load, built from a registry watch ("snapshot + events").
 * The gateway allocates from it and the node routes with it. It keeps its last state while the watch is not
 * synced (etcd away): the contract's "last known membership".
 */
export class MembershipView {
  readonly #nodes = new Map<string, NodeRecord>();
  readonly #loads = new Map<string, LoadRecord>();
  #synced = true;
  #version = 0;

  constructor(private readonly handlers: MembershipHandlers = {}) {}

  get nodes(): ReadonlyMap<string, NodeRecord> {
    return this.#nodes;
  }

  get loads(): ReadonlyMap<string, LoadRecord> {
    return this.#loads;
  }

  /** Rises whenever a node appears, changes or leaves (not on load reports): what was derived from `nodes` is stale. */
  get version(): number {
    return this.#version;
  }

  /** Whether a node in the view has this internal address (a restarted node under a new id may share it). */
  hasAddress(address: string): boolean {
    for (const node of this.#nodes.values()) if (node.internalAddress === address) return true;
    return false;
  }

  /** False while the watch behind this view has lost its stream. */
  get synced(): boolean {
    return this.#synced;
  }

  apply(event: RegistryEvent): void {
    switch (event.type) {
      case 'snapshot':
        return this.resynchronise(event.entries);
      case 'put':
        if (event.entry.kind === 'node') this.putNode(event.entry.id, event.entry.value);
        else if (event.entry.kind === 'load') this.putLoad(event.entry.id, event.entry.value);
        return;
      case 'delete':
        if (event.kind === 'node') this.removeNode(event.id);
        else if (event.kind === 'load') this.#loads.delete(event.id);
        return;
      case 'status':
        this.#synced = event.synced;
        this.handlers.syncChanged?.(event.synced);
        return;
    }
  }

  /** Nodes in state `active`, the only ones that take new sessions. */
  activeNodes(): NodeRecord[] {
    return [...this.#nodes.values()].filter((node) => node.state === 'active');
  }

  countByState(): { active: number; draining: number } {
    let active = 0;
    for (const node of this.#nodes.values()) if (node.state === 'active') active += 1;
    return { active, draining: this.#nodes.size - active };
  }

  private resynchronise(entries: Extract<RegistryEvent, { type: 'snapshot' }>['entries']): void {
    const before = new Map(this.#nodes);
    this.#version += 1;
    this.#nodes.clear();
    this.#loads.clear();
    for (const entry of entries) {
      if (entry.kind === 'node') this.#nodes.set(entry.id, entry.value);
      else if (entry.kind === 'load') this.#loads.set(entry.id, entry.value);
    }
    for (const [id, record] of before) if (!this.#nodes.has(id)) this.announceLeft(id, record);
    for (const [id, record] of this.#nodes) this.handlers.nodeUpdated?.(asNodeId(id), record, !before.has(id));
  }

  private putNode(id: string, record: NodeRecord): void {
    const isNew = !this.#nodes.has(id);
    this.#nodes.set(id, record);
    this.#version += 1;
    this.handlers.nodeUpdated?.(asNodeId(id), record, isNew);
  }

  private putLoad(id: string, load: LoadRecord): void {
    this.#loads.set(id, load);
    this.handlers.loadUpdated?.(id, load);
  }

  private removeNode(id: string): void {
    const record = this.#nodes.get(id);
    if (!record) return;
    this.#nodes.delete(id);
    this.#version += 1;
    this.announceLeft(id, record);
  }

  private announceLeft(id: string, record: NodeRecord): void {
    this.handlers.nodeLeft?.(asNodeId(id), record, !this.hasAddress(record.internalAddress));
  }
}
