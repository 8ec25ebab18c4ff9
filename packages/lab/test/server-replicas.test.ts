import { median } from '@phalanx/aggregation'
import { createModel, initBackend, syntheticLinearRegression } from '@phalanx/model'
import { honestServer, modelMedian, resolveConfig, type ServerBehaviour } from '@phalanx/node'
import pino from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { type AggregationRule, runSimulation, train } from '../src/index.js'
import type { ServerReplicasInit } from '../src/server-replicas.js'

beforeAll(async () => {
  await initBackend({ backend: 'wasm' })
})

// Linear regression trains in milliseconds per round: the properties here are the protocol's.
const data = syntheticLinearRegression({
  dimension: 10,
  trainSize: 1_000,
  testSize: 200,
  noise: 0.01,
  seed: 3,
})
const base = {
  model: createModel('linear', { dimension: 10, seed: 1 }),
  train: data.train,
  test: data.test,
  workers: 7,
  rule: median as AggregationRule,
  rounds: 40,
  batchSize: 8,
  learningRate: 0.1,
  evaluateEvery: 10,
}
const replicas = (init: Partial<ServerReplicasInit>): ServerReplicasInit => ({
  count: 4,
  byzantine: 1,
  behaviour: honestServer,
  antiDrift: true,
  exchangeEvery: 1,
  gradientQuorum: 7,
  median: modelMedian,
  seed: 1,
  ...init,
})
/** Publishes every coordinate moved by `by` (a large shift, as the cluster's `shift` attack). */
const shifted = (by: number): ServerBehaviour => ({
  publishModel: (_round, model) => model.map((v) => v + by),
})
const driftOf = (result: Awaited<ReturnType<typeof train>>) =>
  Math.max(...result.history.map((r) => r.maxHonestDrift ?? 0))

describe('N servers in one process', () => {
  it('one honest server taking every gradient is the reference, bit for bit', async () => {
    for (const seed of [1, 2, 3]) {
      const reference = await train({ ...base, seed })
      const one = await train({
        ...base,
        seed,
        servers: replicas({ count: 1, byzantine: 0, antiDrift: false }),
      })
      expect(one.parameters).toEqual(reference.parameters)
      expect(one.history.every((r) => r.maxHonestDrift === undefined)).toBe(true)
    }
  })

  it('honest servers that take the same gradients stay one model (drift 0, one final hash)', async () => {
    const result = await train({ ...base, servers: replicas({ byzantine: 0 }) })
    expect(driftOf(result)).toBe(0)
    const [first, ...rest] = result.honestParameters!
    for (const other of rest) expect(other).toEqual(first)
  })

  it('servers taking different n−f gradients drift apart, and the median keeps them together', async () => {
    const init = { gradientQuorum: 5, byzantine: 0, count: 5 }
    const withMedian = await train({ ...base, rounds: 80, servers: replicas(init) })
    const without = await train({ ...base, rounds: 80, servers: replicas({ ...init, antiDrift: false }) })
    expect(driftOf(withMedian)).toBeGreaterThan(0)
    const lastDrift = (result: typeof withMedian) => result.history.at(-1)!.maxHonestDrift!
    // Without the exchange nothing pulls the models back: each random walk's spread keeps growing.
    expect(lastDrift(without)).toBeGreaterThan(2 * lastDrift(withMedian))
  })

  it.each([
    { attack: 'a large shift', behaviour: shifted(1_000) },
    { attack: 'a crash', behaviour: { publishModel: () => undefined } satisfies ServerBehaviour },
  ])('one Byzantine server of four ($attack): the honest servers still learn', async ({ behaviour }) => {
    const honest = await train({ ...base, rounds: 150, servers: replicas({ byzantine: 0 }) })
    const attacked = await train({ ...base, rounds: 150, servers: replicas({ behaviour }) })
    expect(attacked.final.loss).toBeLessThan(1e-2)
    expect(attacked.final.loss).toBeLessThan(10 * honest.final.loss + 1e-3)
  })

  it('takes every finite Byzantine gradient first and hands the rule the rest by worker index', async () => {
    const seen: number[][] = []
    const d = base.model.dimension
    const marker = (worker: number) => Float32Array.from({ length: d }, () => worker)
    await train({
      ...base,
      rounds: 3,
      byzantine: {
        count: 2,
        behaviour: { kind: 'custom', craft: () => [marker(5), new Float32Array(d).fill(Number.NaN)] },
      },
      rule: (inputs) => {
        seen.push(inputs.map((v) => v[0]!))
        return new Float32Array(d)
      },
      servers: replicas({ gradientQuorum: 5 }),
    })
    for (const inputs of seen) {
      expect(inputs).toHaveLength(5)
      // Worker 5's marker (its first coordinate is 5) is in every server's inputs; 6's NaN never.
      expect(inputs.at(-1)).toBe(5)
    }
  })

  it('is deterministic for a seed and another seed schedules other quorums', async () => {
    const init = replicas({ gradientQuorum: 5, behaviour: shifted(3) })
    const a = await train({ ...base, servers: init })
    const b = await train({ ...base, servers: init })
    const c = await train({ ...base, servers: { ...init, seed: 2 } })
    expect(b.honestParameters).toEqual(a.honestParameters)
    expect(c.honestParameters).not.toEqual(a.honestParameters)
  })
})

describe('phalanx simulate and the servers', () => {
  it('refuses the SMR baseline before any work, naming the field and what it runs', async () => {
    const config = resolveConfig({ replication: 'smr', smrNatsUrl: 'nats://127.0.0.1:1', rounds: 1 })
    const error = await runSimulation(config, { log: pino({ level: 'silent' }) }).catch((e: unknown) => e)
    expect(error).toMatchObject({
      code: 'simulate_unsupported',
      details: { field: 'replication', value: 'smr', allowed: ['median', 'no-anti-drift', 'vanilla'] },
    })
  })
})
