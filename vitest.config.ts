import { defineConfig } from 'vitest/config';

export const config = defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: process.env['CI'] ? ['default'] : ['default'],
  },
});

// vitest loads the default export of its config file; this is the one sanctioned default export.
// eslint-disable-next-line no-restricted-syntax
export default config;
