import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{protocol,server,client-node,client-browser,cli}/src/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // WASM backends and real server processes: keep parallelism modest on a 2-core machine.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
