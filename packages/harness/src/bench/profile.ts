/**
 * `node --conditions=source --import tsx packages/harness/src/bench/profile.ts`: runs each system under V8's CPU profiler
 * (cpu-prof-preload.mjs) through the bench's scenarios (relay on one node, relay across nodes, connect), each on a fresh cluster, and prints where
 * each process spent its time. Profiles land in .tmp/bench/profile/<phase>/<process>.cpuprofile (open them in
 * Chrome DevTools or speedscope for the call trees). PeerJS and the bare relay can be profiled the same way by hand.
 * BENCH_PAIRS and BENCH_WINDOW set the shape (50 × 8); PROFILE_SIZE the payload (`candidate` ≈ 200 B, the default, or
 * `sdp` ≈ 2 KB: payload.ts); PROFILE_PHASES which phases run (comma-separated, default all); PROFILE_RECEIPTS=1 opens
 * our pairs with `receipts=1` (contract v1.2), confirming every 100 ms as the bench does.
 * For our nodes in the relay phases it also prints node authentication's share of the measurement window: the inclusive
 * time of core's node-identity module (docs/benchmarks.md, "Node authentication's share of the hop"), and how many
 * messages one delivery request carried (the hop signs and checks once per request).
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, LoadGen } from './driver.js';
import { formatInclusive, formatSummary, inclusiveShare, summarizeProfile, type CpuProfile, type SampleSpan } from './cpuprofile-summary.js';
import { BODY, type SizeName } from './payload.js';
import { startBareWs, startOurs, startPeerJs, TMP } from './systems.js';

const seconds = Number(process.env['BENCH_SECONDS'] ?? 8);
const pairs = Number(process.env['BENCH_PAIRS'] ?? 50);
const window = Number(process.env['BENCH_WINDOW'] ?? 8);
const receipts = process.env['PROFILE_RECEIPTS'] === '1';
const size = (process.env['PROFILE_SIZE'] ?? 'candidate') as SizeName;
if (!(size in BODY)) throw new Error(`PROFILE_SIZE must be one of ${Object.keys(BODY).join(', ')}`);
/** Frames of core's node-identity module, from source or from its build. */
const NODE_IDENTITY = /\/packages\/core\/(?:src|dist)\/node-identity\.(?:ts|js)(?:\?.*)?$/;
const root = `${TMP}/profile`;
const PRELOAD = fileURLToPath(new URL('./cpu-prof-preload.mjs', import.meta.url));

function log(text: string): void {
  process.stdout.write(`[profile] ${text}\n`);
}

type Phase = 'relay-1' | 'relay-2' | 'connect' | 'peerjs' | 'ws';

async function runPhase(phase: Phase): Promise<string> {
  const dir = `${root}/${phase}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const profEnv = { NODE_OPTIONS: `--import=${PRELOAD}`, BENCH_CPU_PROF_DIR: dir };
  const sys = phase === 'peerjs' ? await startPeerJs(profEnv) : phase === 'ws' ? await startBareWs(profEnv) : await startOurs(profEnv);
  const names = new Map<number, string>([
    [sys.relayPids[0] as number, phase === 'peerjs' || phase === 'ws' ? phase : 'node-1'],
    ...Object.entries(sys.otherPids).map(([name, pid]) => [pid, name] as [number, string]),
  ]);
  const lg = await LoadGen.start((text) => log(text));
  let measured: Measured | undefined;
  try {
    if (phase === 'connect') {
      const r = await lg.connect({ target: sys.target, count: 3000, concurrency: 50, prefix: 'prof', avoid: ['node-2'], keep: false });
      log(`connect: ${r.rate.toFixed(0)}/s`);
    } else {
      const target = receipts && sys.target.kind === 'ours' ? { ...sys.target, receipts } : sys.target;
      await lg.pairs({ target, count: pairs, prefix: 'prof', avoidA: ['node-2'], avoidB: phase === 'relay-2' ? ['node-1'] : ['node-2'] });
      const pids = phase === 'relay-2' ? sys.crossPids : sys.relayPids;
      const r = await lg.relay({ mode: 'closed', size, window, warmupMs: 1000, durationMs: seconds * 1000 }, pids);
      measured = { span: { startUs: lg.windowSpanUs.start, endUs: lg.windowSpanUs.end }, messages: r.messages };
      const cpu = cpuSecondsOf(r, pids);
      const perNode = pids.map((pid) => `${names.get(pid) ?? String(pid)} ${(((r.cpu[pid] ?? Number.NaN) * 1e6) / r.messages).toFixed(1)} µs`).join(', ');
      const writes = pids.reduce((sum, pid) => sum + (r.syscalls[pid]?.writes ?? 0), 0);
      log(`${phase} ${size}, ${String(pairs)} × ${String(window)}${receipts ? ' (receipts on)' : ''}: ${r.rate.toFixed(0)} msg/s, ${((cpu * 1e6) / r.messages).toFixed(1)} µs CPU/msg, ${(writes / r.messages).toFixed(2)} writes/msg (profiler on; per node: ${perNode}), window ${((measured.span.endUs - measured.span.startUs) / 1e6).toFixed(2)} s, others' work ${r.elsewhere.toFixed(2)} cores`);
      await lg.close();
    }
  } finally {
    await lg.stop();
    await sys.stop();
  }
  return reportPhase(phase, dir, names, measured);
}

