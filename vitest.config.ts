import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing but Node; `cluster` (integration and end-to-end) shares
// one real etcd + kube-apiserver started by the global setup and torn down even on failure.
export default defineConfig({
  test: {
    // The JSON report gives CI its closing "N passed, N failed" line (.ci/run).
    reporters: ['default', ['json', { outputFile: 'test-results.json' }]],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: 'cluster',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/cluster/globalSetup.ts'],
          testTimeout: 180_000,
          hookTimeout: 300_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
