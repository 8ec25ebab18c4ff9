import { average, median } from '@phalanx/aggregation'
import { createModel, initBackend, loadEmbeddedMnist, syntheticLinearRegression } from '@phalanx/model'
import { beforeAll, describe, expect, it } from 'vitest'
import { type AggregationRule, type LearningRateSchedule, learningRateAt, train } from '../src/index.js'

beforeAll(async () => {
  await initBackend({ backend: 'wasm' })
})

// The MNIST runs take 10–25 s on an idle core; two shared cores under load can triple that.
const MNIST_RUN_TIMEOUT_MS = 300_000

describe('learning-rate schedules', () => {
  it.each<{ schedule: LearningRateSchedule; rates: number[] }>([
    { schedule: { kind: 'constant', rate: 0.1 }, rates: [0.1, 0.1, 0.1, 0.1, 0.1] },
    { schedule: { kind: 'step', rate: 1, factor: 0.5, every: 2 }, rates: [1, 1, 0.5, 0.5, 0.25] },
    { schedule: { kind: 'inverse', rate: 1, decay: 1 }, rates: [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5] },
  ])('$schedule.kind', ({ schedule, rates }) => {
    expect([0, 1, 2, 3, 4].map((round) => learningRateAt(schedule, round))).toEqual(rates)
  })
})

describe('trainer on synthetic linear regression (fast)', () => {
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
    workers: 5,
    rule: average as AggregationRule,
    rounds: 150,
    batchSize: 16,
    learningRate: 0.2,
    evaluateEvery: 50,
  }

  it('averaging honest workers recovers the true weights', async () => {
    const result = await train(base)
    const worst = Math.max(...Array.from(result.parameters, (p, j) => Math.abs(p - data.trueParameters[j]!)))
    // Noise 0.01 over 1,000 samples leaves the least-squares optimum ≲ 1e-3 from w*; 150 steps of
    // a well-conditioned problem (x ~ N(0, I)) at η = 0.2 shrink the initial error by ~0.8^150.
    expect(worst).toBeLessThan(0.01)
    expect(result.final.loss).toBeLessThan(1e-3)
    expect(result.final.accuracy).toBeUndefined()
    expect(result.history.filter((r) => r.test !== undefined).map((r) => r.round)).toEqual([49, 99, 149])
  })

  it.each([0, 1, 7, 149])(
    'a signal aborted after round %i stops it there: the rounds done, interrupted',
    async (at) => {
      const controller = new AbortController()
      const result = await train({
        ...base,
        signal: controller.signal,
        onRound: (report) => {
          if (report.round === at) controller.abort()
        },
      })
      // The last round is the last either way: a run that finished is not interrupted.
      expect(result.interrupted).toBe(at < base.rounds - 1)
      expect(result.rounds).toBe(at + 1)
      expect(result.history.map((r) => r.round)).toEqual(Array.from({ length: at + 1 }, (_, i) => i))
      // The final evaluation is of the model the last round done left.
      expect(result.final).toEqual(base.model.evaluate(result.parameters, base.test))
    },
  )

  it('takes a rule by its registry name', async () => {
    const byFunction = await train({ ...base, rounds: 10, rule: median as AggregationRule })
    const byName = await train({ ...base, rounds: 10, rule: 'median' })
    expect(byName.parameters).toEqual(byFunction.parameters)
  })

  it('is reproducible from its seed, with and without worker momentum', async () => {
    for (const momentum of [0, 0.9]) {
      const a = await train({ ...base, rounds: 20, momentum, seed: 5 })
      const b = await train({ ...base, rounds: 20, momentum, seed: 5 })
      const c = await train({ ...base, rounds: 20, momentum, seed: 6 })
      expect(a.parameters).toEqual(b.parameters)
      expect(a.parameters).not.toEqual(c.parameters)
    }
  })

  it('gives a custom attack exactly the honest vectors and sends its vectors to the rule', async () => {
    const seen: number[] = []
    const sizes: number[] = []
    const rule: AggregationRule = (inputs) => {
      sizes.push(inputs.length)
      return average(inputs)
    }
    await train({
      ...base,
      rule,
      rounds: 3,
      byzantine: {
        count: 2,
        behaviour: {
          kind: 'custom',
          craft: (honest, { count }) => {
            seen.push(honest.length)
            return Array.from({ length: count }, () => new Float32Array(honest[0]!.length))
          },
        },
      },
    })
    expect(seen).toEqual([3, 3, 3])
    expect(sizes).toEqual([5, 5, 5])
  })

  it('drops non-finite Byzantine vectors before the rule, as the cluster does', async () => {
    const reports: number[] = []
    const result = await train({
      ...base,
      rounds: 5,
      byzantine: {
        count: 1,
        behaviour: { kind: 'vector', attack: { name: 'non-finite', options: { kind: 'nan' } } },
      },
      onRound: (report) => {
        reports.push(report.droppedVectors)
      },
    })
    expect(reports).toEqual([1, 1, 1, 1, 1])
    expect(result.parameters.every(Number.isFinite)).toBe(true)
  })

  it('stops and reports the round when training diverges', async () => {
    const result = await train({ ...base, learningRate: 1e6, rounds: 100 })
    expect(result.divergedAtRound).toBeDefined()
    expect(result.rounds).toBeLessThan(100)
  })

  it.each([
    { change: { byzantine: { count: 5, behaviour: { kind: 'label-flip' } } }, option: 'byzantine.count' },
    { change: { momentum: 1 }, option: 'momentum' },
    { change: { byzantine: { count: 1, behaviour: { kind: 'label-flip' } } }, option: 'byzantine.behaviour' },
    { change: { workers: 0 }, option: 'workers' },
    { change: { rounds: -1 }, option: 'rounds' },
    { change: { rule: 'mediann' }, option: 'rule' },
  ] as const)('invalid $option → InvalidModelOptionError', async ({ change, option }) => {
    await expect(train({ ...base, ...change } as Parameters<typeof train>[0])).rejects.toMatchObject({
      name: 'InvalidModelOptionError',
      details: { option },
    })
  })
})

