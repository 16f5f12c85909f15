/**
 * The bench's knobs, read from the environment once, checked, and recorded with the results.
 *
 * BENCH_SHAPES ("50x8,200x4": pairs x messages in flight per pair), BENCH_ROUNDS (3), BENCH_SECONDS (4 per closed-loop
 * run), BENCH_IDLE ("5000,10000"), BENCH_CONNECTS (2000), BENCH_SYSTEMS ("ours,peerjs,ws"; "sockjs" adds the bare
 * sockjs relay), BENCH_BASELINE (a git ref: adds `base`, ours built from that ref), BENCH_OUT (docs),
 * BENCH_RECEIPTS_SHAPES ("50x8,200x4": ours with receipts off and on, side by side, one node and across),
 * BENCH_QUICK=1 (a smoke run: everything smaller, and the report says so).
 * Paced steps last 2 s (2.5 s before the second shape came), and only the first shape runs the whole sweep: that
 * keeps a default run with a baseline near 10 minutes on this machine.
 */
import { SYSTEM_NAMES, shapeKey, type BenchConfig, type Shape, type SystemName } from './results.js';

/** The first shape's paced sweep, which the latency plot draws. */
const FULL_SWEEP = [0.25, 0.5, 0.75, 0.9];
/** The paced step the verdicts judge: every other shape runs only this one, to keep the run short. */
export const JUDGED_FRACTION = 0.5;

/** "50x8,200x4" → shapes; the first gets the full paced sweep, the others the judged step only. */
export function parseShapes(text: string): Shape[] {
  const items = text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  if (items.length === 0) throw new Error('BENCH_SHAPES names no shape (for example "50x8,200x4")');
  const shapes = items.map((item, i): Shape => {
    const match = /^(\d+)x(\d+)$/.exec(item);
    if (!match) throw new Error(`BENCH_SHAPES: "${item}" is not <pairs>x<in flight per pair>, for example 200x4`);
    const pairs = Number(match[1]);
    const window = Number(match[2]);
    // Half of a pair's window flies each way, so an odd window would silently run as the even one below it.
    if (pairs < 1 || window < 2 || window % 2 !== 0) throw new Error(`BENCH_SHAPES: "${item}" needs at least 1 pair and an even number (≥ 2) in flight per pair`);
    return { pairs, window, fractions: i === 0 ? FULL_SWEEP : [JUDGED_FRACTION] };
  });
  const keys = shapes.map(shapeKey);
  const repeated = keys.find((key, i) => keys.indexOf(key) !== i);
  if (repeated !== undefined) throw new Error(`BENCH_SHAPES names ${repeated} twice`);
  return shapes;
}

/** BENCH_SYSTEMS, with `base` added right after ours when a baseline is asked for (so the two run back to back). */
export function parseSystems(text: string | undefined, baselineRef: string | undefined): SystemName[] {
  const names = (text ?? 'ours,peerjs,ws').split(',').map((name) => name.trim());
  const unknown = names.filter((name) => !(SYSTEM_NAMES as readonly string[]).includes(name));
  if (unknown.length > 0) throw new Error(`BENCH_SYSTEMS: unknown ${unknown.join(', ')} (known: ${SYSTEM_NAMES.join(', ')})`);
  const systems = names as SystemName[];
  if (baselineRef === undefined) {
    if (systems.includes('base')) throw new Error('BENCH_SYSTEMS names base, but BENCH_BASELINE does not say which commit it is');
    return systems;
  }
  if (systems.includes('base')) return systems;
  const at = systems.indexOf('ours');
  return at < 0 ? [...systems, 'base'] : [...systems.slice(0, at + 1), 'base', ...systems.slice(at + 1)];
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number, integer = false): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!(value > 0) || (integer && !Number.isInteger(value))) throw new Error(`${name}=${raw} is not a positive ${integer ? 'whole ' : ''}number`);
  return value;
}

/** The configuration of a run; `baseline` is filled in once BENCH_BASELINE has been resolved to a commit. */
export function readConfig(env: NodeJS.ProcessEnv, defaultOut: string): BenchConfig & { baselineRef?: string } {
  for (const gone of ['BENCH_PAIRS', 'BENCH_WINDOW']) {
    if (env[gone] !== undefined) throw new Error(`${gone} is replaced by BENCH_SHAPES ("<pairs>x<in flight>,…", default "50x8,200x4")`);
  }
  const quick = env['BENCH_QUICK'] === '1';
  const baselineRef = env['BENCH_BASELINE']?.trim() || undefined;
  const config: BenchConfig & { baselineRef?: string } = {
    rounds: positive(env, 'BENCH_ROUNDS', quick ? 1 : 3, true),
    shapes: parseShapes(env['BENCH_SHAPES'] ?? '50x8,200x4'),
    seconds: positive(env, 'BENCH_SECONDS', quick ? 2 : 4),
    sweepSeconds: quick ? 1.5 : 2,
    idle: (env['BENCH_IDLE'] ?? (quick ? '500,1000' : '5000,10000')).split(',').map(Number),
    connects: positive(env, 'BENCH_CONNECTS', quick ? 300 : 2000, true),
    connectConcurrency: 50,
    stormClients: positive(env, 'BENCH_STORM_CLIENTS', quick ? 1000 : 5000, true),
    // Closed loop only: the receipts runs judge CPU per message and report ack latency, not a paced sweep.
    receiptsShapes: parseShapes(env['BENCH_RECEIPTS_SHAPES'] ?? '50x8,200x4').map((shape) => ({ ...shape, fractions: [] })),
    systems: parseSystems(env['BENCH_SYSTEMS'], baselineRef),
    out: env['BENCH_OUT'] ?? defaultOut,
    quick,
  };
  if (config.idle.some((n) => !(n > 0) || !Number.isInteger(n))) throw new Error(`BENCH_IDLE=${env['BENCH_IDLE'] ?? ''} is not a list of positive counts`);
  if (baselineRef !== undefined) config.baselineRef = baselineRef;
  return config;
}
