/**
 * Properties (fast-check): permutation invariance, robustness however far up to f inputs are
 * moved, bounds enforced, inputs never mutated, outputs never an input.
 *
 * Inputs are Gaussian from a seeded generator (fast-check draws the seed, the shape and the
 * attack): continuous values make exact score ties, where a permutation may legitimately change
 * Krum's lowest-index choice, practically impossible.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  arc,
  bucketing,
  bulyan,
  clip,
  createRandom,
  krum,
  meamed,
  median,
  nnm,
  type PreAggregatorName,
  pairwiseSquaredDistances,
  preAggregators,
  type RuleName,
  ruleNames,
  rules,
  shuffledIndices,
  trimmedMean,
} from '../src/index.js'
import { krumScores } from '../src/rules/krum.js'

function gaussian(n: number, d: number, seed: number): Float32Array[] {
  const random = createRandom(seed)
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, () => random.normal()))
}

/** Options valid for every rule at (n, f) with n ≥ 4f+3. */
function ruleOptions(name: RuleName, f: number): Record<string, unknown> {
  return name === 'centeredClipping' ? { f, tau: 1 } : { f }
}

function preOptions(name: PreAggregatorName, f: number): Record<string, unknown> {
  if (name === 'bucketing') return { bucketSize: 2, seed: 3 }
  if (name === 'clip') return { maxNorm: 1 }
  return { f }
}

function runRule(name: RuleName, inputs: readonly Float32Array[], f: number): Float32Array {
  return (rules[name].aggregate as (x: readonly Float32Array[], o: unknown) => Float32Array)(
    inputs,
    ruleOptions(name, f),
  )
}

function runPre(name: PreAggregatorName, inputs: readonly Float32Array[], f: number): Float32Array[] {
  return (preAggregators[name] as (x: readonly Float32Array[], o: unknown) => Float32Array[])(
    inputs,
    preOptions(name, f),
  )
}

function expectClose(a: Float32Array, b: Float32Array): void {
  for (let k = 0; k < a.length; k++)
    expect(Math.abs(a[k]! - b[k]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(b[k]!)))
}

/** n ≥ 4f+3 so every rule's bound holds; d small but past 4 so SIMD lanes and tails mix. */
const scenario = fc.record({
  f: fc.integer({ min: 0, max: 3 }),
  extra: fc.integer({ min: 0, max: 5 }),
  d: fc.integer({ min: 1, max: 23 }),
  seed: fc.integer(),
  permutationSeed: fc.integer(),
})

/**
 * Krum breaks score ties by lowest index (the brief's rule), so a permutation may change its
 * pick exactly when the lowest score is tied, and such ties are structural, not rare: with one
 * neighbour (n−f−2 = 1, or Bulyan's last runs) the two inputs of the closest pair always tie.
 * Invariance is therefore asserted on inputs where every Krum choice the rule makes is unique.
 */
function krumChoicesUnique(name: RuleName, inputs: readonly Float32Array[], f: number): boolean {
  if (name !== 'krum' && name !== 'multiKrum' && name !== 'bulyan') return true
  const distances = pairwiseSquaredDistances(inputs)
  const n = inputs.length
  const unique = (scores: Float64Array, take: number): boolean => {
    const sorted = [...scores].sort((a, b) => a - b)
    return take >= sorted.length || sorted[take - 1]! < sorted[take]!
  }
  const all = Array.from({ length: n }, (_, i) => i)
  if (name === 'krum') return unique(krumScores(distances, all, n - f - 2), 1)
  if (name === 'multiKrum') return unique(krumScores(distances, all, n - f - 2), n - f)
  const remaining = [...all]
  for (let t = 0; t < n - 2 * f; t++) {
    const neighbours = Math.min(remaining.length - 1, Math.max(1, remaining.length - f - 2))
    const scores = krumScores(distances, remaining, neighbours)
    if (!unique(scores, 1)) return false
    remaining.splice(scores.indexOf(Math.min(...scores)), 1)
  }
  return true
}

