import { defineConfig } from 'vitest/config';

// e2e tests start real registries and containerd; give them room, and keep the
// machine's two cores from being oversubscribed by parallel heavy files.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/helpers/closing-line.ts'],
    globalSetup: ['./test/helpers/temp-root.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
