import type { Reporter, SerializedError, TestModule, TestSuite } from 'vitest/node';

/**
 * One plain closing line, `N passed, N failed` (and `, N skipped`), after
 * vitest's own summary: the form CI tooling reads in any language. A suite
 * or file that failed with none of its tests failing (a beforeAll hook threw,
 * and its tests were skipped) counts as one failure, and so does each error
 * outside any test: the line never says 0 failed when the run failed.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): void {
    let passed = 0;
    let failed = unhandledErrors.length;
    let skipped = 0;
    const failedWithoutFailingTest = (entity: TestModule | TestSuite) =>
      entity.state() === 'failed' && ![...entity.children.allTests()].some((t) => t.result().state === 'failed');
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      const suites = [...module.children.allSuites()].filter(failedWithoutFailingTest);
      // The outermost failing suites only: a suite inside a failed one is not a failure of its own.
      failed += suites.filter((s) => !suites.some((outer) => outer !== s && [...outer.children.allSuites()].includes(s))).length;
      if (suites.length === 0 && failedWithoutFailingTest(module)) failed++;
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}\n`);
  }
}
