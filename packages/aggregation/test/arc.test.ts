/**
 * ARC's k = ⌊2(f/n)(n−f)⌋, the number of inputs it clips, must be the exact integer for every
 * (n, f) the rule admits (n ≥ f+1): the reference below is BigInt division, which has no
 * rounding at all. The float formula 2·(f/n)·(n−f) was one short at 31 pairs with n ≤ 1000.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { arc } from '../src/index.js'
import { arcClipCount } from '../src/pre.js'

const exactK = (n: number, f: number): number => Number((2n * BigInt(f) * BigInt(n - f)) / BigInt(n))

describe('arcClipCount: k = ⌊2(f/n)(n−f)⌋', () => {
  it.each<{ n: number; f: number; k: number }>([
    // f = 0: nothing to clip
    { n: 1, f: 0, k: 0 },
    { n: 10, f: 0, k: 0 },
    // f = n−1, the largest f admitted: ⌊2(n−1)/n⌋ = 1 for n ≥ 2
    { n: 2, f: 1, k: 1 },
    { n: 1000, f: 999, k: 1 },
    // 2·1·4/5 = 1.6; 2·2·2/4 = 2; 2·3·7/10 = 4.2
    { n: 5, f: 1, k: 1 },
    { n: 4, f: 2, k: 2 },
    { n: 10, f: 3, k: 4 },
    // 2·33·209/242 = 13794/242 = 57 exactly; 2·(33/242)·209 gives 56.99999999999999
    { n: 242, f: 33, k: 57 },
    // the other nine with f < n/2 ≤ 500 the float formula had one short: each quotient is an integer
    { n: 450, f: 165, k: 209 },
    { n: 484, f: 66, k: 114 },
    { n: 605, f: 165, k: 240 },
    { n: 800, f: 140, k: 231 },
    { n: 900, f: 330, k: 418 },
    { n: 968, f: 66, k: 123 },
    { n: 968, f: 132, k: 228 },
    { n: 968, f: 330, k: 435 },
    { n: 1000, f: 350, k: 455 },
  ])('n = $n, f = $f → $k', ({ n, f, k }) => {
    expect(arcClipCount(n, f)).toBe(k)
  })

  it('is exact for every n ≤ 1000 and 0 ≤ f < n', () => {
    const wrong: [number, number][] = []
    for (let n = 1; n <= 1000; n++)
      for (let f = 0; f < n; f++) if (arcClipCount(n, f) !== exactK(n, f)) wrong.push([n, f])
    expect(wrong).toEqual([])
  })

  // The bound the implementation states: exact for every n < 2^27.
  it('is exact for every n < 2^27 and 0 ≤ f < n', () => {
    const pair = fc
      .integer({ min: 1, max: 2 ** 27 - 1 })
      .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 })))
    fc.assert(
      fc.property(pair, ([n, f]) => {
        expect(arcClipCount(n, f)).toBe(exactK(n, f))
      }),
      { numRuns: 2000 },
    )
  })
})

describe('arc clips exactly k inputs', () => {
  // Norms 1…242, f = 33: k = 57, so the 57 largest (186…242) are clipped to the 185th.
  it('n = 242, f = 33: the 57 largest, to the largest norm of the other 185', () => {
    const inputs = Array.from({ length: 242 }, (_, i) => Float32Array.of(i + 1))
    const out = arc(inputs, { f: 33 })
    expect(out.map((x) => x[0])).toEqual(inputs.map((x) => Math.min(x[0]!, 185)))
    expect(out.filter((x, i) => x[0] !== inputs[i]![0]).length).toBe(57)
  })
})