describe('permutation invariance', () => {
  it.each(ruleNames)('%s(π(x)) = same(x)', (name) => {
    fc.assert(
      fc.property(scenario, ({ f, extra, d, seed, permutationSeed }) => {
        const inputs = gaussian(4 * f + 3 + extra, d, seed)
        fc.pre(krumChoicesUnique(name, inputs, f))
        const order = shuffledIndices(inputs.length, createRandom(permutationSeed))
        expectClose(
          runRule(
            name,
            order.map((i) => inputs[i]!),
            f,
          ),
          runRule(name, inputs, f),
        )
      }),
      { numRuns: 40 },
    )
  })

  it.each(['nnm', 'arc', 'clip'] as const)('%s(π(x)) = π(%s(x))', (name) => {
    fc.assert(
      fc.property(scenario, ({ f, extra, d, seed, permutationSeed }) => {
        const inputs = gaussian(4 * f + 3 + extra, d, seed)
        const order = shuffledIndices(inputs.length, createRandom(permutationSeed))
        const direct = runPre(name, inputs, f)
        const permuted = runPre(
          name,
          order.map((i) => inputs[i]!),
          f,
        )
        order.forEach((i, position) => {
          expectClose(permuted[position]!, direct[i]!)
        })
      }),
      { numRuns: 40 },
    )
  })

  // Bucketing is random by design: with the same seed, a permutation of the inputs changes which
  // inputs share a bucket, so outputs are not permutation-invariant pointwise. What holds for
  // every permutation: the size-weighted sum of the bucket means is the sum of the inputs, and
  // with s = 1 the outputs are a permutation of the inputs.
  it('bucketing: Σ |bucket|·mean = Σ x_i for any order; s = 1 permutes the inputs', () => {
    fc.assert(
      fc.property(scenario, fc.integer({ min: 1, max: 6 }), ({ f, d, seed, permutationSeed }, size) => {
        const inputs = gaussian(4 * f + 3, d, seed)
        const n = inputs.length
        const order = shuffledIndices(n, createRandom(permutationSeed))
        const permuted = order.map((i) => inputs[i]!)
        const out = bucketing(permuted, { bucketSize: size, seed })
        expect(out.length).toBe(Math.ceil(n / size))
        for (let k = 0; k < d; k++) {
          let total = 0
          inputs.forEach((x) => {
            total += x[k]!
          })
          let weighted = 0
          out.forEach((mean, b) => {
            weighted += mean[k]! * Math.min(size, n - b * size)
          })
          expect(Math.abs(weighted - total)).toBeLessThanOrEqual(1e-4 * n)
        }
        const singles = bucketing(permuted, { bucketSize: 1, seed }).map((x) => x.join())
        expect(singles.sort()).toEqual(inputs.map((x) => x.join()).sort())
      }),
      { numRuns: 40 },
    )
  })
})

/** Moves up to f inputs anywhere (scale up to 1e30, sign and direction arbitrary). */
const attack = fc.record({
  f: fc.integer({ min: 1, max: 3 }),
  extra: fc.integer({ min: 0, max: 4 }),
  d: fc.integer({ min: 1, max: 17 }),
  seed: fc.integer(),
  byzantine: fc.integer({ min: 0, max: 3 }),
  exponent: fc.integer({ min: 0, max: 30 }),
  sameVector: fc.boolean(),
})

function attacked(p: {
  f: number
  extra: number
  d: number
  seed: number
  byzantine: number
  exponent: number
  sameVector: boolean
}): { honest: Float32Array[]; all: Float32Array[]; f: number } {
  const n = 4 * p.f + 3 + p.extra
  const count = Math.min(p.byzantine, p.f)
  const honest = gaussian(n - count, p.d, p.seed)
  const random = createRandom(p.seed ^ 0x5bd1e995)
  const scale = 10 ** p.exponent
  const shared = Float32Array.from({ length: p.d }, () => scale * (random.next() * 2 - 1))
  const byzantine = Array.from({ length: count }, () =>
    p.sameVector ? shared.slice() : Float32Array.from({ length: p.d }, () => scale * (random.next() * 2 - 1)),
  )
  // Byzantine inputs go to random positions among the honest ones.
  const all = [...honest]
  for (const x of byzantine) all.splice(random.int(all.length + 1), 0, x)
  return { honest, all, f: p.f }
}

