/**
 * Bad input gets a named error, never a wrong answer: for every rule and pre-aggregator, on
 * both the WASM and the portable JS kernels.
 */
import { afterAll, describe, expect, it } from 'vitest'
import {
  arc,
  BoundError,
  bucketing,
  bulyan,
  centeredClipping,
  clip,
  geometricMedian,
  krum,
  mda,
  meamed,
  median,
  multiKrum,
  nnm,
  ruleNames,
  rules,
  trimmedMean,
} from '../src/index.js'
import { setKernelBackend } from '../src/wasm/kernels.js'

const vectors = (n: number, d: number): Float32Array[] =>
  Array.from({ length: n }, (_, i) => Float32Array.from({ length: d }, (_, k) => Math.sin(i * 3 + k)))

/** Every rule and pre-aggregator with options valid for n = 11, f = 2. */
const callers: Record<string, (inputs: readonly Float32Array[]) => unknown> = {
  average: (x) => rules.average.aggregate(x, { f: 2 }),
  median: (x) => median(x, { f: 2 }),
  trimmedMean: (x) => trimmedMean(x, { f: 2 }),
  meamed: (x) => meamed(x, { f: 2 }),
  geometricMedian: (x) => geometricMedian(x, { f: 2 }),
  krum: (x) => krum(x, { f: 2 }),
  multiKrum: (x) => multiKrum(x, { f: 2 }),
  bulyan: (x) => bulyan(x, { f: 2 }),
  mda: (x) => mda(x, { f: 2 }),
  centeredClipping: (x) => centeredClipping(x, { f: 2, tau: 1 }),
  nnm: (x) => nnm(x, { f: 2 }),
  bucketing: (x) => bucketing(x, { bucketSize: 2, seed: 1 }),
  arc: (x) => arc(x, { f: 2 }),
  clip: (x) => clip(x, { maxNorm: 1 }),
}
const names = Object.keys(callers)

function thrown(fn: () => unknown): Error & Record<string, unknown> {
  try {
    fn()
  } catch (error) {
    return error as Error & Record<string, unknown>
  }
  throw new Error('expected a throw')
}

describe.each([
  ['wasm', false],
  ['js', true],
])('input errors (%s kernels)', (_label, js) => {
  afterAll(() => setKernelBackend('auto'))

  it.each(names)('%s: no inputs → EmptyInputError', (name) => {
    setKernelBackend(js ? 'js' : 'auto')
    expect(thrown(() => callers[name]!([])).name).toBe('EmptyInputError')
  })

  it.each(names)('%s: zero dimension → EmptyInputError', (name) => {
    setKernelBackend(js ? 'js' : 'auto')
    expect(thrown(() => callers[name]!(vectors(11, 0))).name).toBe('EmptyInputError')
  })

  it.each(names)('%s: mismatched lengths → DimensionMismatchError with index, expected, actual', (name) => {
    setKernelBackend(js ? 'js' : 'auto')
    const inputs = vectors(11, 5)
    inputs[7] = new Float32Array(4)
    const error = thrown(() => callers[name]!(inputs))
    expect(error.name).toBe('DimensionMismatchError')
    expect([error.index, error.expected, error.actual]).toEqual([7, 5, 4])
  })

  it.each(
    names.flatMap((name) =>
      [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY].map((value) => [name, value] as const),
    ),
  )('%s: %d → NonFiniteInputError with input index and coordinate', (name, value) => {
    setKernelBackend(js ? 'js' : 'auto')
    // d spans several tiles so the bad value sits in a later tile, not the first.
    const inputs = vectors(11, 20_003)
    inputs[6]![19_999] = value
    const error = thrown(() => callers[name]!(inputs))
    expect(error.name).toBe('NonFiniteInputError')
    expect([error.index, error.coordinate]).toEqual([6, 19_999])
  })
})