/** The relay's measurement window on the profiles' clock, and the messages delivered in it (both directions). */
interface Measured {
  span: SampleSpan;
  messages: number;
}

/** Names each profile after its process and summarises those that matter for the phase. */
function reportPhase(phase: Phase, dir: string, names: Map<number, string>, measured: Measured | undefined): string {
  const out: string[] = [];
  for (const file of readdirSync(dir).filter((f) => /^prof-\d+\.(?:cpuprofile|deliveries\.json)$/.test(f))) {
    const pid = Number(/\d+/.exec(file)?.[0]);
    renameSync(`${dir}/${file}`, `${dir}/${file.replace(/^prof-\d+/, names.get(pid) ?? `pid-${String(pid)}`)}`);
  }
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const name = file.slice(0, -'.cpuprofile'.length);
    if (name === 'etcd' || name === 'memcached') continue;
    if (phase !== 'connect' && name === 'gateway') continue;
    if (phase === 'relay-1' && name === 'node-2') continue;
    const profile = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as CpuProfile;
    out.push(formatSummary(`${phase} ${name}`, summarizeProfile(profile, 30)));
    if (measured && name.startsWith('node-')) out.push(authenticationShare(`${phase} ${size} ${String(pairs)}x${String(window)} ${name}`, profile, dir, name, measured));
  }
  return out.join('\n\n');
}

/**
 * node-identity's inclusive share of the node's busy time in the window, and the messages per delivery request it
 * received there. In relay-2 each direction carries half of the delivered messages.
 */
function authenticationShare(title: string, profile: CpuProfile, dir: string, name: string, measured: Measured): string {
  const span = Number.isNaN(measured.span.startUs) || Number.isNaN(measured.span.endUs) ? undefined : measured.span;
  const text = formatInclusive(`node-identity ${title}${span ? ' (window)' : ' (whole profile: no window)'}`, inclusiveShare(profile, (url) => NODE_IDENTITY.test(url), span));
  let arrivals: number[] = [];
  try {
    arrivals = JSON.parse(readFileSync(`${dir}/${name}.deliveries.json`, 'utf8')) as number[];
  } catch {
    return text; // no delivery request reached it (relay-1)
  }
  const inWindow = span ? arrivals.filter((at) => at >= span.startUs && at <= span.endUs).length : arrivals.length;
  const perRequest = inWindow === 0 ? Number.NaN : measured.messages / 2 / inWindow;
  return `${text}\n   ${String(inWindow)} delivery requests received in the window, ≈ ${perRequest.toFixed(1)} messages each`;
}

async function main(): Promise<void> {
  const phases = (process.env['PROFILE_PHASES'] ?? 'relay-1,relay-2,connect,peerjs,ws').split(',') as Phase[];
  const reports: string[] = [];
  for (const phase of phases) {
    log(`phase ${phase}`);
    reports.push(await runPhase(phase));
  }
  const text = `${reports.join('\n\n')}\n`;
  writeFileSync(`${root}/summary.txt`, text);
  process.stdout.write(text);
  log(`profiles and summary in ${root}`);
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`profile failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
