// Prints the plain closing line CI reads: "tests: N passed, N failed, N skipped".
export default class SummaryReporter {
  onRunComplete(_contexts, results) {
    const { numPassedTests: p, numFailedTests: f, numPendingTests: s, numFailedTestSuites: fs } = results;
    process.stdout.write(`\ntests: ${p} passed, ${f + fs} failed, ${s} skipped\n`);
  }
}
