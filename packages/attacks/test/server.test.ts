import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { dropCoordinates, modelShift, randomModel, scaledModel, serverAttackNames } from '../src/index.js'

const vectors = (...rows: number[][]): Float32Array[] => rows.map((row) => Float32Array.from(row))
/** Mean (3, 2), unbiased std (2, 2), as in worker.test.ts. */
const HONEST = vectors([1, 2], [3, 4], [5, 0])

describe('server attacks on hand-computed cases', () => {
  // Moved from registry.test.ts: a new attack adds its name here and its cases below.
  it('names the vector attacks with the cluster config names', () => {
    expect([...serverAttackNames].sort()).toEqual(
      ['drop-coordinates', 'random', 'reversed', 'scaled', 'shift'].sort(),
    )
  })

  it.each([
    ['randomModel σ = 0 is the constant μ', () => randomModel(HONEST, { mu: 1, sigma: 0, seed: 1 }), [1, 1]],
    ['scaledModel −1 reverses the mean model', () => scaledModel(HONEST, { factor: -1 }), [-3, -2]],
    [
      'scaledModel 10 of a given model',
      () => scaledModel(HONEST, { factor: 10, of: Float32Array.from([0.5, -1]) }),
      [5, -10],
    ],
    ['dropCoordinates 0 keeps the mean', () => dropCoordinates(HONEST, { fraction: 0, seed: 1 }), [3, 2]],
    ['dropCoordinates 1 zeroes everything', () => dropCoordinates(HONEST, { fraction: 1, seed: 1 }), [0, 0]],
    ['modelShift z = 1: mean − std', () => modelShift(HONEST, { f: 1, z: 1 }), [1, 0]],
    // N = 3 + 1 = 4, F = 1: s = 3 − 1 = 2, z = Φ⁻¹(1/2) = 0: the mean itself.
    ['modelShift default z, N = 4, F = 1', () => modelShift(HONEST, { f: 1 }), [3, 2]],
  ])('%s', (_name, run, expected) => {
    expect(Array.from(run())).toEqual(expected.map(Math.fround))
  })

  it('dropCoordinates zeroes exactly round(fraction·d) coordinates, the same ones for the same seed', () => {
    const honest = [Float32Array.from({ length: 100 }, (_, j) => j + 1)]
    const a = dropCoordinates(honest, { fraction: 0.25, seed: 9 })
    expect(a.filter((v) => v === 0).length).toBe(25)
    expect(dropCoordinates(honest, { fraction: 0.25, seed: 9 })).toEqual(a)
    expect(dropCoordinates(honest, { fraction: 0.25, seed: 10 })).not.toEqual(a)
    // The rest is untouched.
    for (let j = 0; j < 100; j++) if (a[j] !== 0) expect(a[j]).toBe(j + 1)
  })

  it('randomModel is reproducible from its seed', () => {
    const honest = [new Float32Array(1000)]
    expect(randomModel(honest, { seed: 5 })).toEqual(randomModel(honest, { seed: 5 }))
    expect(randomModel(honest, { seed: 5 })).not.toEqual(randomModel(honest, { seed: 6 }))
  })

  it.each([
    [
      'dropCoordinates fraction',
      () => dropCoordinates(HONEST, { fraction: 1.5, seed: 1 }),
      'InvalidAttackOptionError',
    ],
    ['scaledModel factor', () => scaledModel(HONEST, { factor: Number.NaN }), 'InvalidAttackOptionError'],
    [
      'scaledModel of',
      () => scaledModel(HONEST, { factor: 2, of: new Float32Array(5) }),
      'DimensionMismatchError',
    ],
    ['randomModel sigma', () => randomModel(HONEST, { seed: 1, sigma: -2 }), 'InvalidAttackOptionError'],
    // N = 3 + 4 = 7, F = 4: s = ⌊4.5⌋ − 4 = 0.
    ['modelShift Byzantine majority', () => modelShift(HONEST, { f: 4 }), 'AlieZUndefinedError'],
    ['randomModel no honest', () => randomModel([], { seed: 1 }), 'NoHonestVectorsError'],
  ])('%s gets a named error', (_name, run, errorName) => {
    expect(run).toThrow(expect.objectContaining({ name: errorName }))
  })

  it('never mutates the honest models', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.float({ min: -10, max: 10, noNaN: true }), { minLength: 4, maxLength: 4 }), {
          minLength: 2,
          maxLength: 6,
        }),
        (rows) => {
          const honest = rows.map((row) => Float32Array.from(row))
          const before = honest.map((v) => Float32Array.from(v))
          randomModel(honest, { seed: 1 })
          scaledModel(honest, { factor: -1 })
          dropCoordinates(honest, { fraction: 0.5, seed: 2 })
          modelShift(honest, { f: 1 })
          expect(honest).toEqual(before)
        },
      ),
    )
  })
})
