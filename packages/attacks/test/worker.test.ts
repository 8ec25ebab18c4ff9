import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  alie,
  alieZ,
  gaussian,
  hiddenShift,
  inverseNormalCdf,
  ipm,
  mimic,
  nonFinite,
  signFlip,
  workerAttackNames,
} from '../src/index.js'

const vectors = (...rows: number[][]): Float32Array[] => rows.map((row) => Float32Array.from(row))

/*
 * The fixture every hand-computed case uses: mean (3, 2); unbiased variance per coordinate
 * ((−2)² + 0² + 2²)/2 = 4 and (0² + 2² + (−2)²)/2 = 4, so std (2, 2) and Σ Var = 8.
 */
const HONEST = vectors([1, 2], [3, 4], [5, 0])
const Z_0_8 = 0.8416212335729143 // Φ⁻¹(0.8)
const SQRT_8 = Math.sqrt(8)

describe('worker attacks on hand-computed cases', () => {
  // Moved from registry.test.ts: a new attack adds its name here and its cases below.
  it('names the vector attacks with the cluster config names', () => {
    expect([...workerAttackNames].sort()).toEqual(
      [
        'alie',
        'gaussian',
        'hidden-shift',
        'ipm',
        'mimic',
        'non-finite',
        'optimal-alie',
        'optimal-ipm',
        'sign-flip',
      ].sort(),
    )
  })

  it.each([
    ['signFlip default: −mean', () => signFlip(HONEST), [-3, -2]],
    ['signFlip scale 2', () => signFlip(HONEST, { scale: 2 }), [-6, -4]],
    ['signFlip of a given vector', () => signFlip(HONEST, { of: Float32Array.from([1, -1]) }), [-1, 1]],
    ['ipm ε = 0.5: −0.5·mean', () => ipm(HONEST, { epsilon: 0.5 }), [-1.5, -1]],
    ['ipm ε = 0', () => ipm(HONEST, { epsilon: 0 }), [-0, -0]],
    ['alie z = 1: mean − std', () => alie(HONEST, { f: 2, z: 1 }), [1, 0]],
    ['alie z = −0.5: mean + std/2', () => alie(HONEST, { f: 2, z: -0.5 }), [4, 3]],
    // n = 3 + 2 = 5: s = ⌊5/2+1⌋ − 2 = 1, z = Φ⁻¹(4/5).
    ['alie default z, n = 5, f = 2', () => alie(HONEST, { f: 2 }), [3 - 2 * Z_0_8, 2 - 2 * Z_0_8]],
    ['mimic target 1', () => mimic(HONEST, { target: 1 }), [3, 4]],
    ['gaussian σ = 0 is the constant μ', () => gaussian(HONEST, { mu: 2.5, sigma: 0, seed: 7 }), [2.5, 2.5]],
    ['nonFinite nan', () => nonFinite(HONEST, { kind: 'nan' }), [Number.NaN, Number.NaN]],
    ['nonFinite inf', () => nonFinite(HONEST, { kind: 'inf' }), [Infinity, Infinity]],
    ['nonFinite -inf', () => nonFinite(HONEST, { kind: '-inf' }), [-Infinity, -Infinity]],
    // Equal variances: coordinate 0 (lowest index); mean₀ = 3 > 0 so the shift goes down by √8.
    ['hiddenShift default', () => hiddenShift(HONEST), [3 - SQRT_8, 2]],
    [
      'hiddenShift coordinate 1, sign +1, scale 0.5',
      () => hiddenShift(HONEST, { coordinate: 1, sign: 1, scale: 0.5 }),
      [3, 2 + SQRT_8 / 2],
    ],
  ])('%s', (_name, run, expected) => {
    const out = run()
    expect(out).toBeInstanceOf(Float32Array)
    expect(Array.from(out)).toEqual(expected.map(Math.fround))
  })

  it('hiddenShift picks the coordinate of largest variance and pushes against the mean there', () => {
    // Rows (1, 10, 0), (1, 4, 0): mean (1, 7, 0), unbiased variance (0, 3² + 3², 0) = (0, 18, 0),
    // so coordinate 1, shifted by √18 downwards because mean₁ = 7 > 0.
    const out = hiddenShift(vectors([1, 10, 0], [1, 4, 0]))
    expect(Array.from(out)).toEqual([1, 7 - Math.sqrt(18), 0].map(Math.fround))
  })

  it('gaussian is reproducible from its seed and has the asked moments', () => {
    const honest = [new Float32Array(20_000)]
    const a = gaussian(honest, { mu: 1, sigma: 2, seed: 42 })
    expect(gaussian(honest, { mu: 1, sigma: 2, seed: 42 })).toEqual(a)
    expect(gaussian(honest, { mu: 1, sigma: 2, seed: 43 })).not.toEqual(a)
    const mean = a.reduce((s, v) => s + v, 0) / a.length
    const variance = a.reduce((s, v) => s + (v - mean) ** 2, 0) / (a.length - 1)
    // Standard error of the mean is σ/√d = 2/141 ≈ 0.014; of the variance ≈ σ²·√(2/d) ≈ 0.04.
    expect(Math.abs(mean - 1)).toBeLessThan(0.07)
    expect(Math.abs(variance - 4)).toBeLessThan(0.2)
  })
})

