import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

// Tests import packages from source so a change needs no build to be tested; the
// multi-process tests in test/ spawn the built CLI instead (npm test builds first).
const packagesDir = fileURLToPath(new URL('./packages/', import.meta.url))

export default defineConfig({
  resolve: {
    alias: [{ find: /^@phalanx\/([a-z-]+)$/, replacement: `${packagesDir}$1/src/index.ts` }],
  },
  test: {
    // Vitest's default is one worker fewer than the cores: one, here. The unit files are
    // single-threaded and independent, so they take both cores; the system files still run one
    // at a time (below), and only after every unit file (`groupOrder`), so that no unit test
    // competes with a cluster for CPU.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // scripts/test: tests of the repository's own tooling and docs (the dependency rules of
          // `lint`, docs/RULES.md against the registries).
          include: ['packages/*/test/**/*.test.ts', 'scripts/test/*.test.ts'],
          testTimeout: 60_000,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'system',
          include: ['test/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // Multi-process tests share two cores: run their files one at a time.
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
})
