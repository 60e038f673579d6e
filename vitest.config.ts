import { defineConfig } from 'vitest/config';

export default defineConfig({
  // The CLI's start-up path is CommonJS TypeScript (.cts, see src/cli/berth.cts): vite leaves .cts untransformed unless told.
  esbuild: { include: /\.(m?ts|cts|[jt]sx)$/ },
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
