/**
 * The fast kernels (WASM SIMD tiles and the portable JS path) against naive reference
 * implementations written here straight from the definitions, on random inputs of awkward
 * sizes (n = 1, d not a multiple of the tile, d spanning several tiles) and magnitudes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { coordinatewise, coordinatewiseJs } from '../src/coordinatewise.js'
import { CANCELLATION_GUARD, directDistances, pairwiseSquaredDistances } from '../src/distances.js'
import {
  average,
  bucketing,
  bulyan,
  centeredClipping,
  createRandom,
  geometricMedian,
  krumSelect,
  meamed,
  median,
  multiKrum,
  nnm,
  shuffledIndices,
  trimmedMean,
} from '../src/index.js'
import { setKernelBackend, tileLength, wasmSimdAvailable } from '../src/wasm/kernels.js'
import { comparatorNetwork } from '../src/wasm/network.js'

afterEach(() => setKernelBackend('auto'))

function gaussian(n: number, d: number, seed: number, scale = 1, offset = 0): Float32Array[] {
  const random = createRandom(seed)
  return Array.from({ length: n }, () =>
    Float32Array.from({ length: d }, () => offset + scale * random.normal()),
  )
}

// ---- naive references ------------------------------------------------------------------

function column(inputs: readonly Float32Array[], k: number): number[] {
  return inputs.map((x) => x[k]!).sort((a, b) => a - b)
}

/** Median of sorted values; the f32 rounding mirrors the float32 output of the rule. */
function naiveMedian(sorted: readonly number[]): number {
  const n = sorted.length
  return n % 2 === 1 ? sorted[(n - 1) / 2]! : Math.fround(sorted[n / 2 - 1]! / 2 + sorted[n / 2]! / 2)
}

function naiveTrimmed(sorted: readonly number[], f: number): number {
  const kept = sorted.slice(f, sorted.length - f)
  return kept.reduce((a, b) => a + b, 0) / kept.length
}

/**
 * The n−drop values nearest the median (distance in float32, as the rule defines it over
 * float32 data; ties keep the smaller value), averaged.
 */
function naiveClosest(sorted: readonly number[], drop: number): number {
  const med = naiveMedian(sorted)
  const byDistance = [...sorted].sort(
    (a, b) => Math.fround(Math.abs(a - med)) - Math.fround(Math.abs(b - med)) || a - b,
  )
  const kept = byDistance.slice(0, sorted.length - drop)
  return kept.reduce((a, b) => a + b, 0) / kept.length
}

function naiveCoordinatewise(
  inputs: readonly Float32Array[],
  reduce: (sorted: number[]) => number,
): Float32Array {
  return Float32Array.from({ length: inputs[0]!.length }, (_, k) => reduce(column(inputs, k)))
}

function naiveDistances(inputs: readonly Float32Array[]): number[][] {
  return inputs.map((a) =>
    inputs.map((b) => {
      let sum = 0
      for (let k = 0; k < a.length; k++) sum += (a[k]! - b[k]!) ** 2
      return sum
    }),
  )
}

function naiveKrumIndex(inputs: readonly Float32Array[], f: number): number {
  const distances = naiveDistances(inputs)
  const scores = distances.map((row, i) =>
    row
      .filter((_, j) => j !== i)
      .sort((a, b) => a - b)
      .slice(0, inputs.length - f - 2)
      .reduce((a, b) => a + b, 0),
  )
  return scores.indexOf(Math.min(...scores))
}

function expectClose(actual: Float32Array, expected: Float32Array, relative = 1e-6): void {
  expect(actual.length).toBe(expected.length)
  for (let k = 0; k < expected.length; k++) {
    const tolerance = relative * Math.max(1, Math.abs(expected[k]!))
    if (Math.abs(actual[k]! - expected[k]!) > tolerance) {
      expect.fail(`coordinate ${k}: ${actual[k]} vs ${expected[k]}`)
    }
  }
}

// ---- tests --------------------------------------------------------------------------------

describe('sorting networks', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 16])(
    'sorts every 0/1 input of size %d (0–1 principle)',
    (n) => {
      const network = comparatorNetwork(
        n,
        Array.from({ length: n }, (_, i) => i),
      )
      for (let bits = 0; bits < 1 << n; bits++) {
        const values = Array.from({ length: n }, (_, i) => (bits >> i) & 1)
        for (const [a, b] of network) {
          if (values[a]! > values[b]!) [values[a], values[b]] = [values[b]!, values[a]!]
        }
        const ones = values.reduce((s, x) => s + x, 0)
        expect(values).toEqual([...Array(n - ones).fill(0), ...Array(ones).fill(1)])
      }
    },
  )

  it.each([5, 8, 13, 32])('the network pruned for the median still places the middle values (n=%d)', (n) => {
    const middle = [Math.floor((n - 1) / 2), Math.floor(n / 2)]
    const pruned = comparatorNetwork(n, middle)
    const full = comparatorNetwork(
      n,
      Array.from({ length: n }, (_, i) => i),
    )
    expect(pruned.length).toBeLessThan(full.length)
    const random = createRandom(n)
    for (let trial = 0; trial < 200; trial++) {
      const values = Array.from({ length: n }, () => random.int(10))
      const sorted = [...values].sort((a, b) => a - b)
      for (const [a, b] of pruned) {
        if (values[a]! > values[b]!) [values[a], values[b]] = [values[b]!, values[a]!]
      }
      for (const position of middle) expect(values[position]).toBe(sorted[position])
    }
  })
})