describe('hiddenShift: the direction does not hang on the order of the honest vectors', () => {
  // Coordinate 0 sums to zero exactly, but a float64 sum of 1e30 and 1 rounds: in one order
  // the computed mean is −0.25, in the other +0.25. Both are zero for the attack's sign.
  const big = 1e30
  it.each([
    ['1e30, 1, −1e30, −1', [big, 1, -big, -1]],
    ['1e30, −1, −1e30, 1', [big, -1, -big, 1]],
    ['1, 1e30, −1, −1e30', [1, big, -1, -big]],
  ])('%s: shifted up, by √(Σ Var)', (_, column) => {
    const honest = column.map((x) => Float32Array.of(x, 0))
    const out = hiddenShift(honest, { coordinate: 0 })
    expect(out[0]).toBeGreaterThan(big / 2)
  })
})

describe("ALIE's z = Φ⁻¹((n−s)/n), s = ⌊n/2+1⌋−f", () => {
  it.each([
    // The ALIE paper's worked example: n = 50, f = 24 → s = 2, z = Φ⁻¹(0.96) ≈ 1.75.
    [50, 24, 1.7506860712521695],
    // n = 5, f = 2 → s = 1, z = Φ⁻¹(0.8).
    [5, 2, Z_0_8],
    // n = 10, f = 0 → s = 6, z = Φ⁻¹(0.4) = −Φ⁻¹(0.6).
    [10, 0, -0.2533471031357998],
    // n = 20, f = 9 → s = 2, z = Φ⁻¹(0.9).
    [20, 9, 1.2815515655446004],
  ])('n = %i, f = %i → z = %f', (n, f, z) => {
    expect(alieZ(n, f)).toBeCloseTo(z, 13)
  })

  it('matches the formula for every n, f where it is defined', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 500 }), fc.integer({ min: 0, max: 500 }), (n, f) => {
        const s = Math.floor(n / 2 + 1) - f
        if (s <= 0 || s >= n) {
          expect(() => alieZ(n, f)).toThrow(expect.objectContaining({ name: 'AlieZUndefinedError', n, f, s }))
        } else {
          expect(alieZ(n, f)).toBe(inverseNormalCdf((n - s) / n))
        }
      }),
    )
  })

  it('alie without z uses n = honest + f', () => {
    const honest = vectors([0], [2], [4], [6])
    // n = 4 + 1 = 5, f = 1: s = 2, z = Φ⁻¹(0.6); std of (0, 2, 4, 6) = √(20/3).
    const expected = 3 - inverseNormalCdf(0.6) * Math.sqrt(20 / 3)
    expect(alie(honest, { f: 1 })[0]).toBeCloseTo(expected, 5)
    // An explicit n overrides it: n = 12, f = 1 → s = 6, z = Φ⁻¹(0.5) = 0 → the mean.
    expect(alie(honest, { f: 1, n: 12 })[0]).toBe(3)
  })
})

describe('bad calls get a named error', () => {
  it.each([
    ['signFlip', () => signFlip([]), 'NoHonestVectorsError'],
    ['ipm', () => ipm(vectors([1, 2], [1]), { epsilon: 1 }), 'DimensionMismatchError'],
    ['signFlip of', () => signFlip(HONEST, { of: new Float32Array(3) }), 'DimensionMismatchError'],
    ['signFlip scale', () => signFlip(HONEST, { scale: Number.NaN }), 'InvalidAttackOptionError'],
    ['gaussian sigma', () => gaussian(HONEST, { sigma: -1, seed: 1 }), 'InvalidAttackOptionError'],
    ['ipm epsilon', () => ipm(HONEST, { epsilon: Infinity }), 'InvalidAttackOptionError'],
    ['alie f', () => alie(HONEST, { f: -1 }), 'InvalidAttackOptionError'],
    ['alie f fractional', () => alie(HONEST, { f: 1.5 }), 'InvalidAttackOptionError'],
    // n = 3 + 4 = 7: s = ⌊4.5⌋ − 4 = 0, a Byzantine majority.
    ['alie Byzantine majority', () => alie(HONEST, { f: 4 }), 'AlieZUndefinedError'],
    ['mimic target', () => mimic(HONEST, { target: 3 }), 'InvalidAttackOptionError'],
    ['nonFinite kind', () => nonFinite(HONEST, { kind: 'zero' as 'nan' }), 'InvalidAttackOptionError'],
    ['hiddenShift coordinate', () => hiddenShift(HONEST, { coordinate: 2 }), 'InvalidAttackOptionError'],
    ['hiddenShift sign', () => hiddenShift(HONEST, { sign: 2 as 1 }), 'InvalidAttackOptionError'],
  ])('%s', (_name, run, errorName) => {
    expect(run).toThrow(expect.objectContaining({ name: errorName }))
  })

  it('errors carry the values that explain them', () => {
    expect(() => mimic(HONEST, { target: 5 })).toThrow(
      expect.objectContaining({ attack: 'mimic', option: 'target', value: 5 }),
    )
    expect(() => ipm(vectors([1, 2], [1]), { epsilon: 1 })).toThrow(
      expect.objectContaining({ expected: 2, actual: 1, index: 1 }),
    )
  })
})

