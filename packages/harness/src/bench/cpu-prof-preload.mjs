// `node --cpu-prof` is not allowed in NODE_OPTIONS on Node 20, and testkit spawns the CLI without our flags, so the
// profile run preloads this (NODE_OPTIONS=--import=…): it starts V8's sampling profiler and writes
// $BENCH_CPU_PROF_DIR/prof-<pid>.cpuprofile when the process exits (a graceful stop; SIGKILL writes nothing).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const dir = process.env.BENCH_CPU_PROF_DIR;
if (dir) {
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
  });
}
