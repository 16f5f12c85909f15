/**
 * `node --conditions=source --import tsx packages/harness/src/bench/profile.ts`: runs each system under V8's CPU profiler
 * (cpu-prof-preload.mjs) through the bench's scenarios (relay on one node, relay across nodes, connect), each on a fresh cluster, and prints where
 * each process spent its time. Profiles land in .tmp/bench/profile/<phase>/<process>.cpuprofile (open them in
 * Chrome DevTools or speedscope for the call trees). PeerJS and the bare relay can be profiled the same way by hand.
 * BENCH_PAIRS and BENCH_WINDOW set the shape (50 × 8); PROFILE_RECEIPTS=1 opens our pairs with `receipts=1`
 * (contract v1.2), confirming every 100 ms as the bench does.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, LoadGen } from './driver.js';
import { formatSummary, summarizeProfile } from './cpuprofile-summary.js';
import { startBareWs, startOurs, startPeerJs, TMP } from './systems.js';

const seconds = Number(process.env['BENCH_SECONDS'] ?? 8);
const pairs = Number(process.env['BENCH_PAIRS'] ?? 50);
const window = Number(process.env['BENCH_WINDOW'] ?? 8);
const receipts = process.env['PROFILE_RECEIPTS'] === '1';
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
  try {
    if (phase === 'connect') {
      const r = await lg.connect({ target: sys.target, count: 3000, concurrency: 50, prefix: 'prof', avoid: ['node-2'], keep: false });
      log(`connect: ${r.rate.toFixed(0)}/s`);
    } else {
      const target = receipts && sys.target.kind === 'ours' ? { ...sys.target, receipts } : sys.target;
      await lg.pairs({ target, count: pairs, prefix: 'prof', avoidA: ['node-2'], avoidB: phase === 'relay-2' ? ['node-1'] : ['node-2'] });
      const pids = phase === 'relay-2' ? sys.crossPids : sys.relayPids;
      const r = await lg.relay({ mode: 'closed', size: 'candidate', window, warmupMs: 1000, durationMs: seconds * 1000 }, pids);
      const cpu = cpuSecondsOf(r, pids);
      const writes = pids.reduce((sum, pid) => sum + (r.syscalls[pid]?.writes ?? 0), 0);
      log(`${phase}${receipts ? ' (receipts on)' : ''}: ${r.rate.toFixed(0)} msg/s, ${((cpu * 1e6) / r.messages).toFixed(1)} µs CPU/msg, ${(writes / r.messages).toFixed(2)} writes/msg (profiler on)`);
      await lg.close();
    }
  } finally {
    await lg.stop();
    await sys.stop();
  }
  // Name each profile after its process.
  const out: string[] = [];
  for (const file of readdirSync(dir).filter((f) => /^prof-\d+\.cpuprofile$/.test(f))) {
    const pid = Number(/\d+/.exec(file)?.[0]);
    const name = names.get(pid) ?? `pid-${String(pid)}`;
    renameSync(`${dir}/${file}`, `${dir}/${name}.cpuprofile`);
    if (name === 'etcd' || name === 'memcached') continue;
    if (phase !== 'connect' && name === 'gateway') continue;
    if (phase === 'relay-1' && name === 'node-2') continue;
    const profile = JSON.parse(readFileSync(`${dir}/${name}.cpuprofile`, 'utf8')) as Parameters<typeof summarizeProfile>[0];
    out.push(formatSummary(`${phase} ${name}`, summarizeProfile(profile, 30)));
  }
  return out.join('\n\n');
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
