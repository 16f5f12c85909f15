import type { Logger, RoomStore } from '@messaging-server/core';
import type { ServerFrame } from '@messaging-server/protocol';

/**
 * A copy of a room message written on this node to a connection with receipts on. Until the member confirms it, or
 * its connection ends and the copy goes back to the room (RoomMembers.moving), it lives only in this node's memory.
 */
export interface TrackedCopy {
  userId: string;
  safe: Promise<void>;
}

/** One journal line: a room message, and the members whose copies were unconfirmed on the node that wrote it. */
export interface JournalEntry {
  /** The writing process (a node restarted under its old id is another incarnation). */
  incarnation: string;
  seq: number;
  to: string[];
  frame: ServerFrame;
}

interface LiveEntry {
  line: string;
  /** Copies not safe yet. */
  pending: number;
  /** Its append ran (stored, or failed and left to the next rewrite). */
  settled: boolean;
}

interface RoomLog {
  entries: LiveEntry[];
  /** The journal's writes, in order: appends and rewrites never overtake each other. */
  tail: Promise<unknown>;
  /** An entry became safe since the last rewrite. */
  changed: boolean;
}

export interface RoomJournalDeps {
  store: RoomStore;
  nodeId: string;
  incarnation: string;
  ttlSeconds: number;
  log: Logger;
  /** How often the journals drop what became safe (default 1 s). */
  compactEveryMs?: number;
}

/**
 * This node's journal of each room (decision in docs/decisions.md, "Room messages outlive their home"). A room
 * message's ack means the room took it in its order (contract v1.2); the copies written here to members'
 * connections with receipts on, by this node as the room's home or as a member's node, would die with it while
 * unconfirmed. So, before the ack, the message is appended to the room's journal of this node in the store, one
 * append per message and no read; once every copy is safe the entry goes at the next rewrite. A next home reads the
 * journal when it takes the room over, and a home reads a member's entries when it resumes elsewhere; both deliver
 * those copies again (receivers drop repeats by `from` and `id`).
 */
export class RoomJournal {
  private readonly logs = new Map<string, RoomLog>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: RoomJournalDeps) {}

  /** Journals `frame` for the members of `copies` until each copy is safe; resolves once stored (false: not stored). */
  record(room: string, seq: number, frame: ServerFrame, copies: TrackedCopy[]): Promise<boolean> {
    const entry: JournalEntry = { incarnation: this.deps.incarnation, seq, to: copies.map((copy) => copy.userId), frame };
    const live: LiveEntry = { line: JSON.stringify(entry), pending: copies.length, settled: false };
    const log = this.logOf(room);
    log.entries.push(live);
    for (const copy of copies) {
      void copy.safe.then(() => {
        live.pending -= 1;
        if (live.pending === 0) log.changed = true;
      });
    }
    const append = this.inOrder(log, async () => {
      try {
        await this.deps.store.appendJournal(room, this.deps.nodeId, live.line, this.deps.ttlSeconds);
      } finally {
        // Before the next write in the journal's order runs: a rewrite must keep this line.
        live.settled = true;
      }
    });
    return append.then(
      () => true,
      (error: unknown) => {
        this.deps.log.warn({ room, err: error }, 'room journal append failed: its unconfirmed copies depend on this node');
        // The next rewrite stores it with the others.
        log.changed = true;
        return false;
      },
    );
  }

  /**
   * The room's journal as `writer` (its previous home) left it, without this process's own entries, per member
   * (oldest first), and that journal cleared: the caller, the room's new home, delivers those copies again. Its own
   * journal (a restart under the same node id) keeps this process's entries.
   */
  async takeOver(room: string, writer: string): Promise<Map<string, ServerFrame[]>> {
    const read = async (): Promise<Map<string, ServerFrame[]>> => {
      const lines = await this.deps.store.readJournal(room, writer);
      const entries = lines.map(parseEntry).filter((e): e is JournalEntry => e !== undefined && e.incarnation !== this.deps.incarnation);
      const perMember = new Map<string, ServerFrame[]>();
      for (const entry of entries) for (const userId of entry.to) perMember.set(userId, [...(perMember.get(userId) ?? []), entry.frame]);
      if (entries.length === 0) return perMember;
      if (writer !== this.deps.nodeId) await this.deps.store.resetJournal(room, writer, [], this.deps.ttlSeconds);
      else await this.deps.store.resetJournal(room, writer, this.unsafeLines(room), this.deps.ttlSeconds);
      return perMember;
    };
    // This node's own journal is rewritten in order with its appends.
    return writer === this.deps.nodeId ? this.inOrder(this.logOf(room), read) : read();
  }

  /**
   * The frames `writer`'s journal of the room keeps for `userId`, oldest first, read only: the member resumed away
   * from `writer`, which may have died with them unconfirmed (or may live on and drop them once handed back).
   */
  async framesFor(room: string, writer: string, userId: string): Promise<ServerFrame[]> {
    const lines = await this.deps.store.readJournal(room, writer);
    return lines.map(parseEntry).filter((e): e is JournalEntry => e !== undefined && e.to.includes(userId)).map((e) => e.frame);
  }

  /** Rooms with journal entries in memory (not yet safe, or safe and not yet rewritten). */
  get size(): number {
    return this.logs.size;
  }

  start(): void {
    this.timer = setInterval(() => this.compact(), this.deps.compactEveryMs ?? 1000);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Rewrites each journal that has safe entries with only the unsafe ones (none: deletes it). */
  compact(): void {
    for (const [room, log] of this.logs) {
      if (!log.changed) continue;
      log.changed = false;
      void this.inOrder(log, async () => {
        log.entries = log.entries.filter((entry) => entry.pending > 0 || !entry.settled);
        await this.deps.store.resetJournal(room, this.deps.nodeId, this.unsafeLines(room), this.deps.ttlSeconds);
        if (log.entries.length === 0 && this.logs.get(room) === log) this.logs.delete(room);
      }).catch((error: unknown) => {
        log.changed = true;
        this.deps.log.warn({ room, err: error }, 'room journal rewrite failed; trying again');
      });
    }
  }

  /** What a rewrite keeps: entries whose append ran (later ones append after it) and that are not safe yet. */
  private unsafeLines(room: string): string[] {
    return (this.logs.get(room)?.entries ?? []).filter((entry) => entry.settled && entry.pending > 0).map((entry) => entry.line);
  }

  private logOf(room: string): RoomLog {
    let log = this.logs.get(room);
    if (!log) {
      log = { entries: [], tail: Promise.resolve(), changed: false };
      this.logs.set(room, log);
    }
    return log;
  }

  private inOrder<T>(log: RoomLog, task: () => Promise<T>): Promise<T> {
    const run = log.tail.then(task);
    log.tail = run.catch(() => undefined);
    return run;
  }
}

/** A journal line, or undefined for anything that is not one (the store is trusted, its contents still checked). */
function parseEntry(line: string): JournalEntry | undefined {
  try {
    const value = JSON.parse(line) as Partial<JournalEntry> | null;
    if (value === null || typeof value !== 'object' || typeof value.incarnation !== 'string' || typeof value.seq !== 'number') return undefined;
    if (!Array.isArray(value.to) || !value.to.every((u) => typeof u === 'string')) return undefined;
    const frame = value.frame as { type?: unknown } | undefined;
    if (frame === undefined || frame === null || typeof frame !== 'object' || frame.type !== 'message') return undefined;
    return value as JournalEntry;
  } catch {
    return undefined;
  }
}
