import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { driftOf, farFromMedian, medianOf } from '../src/round-record.js'

describe('a server’s drift', () => {
  it.each<{ what: string; distances: Record<string, number>; drift: number | undefined }>([
    { what: 'none without a received model', distances: {}, drift: undefined },
    { what: 'the one distance', distances: { a: 0.5 }, drift: 0.5 },
    {
      what: 'the lower of two: one honest peer beside a Byzantine one is not averaged into drift',
      distances: { honest: 0.01, byzantine: 40 },
      drift: 0.01,
    },
    { what: 'the middle of three', distances: { a: 3, b: 1, c: 2 }, drift: 2 },
    { what: 'none when not finite', distances: { a: Number.NaN }, drift: undefined },
  ])('$what', ({ distances, drift }) => {
    expect(driftOf(distances)).toBe(drift)
  })

  it('is the lower median: one of the values, at least half of them at or above it', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 16 }),
        (values) => {
          const median = medianOf(values)!
          expect(values).toContain(median)
          const atOrBelow = values.filter((v) => v <= median).length
          const atOrAbove = values.filter((v) => v >= median).length
          expect(atOrBelow).toBeGreaterThanOrEqual(Math.ceil(values.length / 2))
          expect(atOrAbove).toBeGreaterThanOrEqual(Math.floor(values.length / 2) + 1)
        },
      ),
    )
  })
})

describe('model_far_from_median suspicions', () => {
  it.each<{ what: string; distances: Record<string, number>; suspects: string[] }>([
    { what: 'none among close models', distances: { a: 0.01, b: 0.02, c: 0.015 }, suspects: [] },
    { what: 'the model over 10× the median away', distances: { a: 0.01, b: 0.02, c: 5 }, suspects: ['c'] },
    // The floor: identical honest models differ by float rounding only.
    { what: 'none under the 1e-3 floor', distances: { a: 1e-9, b: 1e-9, c: 5e-4 }, suspects: [] },
    {
      what: 'a non-finite distance',
      distances: { a: 0.01, b: 0.02, c: Number.POSITIVE_INFINITY },
      suspects: ['c'],
    },
  ])('$what', ({ distances, suspects }) => {
    const found = farFromMedian(7, distances, driftOf(distances) ?? medianOf(Object.values(distances)))
    expect(found.map((s) => s.suspect)).toEqual(suspects)
    for (const suspicion of found) {
      expect(suspicion).toMatchObject({ reason: 'model_far_from_median', round: 7 })
      expect(suspicion.evidence.distance).toBe(distances[suspicion.suspect])
    }
  })
})
