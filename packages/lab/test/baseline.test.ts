import { checkClusterBounds, resolveConfig } from '@phalanx/node'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { baselineConfig, baselineKinds, runBaseline } from '../src/baseline.js'

const attacked = resolveConfig({
  model: 'linear',
  dataset: 'synthetic',
  backend: 'cpu',
  learningRate: 0.1,
  rule: 'median',
  servers: 4,
  byzantineServers: 1,
  workers: 5,
  byzantineWorkers: 1,
  rounds: 3,
  evalEvery: 1,
  seed: 7,
})

describe('baselines', () => {
  it.each([
    ['no-attack', { servers: 4, byzantineServers: 0, byzantineWorkers: 0, replication: 'median' }],
    ['vanilla', { servers: 1, byzantineServers: 0, byzantineWorkers: 1, replication: 'vanilla' }],
    ['simulate', { servers: 4, byzantineServers: 1, byzantineWorkers: 1, replication: 'median' }],
  ] as const)('%s keeps the seed and the study, and is a valid cluster', (kind, expected) => {
    const config = baselineConfig(attacked, kind)
    expect(config).toMatchObject({ ...expected, seed: 7, rule: 'median', rounds: 3, workers: 5 })
    expect(() => checkClusterBounds(config)).not.toThrow()
  })

  it('every kind runs, one row per round of the run it is compared with', async () => {
    for (const kind of baselineKinds) {
      const baseline = await runBaseline(attacked, kind, { log: pino({ level: 'silent' }) })
      expect(baseline.rows.map((row) => row.round)).toEqual([0, 1, 2])
      expect(baseline.label).not.toBe('')
    }
  })
})
