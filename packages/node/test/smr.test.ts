import { average } from '@phalanx/aggregation'
import { describe, expect, it } from 'vitest'
import { resolveConfig } from '../src/config.js'
import { createAggregator } from '../src/roles.js'
import {
  createSmrStateMachine,
  type SmrGradient,
  type SmrSkipReason,
  smrReplicaOrder,
  smrWorkerIds,
} from '../src/smr.js'

const workers = new Set(['worker-0', 'worker-1', 'worker-2', 'worker-3'])

function machine(overrides: { gradientQuorum?: number; roundWindow?: number } = {}) {
  return createSmrStateMachine({
    model: Float32Array.of(1, 1),
    gradientQuorum: overrides.gradientQuorum ?? 3,
    workers,
    roundWindow: overrides.roundWindow ?? 2,
    aggregate: (gradients) => average(gradients, { f: 0 }),
    learningRate: () => 0.5,
  })
}

const g = (worker: string, round: number, ...values: number[]): SmrGradient => ({
  worker,
  round,
  gradient: Float32Array.from(values),
})

describe('SMR state machine', () => {
  it('completes round r with the first n−f gradients of r in log order, and ignores the rest', () => {
    const sm = machine()
    expect(sm.apply(g('worker-2', 0, 2, 0))).toEqual({ applied: [] })
    expect(sm.apply(g('worker-0', 0, 0, 2))).toEqual({ applied: [] })
    const third = sm.apply(g('worker-3', 0, 4, 4))
    expect(third).toMatchObject({
      applied: [{ round: 0, gradientSenders: ['worker-2', 'worker-0', 'worker-3'] }],
    })
    // θ(1) = θ(0) − 0.5 · mean((2,0), (0,2), (4,4)) = (1, 1) − (1, 1)
    expect(Array.from(sm.model)).toEqual([0, 0])
    expect(sm.round).toBe(1)
    // The fourth gradient of round 0 came too late for every replica alike.
    expect(sm.apply(g('worker-1', 0, 100, 100))).toEqual({ skipped: 'stale_round' })
  })

  it.each<[string, SmrGradient, SmrSkipReason]>([
    ['a sender outside the worker set', g('worker-9', 0, 1, 1), 'unknown_sender'],
    ['a server posing as a worker', g('server-0', 0, 1, 1), 'unknown_sender'],
    ['a round that is not an integer', g('worker-0', Number.NaN, 1, 1), 'malformed'],
    ['a negative round', g('worker-0', -1, 1, 1), 'malformed'],
    ['a vector of the wrong dimension', g('worker-0', 0, 1, 1, 1), 'wrong_dimension'],
    ['a NaN coordinate', g('worker-0', 0, Number.NaN, 1), 'non_finite'],
    ['an infinite coordinate', g('worker-0', 0, 1, Number.POSITIVE_INFINITY), 'non_finite'],
    ['a round beyond the window', g('worker-0', 3, 1, 1), 'future_round'],
  ])('skips %s', (_case, entry, reason) => {
    expect(machine().apply(entry)).toEqual({ skipped: reason })
  })

  it('keeps a worker’s first gradient of a round and skips its second', () => {
    const sm = machine({ gradientQuorum: 2 })
    sm.apply(g('worker-0', 0, 2, 2))
    expect(sm.apply(g('worker-0', 0, -50, -50))).toEqual({ skipped: 'duplicate' })
    sm.apply(g('worker-1', 0, 2, 2))
    expect(Array.from(sm.model)).toEqual([0, 0])
  })

  it('applies gradients buffered for a later round as soon as that round begins', () => {
    const sm = machine({ gradientQuorum: 1 })
    expect(sm.apply(g('worker-1', 1, 2, 2))).toEqual({ applied: [] })
    const outcome = sm.apply(g('worker-0', 0, 2, 2))
    expect('applied' in outcome && outcome.applied.map((a) => a.round)).toEqual([0, 1])
    expect(Array.from(sm.model)).toEqual([-1, -1])
  })

  it('gives every replica fed the same log bit-identical models (the multiKrum cluster rule)', () => {
    const config = resolveConfig({ workers: 4, byzantineWorkers: 0, rule: 'multiKrum' })
    const dimension = 1_000
    let state = 7
    const random = () => {
      state = (Math.imul(state, 1_103_515_245) + 12_345) >>> 0
      return state / 2 ** 32 - 0.5
    }
    const log: SmrGradient[] = []
    for (let round = 0; round < 20; round++) {
      for (const worker of ['worker-3', 'worker-1', 'worker-0', 'worker-2']) {
        log.push({ worker, round, gradient: Float32Array.from({ length: dimension }, random) })
      }
    }
    const replicas = [0, 1, 2].map(() =>
      createSmrStateMachine({
        model: new Float32Array(dimension).fill(0.25),
        gradientQuorum: 3,
        workers,
        roundWindow: 2,
        aggregate: createAggregator(config),
        learningRate: () => 0.1,
      }),
    )
    for (const entry of log) for (const replica of replicas) replica.apply(entry)
    expect(replicas.map((r) => r.round)).toEqual([20, 20, 20])
    const bytes = replicas.map((r) => Buffer.from(r.model.buffer).toString('hex'))
    expect(new Set(bytes).size).toBe(1)
    expect(replicas[0]!.model.some((value) => value !== 0.25)).toBe(true)
  })
})

describe('SMR roles from the config', () => {
  const members = [
    'server-0:12D3KooWKpw5pKv66xHCWHrHn4ukbLC8UvC7HjRqYYPvoDycX2YS',
    'server-1:12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv',
    'worker-0:12D3KooW9u38JSbgMNDhPAhJaZf6mKe9d1iWueiotNjPoyvRN9fj',
    'worker-7:12D3KooWLYVzTc68R8NM96x7XzignxS24tNmeC1bMwESbb2YuNbF',
  ]
  const smrUrl = { replication: 'smr', smrNatsUrl: 'nats://127.0.0.1:4222' }

  it.each([
    [
      0,
      [
        '12D3KooWKpw5pKv66xHCWHrHn4ukbLC8UvC7HjRqYYPvoDycX2YS',
        '12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv',
      ],
    ],
    [
      1,
      [
        '12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv',
        '12D3KooWKpw5pKv66xHCWHrHn4ukbLC8UvC7HjRqYYPvoDycX2YS',
      ],
    ],
    [
      4,
      [
        '12D3KooWKpw5pKv66xHCWHrHn4ukbLC8UvC7HjRqYYPvoDycX2YS',
        '12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv',
      ],
    ],
  ])('worker %i reads its own replica first, then the others in turn', (index, order) => {
    expect(smrReplicaOrder(resolveConfig({ ...smrUrl, members }), index)).toEqual(order)
  })

  it.each([
    [{ members }, ['worker-0', 'worker-7']],
    [{ workers: 3 }, ['worker-0', 'worker-1', 'worker-2']],
  ])('accepts gradients only from the configured workers (%j)', (fields, expected) => {
    expect([...smrWorkerIds(resolveConfig({ ...smrUrl, ...fields }))]).toEqual(expected)
  })

  it.each([
    [{ replication: 'smr' }, 'smrNatsUrl'],
    [{ ...smrUrl, smrReplicas: 0 }, 'smrReplicas'],
    [{ ...smrUrl, smrNatsUrl: '' }, 'smrNatsUrl'],
  ])('refuses %j at start-up, naming the field', (fields, field) => {
    expect(() => resolveConfig(fields)).toThrow(expect.objectContaining({ name: 'ConfigError', field }))
  })
})
