import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each test file gets databases of its own, so files run in parallel; two
    // cores do not gain from more than two workers running PostgreSQL work.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
