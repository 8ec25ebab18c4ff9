/**
 * The one SGD step and the one worker momentum (`step.ts`): their definitions coordinate by
 * coordinate, and the properties every caller relies on (fast-check).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { DimensionMismatchError, momentumStep, sgdStep } from '../src/index.js'

/** Coordinates as a trainer sees them: finite, of any sign and scale a gradient reaches. */
const coordinate = fc.float({ min: -1e3, max: 1e3, noNaN: true })
const pair = fc
  .integer({ min: 1, max: 24 })
  .chain((d) =>
    fc.tuple(
      fc.array(coordinate, { minLength: d, maxLength: d }),
      fc.array(coordinate, { minLength: d, maxLength: d }),
    ),
  )
  .map(([a, b]) => [Float32Array.from(a), Float32Array.from(b)] as const)
const rate = fc.double({ min: 0, max: 10, noNaN: true })
const beta = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })

/** Equal value by value (+0 and −0 are the same value of a parameter). */
function sameValues(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i])
}

describe('sgdStep', () => {
  it.each([
    // θ, g, η, θ′
    [[1, 2], [0.5, -1], 1, [0.5, 3]],
    [[1, 2], [0.5, -1], 0.1, [Math.fround(1 - 0.1 * 0.5), Math.fround(2 + 0.1)]],
    [[0], [3], 0, [0]],
  ])('θ=%j, g=%j, η=%d gives %j', (params, gradient, eta, expected) => {
    expect(Array.from(sgdStep(Float32Array.from(params), Float32Array.from(gradient), eta))).toEqual(expected)
  })

  it('is fround(θ_i − η·g_i) per coordinate, in a new vector, inputs untouched', () => {
    fc.assert(
      fc.property(pair, rate, ([params, gradient], eta) => {
        const before = [params.slice(), gradient.slice()]
        const next = sgdStep(params, gradient, eta)
        expect(next).not.toBe(params)
        expect(sameValues(params, before[0]!) && sameValues(gradient, before[1]!)).toBe(true)
        const expected = Float32Array.from(params, (value, i) => Math.fround(value - eta * gradient[i]!))
        expect(sameValues(next, expected)).toBe(true)
      }),
    )
  })

  it('with η = 0 is the identity', () => {
    fc.assert(fc.property(pair, ([params, gradient]) => sameValues(sgdStep(params, gradient, 0), params)))
  })

  it('is linear in the gradient: scaling g by 2^k is scaling η by 2^k, bit for bit', () => {
    fc.assert(
      fc.property(pair, rate, fc.integer({ min: 0, max: 8 }), ([params, gradient], eta, k) => {
        const scaled = gradient.map((value) => value * 2 ** k)
        return sameValues(sgdStep(params, scaled, eta), sgdStep(params, gradient, eta * 2 ** k))
      }),
    )
  })

  it('refuses a gradient of another dimension', () => {
    expect(() => sgdStep(new Float32Array(3), new Float32Array(2), 1)).toThrow(DimensionMismatchError)
  })
})

describe('momentumStep', () => {
  it('starts from m = g: the first step is a copy of the gradient', () => {
    const gradient = Float32Array.from([1, -2, 3])
    const first = momentumStep(undefined, gradient, 0.9)
    expect(first).not.toBe(gradient)
    expect(Array.from(first)).toEqual([1, -2, 3])
  })

  it('is fround(β·m_i + (1−β)·g_i) per coordinate, in a new vector, inputs untouched', () => {
    fc.assert(
      fc.property(pair, beta, ([previous, gradient], b) => {
        const before = [previous.slice(), gradient.slice()]
        const next = momentumStep(previous, gradient, b)
        expect(next).not.toBe(previous)
        expect(sameValues(previous, before[0]!) && sameValues(gradient, before[1]!)).toBe(true)
        const expected = Float32Array.from(previous, (m, i) => Math.fround(b * m + (1 - b) * gradient[i]!))
        expect(sameValues(next, expected)).toBe(true)
      }),
    )
  })

  it('with β = 0 is the gradient: momentum then SGD is plain SGD', () => {
    fc.assert(
      fc.property(pair, coordinate, rate, ([previous, gradient], theta, eta) => {
        const params = gradient.map(() => theta)
        const m = momentumStep(previous, gradient, 0)
        return sameValues(m, gradient) && sameValues(sgdStep(params, m, eta), sgdStep(params, gradient, eta))
      }),
    )
  })

  it('stays between the previous momentum and the gradient, and a constant gradient is its fixed point', () => {
    fc.assert(
      fc.property(pair, beta, ([previous, gradient], b) => {
        const next = momentumStep(previous, gradient, b)
        const between = next.every(
          (value, i) =>
            value >= Math.min(previous[i]!, gradient[i]!) && value <= Math.max(previous[i]!, gradient[i]!),
        )
        return between && sameValues(momentumStep(gradient, gradient, b), gradient)
      }),
    )
  })

  it('refuses a previous momentum of another dimension', () => {
    expect(() => momentumStep(new Float32Array(3), new Float32Array(2), 0.5)).toThrow(DimensionMismatchError)
  })
})