const shapes: [number, number][] = [
  [1, 1],
  [1, 9],
  [2, 3],
  [3, 7],
  [4, 8],
  [5, 13],
  [7, 1],
  [8, 33],
  [16, 63],
  [31, 5],
  [32, tileLength(32) + 3],
  [33, 2 * tileLength(33) + 5],
  [64, 100],
]

describe.each([
  ['wasm', false],
  ['js', true],
])('coordinate-wise kernels (%s) against the naive reference', (label, js) => {
  it.runIf(label === 'js' || wasmSimdAvailable()).each(shapes)('n=%d, d=%d', (n, d) => {
    setKernelBackend(js ? 'js' : 'auto')
    const inputs = gaussian(n, d, n * 1000 + d)
    const f = Math.floor((n - 1) / 2)
    expectClose(median(inputs), naiveCoordinatewise(inputs, naiveMedian))
    for (const drop of new Set([0, 1, f].filter((x) => 2 * x < n))) {
      expectClose(
        trimmedMean(inputs, { f: drop }),
        naiveCoordinatewise(inputs, (s) => naiveTrimmed(s, drop)),
      )
      expectClose(
        meamed(inputs, { f: drop }),
        naiveCoordinatewise(inputs, (s) => naiveClosest(s, drop)),
      )
    }
  })
})

describe('coordinate-wise edge cases', () => {
  it('WASM and JS kernels agree bit for bit, drops beyond half included (as Bulyan uses them)', () => {
    const inputs = gaussian(18, 1000, 5)
    for (const mode of [
      { kind: 'median' },
      { kind: 'trimmed', drop: 7 },
      { kind: 'closest', drop: 14 },
      { kind: 'closest', drop: 3 },
    ] as const) {
      expect([...coordinatewise(inputs, mode)]).toEqual([...coordinatewiseJs(inputs, mode)])
    }
    expectClose(
      coordinatewise(inputs, { kind: 'closest', drop: 14 }),
      naiveCoordinatewise(inputs, (s) => naiveClosest(s, 14)),
    )
  })

  it('huge magnitudes: the even-n median does not overflow', () => {
    const inputs = [Float32Array.from([3e38, -3e38]), Float32Array.from([3.2e38, -3.2e38])]
    expectClose(median(inputs), Float32Array.from([3.1e38, -3.1e38]))
    expectClose(trimmedMean(inputs, { f: 0 }), Float32Array.from([3.1e38, -3.1e38]))
  })

  it('ties and duplicates', () => {
    const inputs = [0, 0, 1, 1, 1, 5].map((x) => Float32Array.from([x, -x, 0]))
    expect([...median(inputs)]).toEqual([1, -1, 0])
    expect([...trimmedMean(inputs, { f: 2 })]).toEqual([1, -1, 0])
  })
})

