/** One scheduled fault; `at` is seconds after traffic starts. Steps run in order, each waiting for its time. */
export type FaultStep =
  /** Add a node to the loaded cluster, then let a wave of new pairs join: the new node should take most of them. */
  | { at: number; kind: 'scale-out' }
  /** SIGTERM the oldest node: it drains (4000 closes) and exits 0. */
  | { at: number; kind: 'drain' }
  /** Add a node first (never drop to zero), then SIGKILL the oldest one. */
  | { at: number; kind: 'kill' }
  /**
   * Stop etcd, keep it down `downSeconds`, start it again on the same data dir. With `killDuring`, a node is added
   * first and the oldest one SIGKILLed 2 s into the outage: nobody can see it vanish until etcd is back.
   */
  | { at: number; kind: 'etcd-restart'; downSeconds: number; killDuring?: boolean }
  /** Stop memcached, keep it down `downSeconds`, start it again empty. */
  | { at: number; kind: 'memcached-restart'; downSeconds: number }
  /**
   * The vanishing users drop off the network (no close frame) and never come back (contract v1.1): what their
   * partners send them meanwhile must be answered EXPIRED when the resume window ends, and no sooner.
   */
  | { at: number; kind: 'vanish' }
  /**
   * Silent network death (issue 24): the routed clients' connections (see `silentDeathPairs`) go silent in both
   * directions at their proxy, with no FIN and no RST. Each client notices by its own pings (the SDK's heartbeat
   * timeout) and reconnects; the node learns nothing. With receipts on, nothing acked to their partners may be lost.
   */
  | { at: number; kind: 'silent-death' };

export interface ChaosConfig {
  name: string;
  /** Pairs connected before traffic starts. */
  pairs: number;
  /** Pairs, connected before traffic starts, whose second user drops off for good at the `vanish` step. */
  vanishingPairs: number;
  /**
   * Receipted pairs (issue 24) whose second user reaches its nodes through a freezing proxy, and goes silent at the
   * `silent-death` step. Only receipted clients are routed so: a v1.1 client behind a dead network can lose what was
   * acked into its socket (contract v1.1's known limit), which the run does not judge.
   */
  silentDeathPairs: number;
  /**
   * Tests only: route (and silence) v1.1 pairs instead, to show the verdict catches what a dead network swallows
   * without receipts. `make chaos` never sets it.
   */
  silentDeathHalf?: 'receipts' | 'v1.1';
  /** Pairs that join right after the scale-out node is visible. */
  scaleOutPairs: number;
  /**
   * How fast they join (clients per second). Gateways add etcd's load (refreshed about once a second) to their own
   * recent assignments, so a burst much faster than that through several gateways overshoots the new node.
   */
  scaleOutJoinsPerSecond: number;
  initialNodes: number;
  gateways: number;
  /** Each open client sends one message to its partner per interval. */
  intervalMs: number;
  maxInflightPerStream: number;
  /** Issue 23: rooms of `roomMembers` SDK members each, every member sending a room message every `roomIntervalMs`. */
  rooms?: number;
  roomMembers?: number;
  roomIntervalMs?: number;
  /** Traffic time; faults happen inside it. */
  durationSeconds: number;
  faults: FaultStep[];
  /** The SDK's heartbeat: a ping every `pingIntervalMs`, the connection dead after `pingTimeoutMs` without a pong. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /** MSG_* variables for every process. */
  env: Record<string, string>;
  /** The SDK's per-send deadline: a send still unanswered after it counts as silently lost. */
  sendTimeoutMs: number;
  /** Acceptance 6: the share of the scale-out wave that must land on the new node. */
  minScaleOutShare: number;
  progressEverySeconds: number;
}

const env: Record<string, string> = {
  MSG_LEASE_TTL_SECONDS: '3',
  // Re-assertion happens within TTL/3, so after memcached comes back empty sessions return within 10 s.
  MSG_SESSION_TTL_SECONDS: '30',
  MSG_LOG_LEVEL: 'warn',
};

/** `make chaos`: about two and a half minutes. */
export const FULL: ChaosConfig = {
  name: 'full',
  pairs: 40,
  vanishingPairs: 4,
  silentDeathPairs: 6,
  // More than it takes to even the new node out (80 clients on 3 nodes), so the plot shows both phases.
  scaleOutPairs: 20,
  scaleOutJoinsPerSecond: 10,
  initialNodes: 3,
  gateways: 2,
  intervalMs: 250,
  maxInflightPerStream: 20,
  rooms: 4,
  roomMembers: 3,
  roomIntervalMs: 150,
  durationSeconds: 120,
  faults: [
    { at: 10, kind: 'scale-out' },
    { at: 20, kind: 'vanish' },
    { at: 30, kind: 'drain' },
    { at: 45, kind: 'kill' },
    { at: 62, kind: 'etcd-restart', downSeconds: 8, killDuring: true },
    { at: 78, kind: 'silent-death' },
    { at: 88, kind: 'memcached-restart', downSeconds: 4 },
    { at: 105, kind: 'kill' },
  ],
  pingIntervalMs: 5000,
  pingTimeoutMs: 5000,
  env,
  sendTimeoutMs: 30_000,
  minScaleOutShare: 0.6,
  progressEverySeconds: 5,
};

/** The run inside `make test` (test/chaos.test.ts): the same faults, compressed, well under a minute. */
export const SHORT: ChaosConfig = {
  name: 'short',
  pairs: 10,
  vanishingPairs: 2,
  silentDeathPairs: 3,
  scaleOutPairs: 6,
  scaleOutJoinsPerSecond: 10,
  initialNodes: 2,
  gateways: 1,
  intervalMs: 200,
  maxInflightPerStream: 20,
  rooms: 2,
  roomMembers: 3,
  roomIntervalMs: 150,
  durationSeconds: 38,
  faults: [
    { at: 3, kind: 'scale-out' },
    { at: 6, kind: 'vanish' },
    { at: 8, kind: 'drain' },
    { at: 12, kind: 'kill' },
    { at: 17, kind: 'etcd-restart', downSeconds: 5, killDuring: true },
    { at: 27, kind: 'silent-death' },
    { at: 29, kind: 'memcached-restart', downSeconds: 2 },
  ],
  pingIntervalMs: 5000,
  pingTimeoutMs: 5000,
  env,
  sendTimeoutMs: 20_000,
  minScaleOutShare: 0.6,
  progressEverySeconds: 5,
};
