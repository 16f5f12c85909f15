// `node --cpu-prof` is not allowed in NODE_OPTIONS on Node 20, and testkit spawns the CLI without our flags, so the
// profile run preloads this (NODE_OPTIONS=--import=…): it starts V8's sampling profiler and writes
// $BENCH_CPU_PROF_DIR/prof-<pid>.cpuprofile when the process exits (a graceful stop; SIGKILL writes nothing).
// It also notes when each node-to-node delivery request arrived (prof-<pid>.deliveries.json, monotonic µs, the
// profile's clock), so profile.ts can tell how many messages one request carried: the hop signs per request.
import diagnostics from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
  const deliveries = [];
  diagnostics.subscribe('http.server.request.start', ({ request }) => {
    if (request.url?.endsWith('/internal/v1/deliver')) deliveries.push(Number(process.hrtime.bigint() / 1000n));
  });
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // Same-thread inspector sessions answer synchronously, so this completes inside the exit handler.
    session.post('Profiler.stop', (error, result) => {
      if (!error) writeFileSync(`${dir}/prof-${String(process.pid)}.cpuprofile`, JSON.stringify(result.profile));
    });
    if (deliveries.length > 0) writeFileSync(`${dir}/prof-${String(process.pid)}.deliveries.json`, JSON.stringify(deliveries));
  });
}
