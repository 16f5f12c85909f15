// The spec reporter, plus one plain closing line `N passed, N failed` that CI reads, and a guard: a run that
// executed no test at all fails, because mocha alone would exit 0 on zero tests.
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const { passes, failures, pending } = runner.stats;
      if (passes + failures === 0) {
        process.stdout.write('\nno test ran\n');
        process.exitCode = 1;
      }
      process.stdout.write(`\n${passes} passed, ${failures} failed${pending ? `, ${pending} skipped` : ''}\n`);
    });
  }
}

module.exports = SummaryReporter;