describe('pairwise distances', () => {
  it.each(shapes)('Gram path matches the naive distances (n=%d, d=%d)', (n, d) => {
    const inputs = gaussian(n, d, 7 * n + d)
    const fast = pairwiseSquaredDistances(inputs)
    const naive = naiveDistances(inputs)
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const expected = naive[i]![j]!
        expect(Math.abs(fast.values[i * n + j]! - expected)).toBeLessThanOrEqual(
          1e-5 * Math.max(expected, 1e-30),
        )
      }
    }
  })

  it('cancellation guard: close vectors with large norms keep their small distances accurate', () => {
    // ‖a‖² ≈ d·10⁸ while ‖a−b‖² ≈ d·10⁻⁴: the Gram identity alone would return noise.
    const d = 10_001
    const base = gaussian(1, d, 1, 1, 1e4)[0]!
    const inputs = gaussian(6, d, 2, 1e-2).map((noise) => noise.map((x, k) => base[k]! + x))
    const fast = pairwiseSquaredDistances(inputs).values
    const exact = directDistances(inputs).values
    for (let p = 0; p < exact.length; p++) {
      expect(Math.abs(fast[p]! - exact[p]!)).toBeLessThanOrEqual(1e-6 * exact[p]! + 1e-12)
    }
    expect(CANCELLATION_GUARD).toBeGreaterThan(0)
  })

  it('huge magnitudes (f32 products would overflow) fall back to float64 and stay exact', () => {
    const inputs = [1e20, -2e20, 3e19].map((scale, i) =>
      Float32Array.from({ length: 37 }, (_, k) => scale * Math.cos(i + k)),
    )
    const fast = pairwiseSquaredDistances(inputs).values
    const naive = naiveDistances(inputs)
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 3; j++) {
        expect(Number.isFinite(fast[i * 3 + j]!)).toBe(true)
        expect(Math.abs(fast[i * 3 + j]! - naive[i]![j]!)).toBeLessThanOrEqual(1e-9 * naive[i]![j]!)
      }
    }
  })

  it('tiny magnitudes (f32 subnormal products) fall back to float64', () => {
    const inputs = [1, 2, 3].map((s) => Float32Array.from({ length: 9 }, (_, k) => s * 1e-20 * (k + 1)))
    const fast = pairwiseSquaredDistances(inputs).values
    const naive = naiveDistances(inputs)
    expect(Math.abs(fast[1]! - naive[0]![1]!)).toBeLessThanOrEqual(1e-9 * naive[0]![1]!)
  })

  it.each([
    [5, 1],
    [11, 4],
    [32, 7],
  ])('Krum, Multi-Krum and Bulyan agree with the naive Krum on random inputs (n=%d, f=%d)', (n, f) => {
    const inputs = gaussian(n, tileLength(n) + 11, n)
    expect(krumSelect(inputs, { f }).index).toBe(naiveKrumIndex(inputs, f))
    setKernelBackend('js')
    expect(krumSelect(inputs, { f }).index).toBe(naiveKrumIndex(inputs, f))
    const viaJs = multiKrum(inputs, { f })
    const bulyanJs = 4 * f + 3 <= n ? bulyan(inputs, { f }) : undefined
    setKernelBackend('auto')
    expectClose(multiKrum(inputs, { f }), viaJs)
    if (bulyanJs) expectClose(bulyan(inputs, { f }), bulyanJs)
  })
})

describe('weighted sums (average, Multi-Krum, NNM, bucketing)', () => {
  function naiveMean(rows: readonly Float32Array[]): Float32Array {
    return Float32Array.from(
      { length: rows[0]!.length },
      (_, k) => rows.reduce((s, x) => s + x[k]!, 0) / rows.length,
    )
  }

  it.each(shapes)('match the naive means on both kernels (n=%d, d=%d)', (n, d) => {
    const inputs = gaussian(n, d, 3 * n + d)
    for (const js of [false, true]) {
      setKernelBackend(js ? 'js' : 'auto')
      expectClose(average(inputs), naiveMean(inputs))
      const mixed = nnm(inputs, { f: Math.floor((n - 1) / 2) })
      expect(mixed).toHaveLength(n)
      const buckets = bucketing(inputs, { bucketSize: 3, seed: n })
      const order = shuffledIndices(n, createRandom(n))
      buckets.forEach((bucket, b) => {
        expectClose(bucket, naiveMean(order.slice(3 * b, 3 * b + 3).map((i) => inputs[i]!)))
      })
    }
  })
})

describe('geometric median and centered clipping (tiled float64 iterates)', () => {
  function naiveWeiszfeld(inputs: readonly Float32Array[], nu: number, iterations: number): Float32Array {
    let z = new Array(inputs[0]!.length).fill(0) as number[]
    for (let t = 0; t < iterations; t++) {
      const beta = inputs.map(
        (x) => 1 / Math.max(nu, Math.sqrt(x.reduce((s, v, k) => s + (v - z[k]!) ** 2, 0))),
      )
      const total = beta.reduce((a, b) => a + b, 0)
      z = z.map((_, k) => inputs.reduce((s, x, i) => s + beta[i]! * x[k]!, 0) / total)
    }
    return Float32Array.from(z)
  }

  function naiveClipping(inputs: readonly Float32Array[], tau: number, iterations: number): Float32Array {
    let v = new Array(inputs[0]!.length).fill(0) as number[]
    for (let t = 0; t < iterations; t++) {
      const steps = inputs.map((x) => {
        const diff = Array.from(x, (value, k) => value - v[k]!)
        const size = Math.sqrt(diff.reduce((s, e) => s + e * e, 0))
        return diff.map((e) => e * Math.min(1, tau / size))
      })
      v = v.map((value, k) => value + steps.reduce((s, step) => s + step[k]!, 0) / inputs.length)
    }
    return Float32Array.from(v)
  }

  it.each([
    [1, 5],
    [3, 7],
    [9, tileLength(9) + 5],
    [32, 1000],
  ])('match the naive iterations on both kernels (n=%d, d=%d)', (n, d) => {
    const inputs = gaussian(n, d, n + 17 * d, 1, 0.5)
    for (const js of [false, true]) {
      setKernelBackend(js ? 'js' : 'auto')
      expectClose(geometricMedian(inputs, { iterations: 4, nu: 0.1 }), naiveWeiszfeld(inputs, 0.1, 4), 1e-5)
      expectClose(centeredClipping(inputs, { tau: 2, iterations: 3 }), naiveClipping(inputs, 2, 3), 1e-5)
    }
  })
})
