import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Server-backed suites share buckets and ports; one file at a time keeps them honest and the 2-core machine calm.
    fileParallelism: false,
    pool: 'forks',
  },
});
