/** Every error of the package keeps its code and details through JSON (logs, reports, the wire). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  AlieZUndefinedError,
  attackErrorCodes,
  DimensionMismatchError,
  InvalidAttackOptionError,
  NoHonestVectorsError,
  ProbabilityOutOfRangeError,
} from '../src/index.js'

const int = fc.integer()
const text = fc.string()

const constructors: Record<string, fc.Arbitrary<Error & { code: string; details: object }>> = {
  NoHonestVectorsError: text.map((attack) => new NoHonestVectorsError(attack)),
  DimensionMismatchError: fc
    .tuple(text, fc.option(int, { nil: undefined }), int, int)
    .map(
      ([source, index, expected, actual]) => new DimensionMismatchError({ source, index, expected, actual }),
    ),
  InvalidAttackOptionError: fc
    .tuple(text, text, fc.anything(), text)
    .map(
      ([attack, option, value, expected]) =>
        new InvalidAttackOptionError(attack, { option, value, expected }),
    ),
  AlieZUndefinedError: fc.tuple(int, int, int).map(([n, f, s]) => new AlieZUndefinedError({ n, f, s })),
  ProbabilityOutOfRangeError: fc.double().map((p) => new ProbabilityOutOfRangeError(p)),
}

describe('errors through JSON', () => {
  it.each(Object.keys(constructors))('%s keeps its code and details', (name) => {
    fc.assert(
      fc.property(constructors[name]!, (error) => {
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy).toMatchObject({ name, code: error.code })
        expect(copy.details).toEqual(error.details)
        expect([...attackErrorCodes, 'dimension_mismatch']).toContain(error.code)
      }),
    )
  })
})
