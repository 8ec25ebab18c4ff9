import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { inverseNormalCdf } from '../src/index.js'

/*
 * Reference values: the p column is Φ(x) for round x (computed as erfc(−x/√2)/2 in double
 * precision) or a round p with Φ⁻¹(p) from published tables; each range of AS 241 is hit:
 * central |p − 0.5| ≤ 0.425, intermediate √(−ln p) ≤ 5, tail beyond.
 */
describe('inverseNormalCdf (Wichura AS 241)', () => {
  it.each([
    [0.5, 0],
    [0.6, 0.2533471031357998],
    [0.8413447460685429, 1],
    [0.95, 1.6448536269514722],
    [0.975, 1.959963984540054],
    [0.99, 2.3263478740408408],
    [0.999, 3.090232306167813],
    [0.9986501019683699, 3],
    [2.866515718791946e-7, -5],
    [1e-10, -6.361340902404056],
    [6.220960574271819e-16, -8],
    [7.619853024160593e-24, -10],
    [1e-300, -37.0470962993612],
  ])('Φ⁻¹(%d) = %d', (p, x) => {
    // Relative 1e-13: AS 241 is good to ~1e-16, the reference Φ(x) values to ~1e-15.
    expect(Math.abs(inverseNormalCdf(p) - x)).toBeLessThanOrEqual(1e-13 * Math.max(1, Math.abs(x)))
  })

  it('is odd around 1/2 and increasing', () => {
    // Dyadic p = m/2³⁰ so that 1 − p is exact and the symmetry is not blurred by rounding.
    const dyadic = fc.integer({ min: 1, max: 2 ** 29 }).map((m) => m / 2 ** 30)
    fc.assert(
      fc.property(dyadic, dyadic, (p, q) => {
        expect(inverseNormalCdf(1 - p)).toBeCloseTo(-inverseNormalCdf(p), 12)
        if (p < q) expect(inverseNormalCdf(p)).toBeLessThan(inverseNormalCdf(q))
      }),
    )
  })

  it.each([0, 1, -0.1, 1.5, Number.NaN])('p = %d is out of range', (p) => {
    expect(() => inverseNormalCdf(p)).toThrow(expect.objectContaining({ name: 'ProbabilityOutOfRangeError' }))
  })
})