describe('bounds', () => {
  it.each([
    ['krum', 6, 2, 'krum needs n ≥ 2f+3 (n=6, f=2)'],
    ['multiKrum', 4, 1, 'multiKrum needs n ≥ 2f+3 (n=4, f=1)'],
    ['bulyan', 10, 2, 'bulyan needs n ≥ 4f+3 (n=10, f=2)'],
    ['median', 4, 2, 'median needs n ≥ 2f+1 (n=4, f=2)'],
    ['trimmedMean', 2, 1, 'trimmedMean needs n ≥ 2f+1 (n=2, f=1)'],
    ['meamed', 2, 1, 'meamed needs n ≥ 2f+1 (n=2, f=1)'],
    ['mda', 5, 3, 'mda needs n ≥ 2f+1 (n=5, f=3)'],
    ['geometricMedian', 3, 2, 'geometricMedian needs n ≥ 2f+1 (n=3, f=2)'],
  ] as const)('%s with n=%d, f=%d → BoundError naming n, f and the bound', (name, n, f, message) => {
    const run = rules[name].aggregate as (x: Float32Array[], o: { f: number }) => Float32Array
    const error = thrown(() => run(vectors(n, 3), { f }))
    expect(error.name).toBe('BoundError')
    expect(error).toBeInstanceOf(BoundError)
    expect(error.message).toBe(message)
    expect([error.rule, error.n, error.f]).toEqual([name, n, f])
  })

  it.each([
    ['nnm', () => nnm(vectors(2, 3), { f: 2 })],
    ['arc', () => arc(vectors(3, 3), { f: 3 })],
  ])('%s with f ≥ n → BoundError', (_name, run) => {
    expect(thrown(run).name).toBe('BoundError')
  })

  it.each(ruleNames)('%s: registry bound agrees with the bound checked at call time', (name) => {
    const entry = rules[name]
    const run = entry.aggregate as (x: Float32Array[], o: Record<string, unknown>) => Float32Array
    for (let n = 1; n <= 12; n++) {
      for (let f = 0; f <= 4; f++) {
        const call = () => run(vectors(n, 2), { f, tau: 1 })
        if (entry.bound(n, f)) expect(call).not.toThrow()
        else expect(thrown(call).name).toBe('BoundError')
      }
    }
  })
})

describe('invalid options → InvalidOptionError naming the option', () => {
  const x = vectors(11, 3)
  it.each([
    ['f < 0', 'f', () => krum(x, { f: -1 })],
    ['non-integer f', 'f', () => trimmedMean(x, { f: 1.5 })],
    ['NaN f', 'f', () => median(x, { f: Number.NaN })],
    ['missing required f', 'f', () => krum(x, {} as { f: number })],
    ['missing options', 'f', () => bulyan(x, undefined as unknown as { f: number })],
    ['m = 0', 'm', () => multiKrum(x, { f: 2, m: 0 })],
    ['m > n', 'm', () => multiKrum(x, { f: 2, m: 12 })],
    ['nu = 0', 'nu', () => geometricMedian(x, { nu: 0 })],
    ['iterations = 0', 'iterations', () => geometricMedian(x, { iterations: 0 })],
    ['tau ≤ 0', 'tau', () => centeredClipping(x, { tau: 0 })],
    ['tau missing', 'tau', () => centeredClipping(x, {} as { tau: number })],
    ['cc iterations 1.5', 'iterations', () => centeredClipping(x, { tau: 1, iterations: 1.5 })],
    ['bucketSize 0', 'bucketSize', () => bucketing(x, { bucketSize: 0, seed: 1 })],
    ['seed non-integer', 'seed', () => bucketing(x, { bucketSize: 2, seed: 0.5 })],
    ['maxNorm < 0', 'maxNorm', () => clip(x, { maxNorm: -1 })],
    ['maxNorm Infinity', 'maxNorm', () => clip(x, { maxNorm: Number.POSITIVE_INFINITY })],
    ['maxSubsets 0', 'maxSubsets', () => mda(x, { f: 2, maxSubsets: 0 })],
    ['non-finite start', 'start', () => geometricMedian(x, { start: Float32Array.from([0, Number.NaN, 0]) })],
  ])('%s', (_label, option, run) => {
    const error = thrown(run)
    expect(error.name).toBe('InvalidOptionError')
    expect(error.option).toBe(option)
    expect(typeof error.allowed).toBe('string')
  })

  it('a start vector of the wrong dimension → DimensionMismatchError', () => {
    expect(thrown(() => centeredClipping(x, { tau: 1, start: new Float32Array(2) })).name).toBe(
      'DimensionMismatchError',
    )
  })

  it('mda refuses past maxSubsets with SubsetLimitError naming the count', () => {
    const error = thrown(() => mda(x, { f: 2, maxSubsets: 54 }))
    expect(error.name).toBe('SubsetLimitError')
    expect([error.subsets, error.maxSubsets]).toEqual([55, 54])
    expect(() => mda(x, { f: 2, maxSubsets: 55 })).not.toThrow()
  })
})
