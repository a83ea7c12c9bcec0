import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 30_000,
    // A test that asserts nothing passes whatever the code does: it fails instead.
    expect: { requireAssertions: true },
    hookTimeout: 60_000,
    // Two cores: more workers only contend with PostgreSQL for CPU.
    maxWorkers: 2,
  },
});