function insideHonestRange(out: Float32Array, honest: readonly Float32Array[]): void {
  for (let k = 0; k < out.length; k++) {
    const values = honest.map((x) => x[k]!)
    expect(out[k]!).toBeGreaterThanOrEqual(Math.min(...values))
    expect(out[k]!).toBeLessThanOrEqual(Math.max(...values))
  }
}

describe('robustness: up to f inputs moved anywhere', () => {
  it.each([
    ['median', (x: Float32Array[], f: number) => median(x, { f })],
    ['trimmedMean', (x: Float32Array[], f: number) => trimmedMean(x, { f })],
  ] as const)('%s stays inside the honest coordinate-wise range', (_name, rule) => {
    fc.assert(
      fc.property(attack, (p) => {
        const { honest, all, f } = attacked(p)
        insideHonestRange(rule(all, f), honest)
      }),
      { numRuns: 150 },
    )
  })

  // Not for any placement: a Byzantine value just outside the honest range but close to the
  // median is among the β averaged (CI found f = 1, n = 7: 0.328 against an honest max of 0.321).
  // Once the Byzantine inputs are far, Krum's selection leaves them out and the bound holds.
  it('bulyan stays inside the honest coordinate-wise range once the Byzantine ones are far', () => {
    fc.assert(
      fc.property(attack, (p) => {
        const { honest, all, f } = attacked({ ...p, exponent: Math.max(p.exponent, 4) })
        insideHonestRange(bulyan(all, { f }), honest)
      }),
      { numRuns: 150 },
    )
  })

  it('krum returns one of the honest inputs once the Byzantine ones are far', () => {
    fc.assert(
      fc.property(attack, (p) => {
        const { honest, all, f } = attacked({ ...p, exponent: Math.max(p.exponent, 4) })
        const out = krum(all, { f })
        expect(honest.some((x) => x.every((value, k) => value === out[k]))).toBe(true)
      }),
      { numRuns: 150 },
    )
  })

  it('meamed stays inside the honest range once the Byzantine ones are far', () => {
    fc.assert(
      fc.property(attack, (p) => {
        const { honest, all, f } = attacked({ ...p, exponent: Math.max(p.exponent, 4) })
        insideHonestRange(meamed(all, { f }), honest)
      }),
      { numRuns: 100 },
    )
  })
})

describe('bounds are enforced with BoundError', () => {
  it.each(ruleNames)('%s', (name) => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 8 }), (n, f) => {
        const inputs = gaussian(n, 3, n * 31 + f)
        const call = () => runRule(name, inputs, f)
        if (rules[name].bound(n, f)) {
          expect(call()).toHaveLength(3)
        } else {
          expect(call).toThrow(expect.objectContaining({ name: 'BoundError', n, f }))
        }
      }),
      { numRuns: 60 },
    )
  })
})

describe('purity: inputs never mutated, outputs never an input', () => {
  const everyFunction: [string, (x: readonly Float32Array[], f: number) => Float32Array | Float32Array[]][] =
    [
      ...ruleNames.map((name): [string, (x: readonly Float32Array[], f: number) => Float32Array] => [
        name,
        (x, f) => runRule(name, x, f),
      ]),
      ['nnm', (x, f) => nnm(x, { f })],
      ['bucketing', (x) => bucketing(x, { bucketSize: 1, seed: 9 })],
      ['arc', (x, f) => arc(x, { f })],
      ['clip', (x) => clip(x, { maxNorm: 1e9 })],
    ]
  it.each(everyFunction)('%s', (_name, run) => {
    fc.assert(
      fc.property(scenario, ({ f, extra, d, seed }) => {
        const inputs = gaussian(4 * f + 3 + extra, d, seed)
        const before = inputs.map((x) => x.slice())
        const out = run(inputs, f)
        const outputs = Array.isArray(out) ? out : [out]
        for (const o of outputs) {
          expect(o).toBeInstanceOf(Float32Array)
          for (const x of inputs) {
            expect(o).not.toBe(x)
            expect(o.buffer).not.toBe(x.buffer)
          }
        }
        inputs.forEach((x, i) => {
          expect([...x]).toEqual([...before[i]!])
        })
      }),
      { numRuns: 25 },
    )
  })
})
