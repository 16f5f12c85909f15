// The spec reporter, plus one plain closing line `N passed, N failed` that CI reads, and two guards that make a
// run without evidence fail:
// - a run that executed no test at all (mocha's own `fail-zero` does the same; kept so the line says why);
// - with `--reporter-option every-file=true` (as `make test` runs it), a spec file that defines tests or suites of
//   which none ran, so a `--grep` or an emptied `describe` cannot quietly drop a whole file from a green run. Files
//   that define neither (shared fixtures named *.test.ts so the build leaves them out) are not spec files.
// A guard failure is added to the runner's failure count before mocha turns that count into the exit code: setting
// process.exitCode here would be overwritten by mocha's own exit handler.
const path = require('node:path');
const Mocha = require('mocha');

const { EVENT_RUN_BEGIN, EVENT_RUN_END, EVENT_TEST_PASS, EVENT_TEST_FAIL } = Mocha.Runner.constants;

/** Files that define at least one suite or test, from the loaded tree (before any grep applies). */
function definingFiles(suite, into = new Set()) {
  if (suite.file) into.add(path.resolve(suite.file));
  for (const test of suite.tests) if (test.file) into.add(path.resolve(test.file));
  for (const child of suite.suites) definingFiles(child, into);
  return into;
}

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const reporterOptions = options.reporterOption ?? options.reporterOptions ?? {};
    const everyFile = String(reporterOptions['every-file'] ?? '') === 'true';
    const files = (options.files ?? []).map((file) => path.resolve(file));
    const ran = new Set();
    let defining = new Set();
    runner.once(EVENT_RUN_BEGIN, () => {
      defining = definingFiles(runner.suite);
    });
    const count = (test) => {
      if (test.file) ran.add(path.resolve(test.file));
    };
    runner.on(EVENT_TEST_PASS, count);
    runner.on(EVENT_TEST_FAIL, count);
    runner.once(EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      let guardFailures = 0;
      if (passes + failures === 0) {
        process.stdout.write('\nno test ran\n');
        guardFailures += 1;
      } else if (everyFile) {
        const silent = files.filter((file) => defining.has(file) && !ran.has(file));
        for (const file of silent) process.stdout.write(`\nno test ran in ${path.relative(process.cwd(), file)}\n`);
        guardFailures += silent.length;
      }
      // fail-zero already counted the empty run; do not count it twice.
      if (guardFailures > 0 && !(passes + failures === 0 && runner.failures > 0)) runner.failures += guardFailures;
      const failed = failures + guardFailures;
      process.stdout.write(`\n${passes} passed, ${failed} failed${pending ? `, ${pending} skipped` : ''}\n`);
    });
  }
}

module.exports = SummaryReporter;