/**
 * The acceptance runs on the embedded MNIST split (7,996 train / 2,004 test), MLP 784-128-10,
 * 10 workers with batch 32 each, constant η = 1.0 (measured fastest to 95% among η ∈ {0.1, 0.5,
 * 1.0} × batch {32, 64} × momentum {0, 0.9}; 2026-11-27, `npm run bench -- model`: 95.16% at
 * round 290 of this exact configuration, 20.6 s on wasm; at η = 0.5 it takes ~500 rounds).
 */
describe('trainer on the embedded MNIST with the MLP', () => {
  it(
    'label flipping by 9 of 10 workers teaches the model the flipped labels',
    async () => {
      const { train: trainSet, test } = await loadEmbeddedMnist()
      const run = (flippers: number) =>
        train({
          model: createModel('logistic', { seed: 1 }),
          train: trainSet,
          test,
          workers: 10,
          rule: average,
          byzantine: { count: flippers, behaviour: { kind: 'label-flip' } },
          rounds: 60,
          learningRate: 0.5,
          evaluateEvery: 60,
        })
      // Measured 2026-11-27 (this config, wasm): 87.3% with no flipper, 2.1% with nine: trained
      // mostly on y → 9−y the model predicts 9−y, right only where that guess is itself wrong.
      expect((await run(0)).final.accuracy).toBeGreaterThan(0.8)
      expect((await run(9)).final.accuracy).toBeLessThan(0.2)
    },
    MNIST_RUN_TIMEOUT_MS,
  )

  it(
    'averaging 10 honest workers reaches ≥ 95% test accuracy',
    async () => {
      const { train: trainSet, test } = await loadEmbeddedMnist()
      const result = await train({
        model: createModel('mlp', { seed: 1 }),
        train: trainSet,
        test,
        workers: 10,
        rule: average,
        rounds: 700,
        batchSize: 32,
        learningRate: 1,
        evaluateEvery: 10,
        targetAccuracy: 0.95,
        seed: 1,
      })
      expect(result.reachedTargetAtRound).toBeDefined()
      expect(result.final.accuracy).toBeGreaterThanOrEqual(0.95)
    },
    MNIST_RUN_TIMEOUT_MS,
  )
})
