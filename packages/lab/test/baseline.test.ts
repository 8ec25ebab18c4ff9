import { checkClusterBounds, resolveConfig } from '@phalanx/node'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { baselineConfig, baselineKinds, runBaseline } from '../src/baseline.js'
import { runSimulation } from '../src/simulate.js'

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

  it("a simulation hands the report every honest server's own evaluations, whose mean is the row's", async () => {
    const { rows, detail } = await runSimulation(attacked, { log: pino({ level: 'silent' }) })
    expect(detail.servers?.map((server) => server.nodeId)).toEqual(['server-1', 'server-2', 'server-3'])
    for (const row of rows) {
      const losses = detail.servers!.map((server) => server.points.find((p) => p.round === row.round)!.loss!)
      expect(losses.reduce((a, b) => a + b, 0) / losses.length).toBeCloseTo(row.honestLoss!, 12)
    }
  })
})
