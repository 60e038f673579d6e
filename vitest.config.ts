import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Kernel tests share one machine's namespaces, CPU and bpffs: one file at a time.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Tests provoke libbpf warnings on purpose (refused programs, missing files).
    env: { BERTH_LOG_LEVEL: 'error' },
  },
});
