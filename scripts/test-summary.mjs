// Prints `tests: N passed, N failed, N skipped` from vitest's JSON report, and fails the run when a test
// failed, was skipped or left as todo, or when no test ran at all: a skipped suite is never a pass.
import { readFileSync } from 'node:fs';

const file = process.argv[2];
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`[test] no vitest report at ${file}: ${err.message}`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A file that fails to load fails as a suite with no failed test: count it then, but never twice.
const failed = report.numFailedTests || report.numFailedTestSuites || 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
if (skipped > 0) {
  for (const suite of report.testResults ?? []) {
    for (const t of suite.assertionResults ?? []) if (t.status === 'pending' || t.status === 'todo' || t.status === 'skipped') console.error(`[test] skipped: ${suite.name} > ${t.fullName}`);
  }
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed === 0 && skipped === 0 && passed > 0 ? 0 : 1);