const honestSets = fc
  .tuple(fc.integer({ min: 2, max: 8 }), fc.integer({ min: 1, max: 6 }))
  .chain(([count, d]) =>
    fc.array(
      fc.array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), {
        minLength: d,
        maxLength: d,
      }),
      {
        minLength: count,
        maxLength: count,
      },
    ),
  )
  .map((rows) => rows.map((row) => Float32Array.from(row)))

/** The attacks with the options the properties run them with. */
const attacks: [string, (honest: readonly Float32Array[]) => Float32Array][] = [
  ['signFlip', (h) => signFlip(h, { scale: 1.5 })],
  ['gaussian', (h) => gaussian(h, { mu: 0.5, sigma: 2, seed: 3 })],
  ['ipm', (h) => ipm(h, { epsilon: 0.3 })],
  ['alie', (h) => alie(h, { f: 1 })],
  ['mimic', (h) => mimic(h, { target: 0 })],
  ['nonFinite', (h) => nonFinite(h, { kind: 'inf' })],
  ['hiddenShift', (h) => hiddenShift(h, { coordinate: 0 })],
]

describe('properties', () => {
  it.each(attacks)('%s never mutates its inputs and returns a new array', (_name, attack) => {
    fc.assert(
      fc.property(honestSets, (honest) => {
        const before = honest.map((v) => Float32Array.from(v))
        const out = attack(honest)
        expect(honest).toEqual(before)
        expect(out.length).toBe(honest[0]!.length)
        for (const v of honest) expect(out).not.toBe(v)
      }),
    )
  })

  // Mimic copies one chosen worker, so order matters for it by design; hiddenShift's default
  // coordinate is chosen by variance, symmetric too, but ties among equal variances are broken
  // by index, which a permutation of workers does not change.
  it.each(attacks.filter(([name]) => name !== 'mimic'))(
    '%s is invariant to the order of the honest vectors',
    (_name, attack) => {
      fc.assert(
        fc.property(
          honestSets.chain((honest) =>
            fc.tuple(fc.constant(honest), fc.shuffledSubarray(honest, { minLength: honest.length })),
          ),
          ([honest, permuted]) => {
            const a = attack(honest)
            const b = attack(permuted)
            // Float64 sums in another order may round differently in the last float32 bit.
            for (let j = 0; j < a.length; j++) {
              if (Number.isFinite(a[j]!)) expect(b[j]!).toBeCloseTo(a[j]!, 3)
              else expect(b[j]).toBe(a[j])
            }
          },
        ),
      )
    },
  )

  it('hiddenShift stays as close to the honest mean in ℓ2 as scale·√(Σ Var) and moves one coordinate only', () => {
    fc.assert(
      fc.property(honestSets, fc.double({ min: 0, max: 3, noNaN: true }), (honest, scale) => {
        const mean = ipm(honest, { epsilon: -1 })
        const out = hiddenShift(honest, { scale })
        const moved = Array.from(out).flatMap((v, j) => (Math.abs(v - mean[j]!) > 1e-3 ? [j] : []))
        expect(moved.length).toBeLessThanOrEqual(1)
        // Σ_j Var_j with the sample variance (n − 1; none for one vector), in float64.
        const exactMean = Array.from(out, (_, j) => honest.reduce((sum, x) => sum + x[j]!, 0) / honest.length)
        const spread =
          honest.length < 2
            ? 0
            : exactMean.reduce(
                (sum, m, j) => sum + honest.reduce((s, x) => s + (x[j]! - m) ** 2, 0) / (honest.length - 1),
                0,
              )
        const l2 = Math.sqrt(Array.from(out).reduce((sum, v, j) => sum + (v - exactMean[j]!) ** 2, 0))
        // Float32 output: the moved coordinate and the unmoved ones are rounded to 2⁻²⁴ relative.
        const expected = scale * Math.sqrt(spread)
        const rounding = 1e-6 * Math.max(1, ...exactMean.map(Math.abs), expected) * Math.sqrt(out.length)
        expect(Math.abs(l2 - expected)).toBeLessThanOrEqual(1e-5 * expected + rounding)
      }),
    )
  })
})
