/** Every error of the package keeps its code and details through JSON (logs, worker replies, reports). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  aggregationErrorCodes,
  BoundError,
  DimensionMismatchError,
  EmptyInputError,
  InvalidOptionError,
  NonFiniteInputError,
  SubsetLimitError,
  UnknownWorkerError,
} from '../src/index.js'

const int = fc.integer()
const text = fc.string()
const number = fc.oneof(
  fc.double(),
  fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY),
)

const constructors: Record<string, fc.Arbitrary<Error & { code: string; details: object }>> = {
  BoundError: fc.tuple(text, int, int, text).map(([r, n, f, b]) => new BoundError(r, n, f, b)),
  EmptyInputError: fc
    .tuple(
      text,
      fc.constantFrom('no inputs', 'zero dimension') as fc.Arbitrary<'no inputs' | 'zero dimension'>,
    )
    .map(([r, w]) => new EmptyInputError(r, w)),
  DimensionMismatchError: fc
    .tuple(text, fc.option(int, { nil: undefined }), int, int)
    .map(
      ([source, index, expected, actual]) => new DimensionMismatchError({ source, index, expected, actual }),
    ),
  NonFiniteInputError: fc
    .tuple(text, int, int, number)
    .map(([r, i, c, v]) => new NonFiniteInputError(r, i, c, v)),
  InvalidOptionError: fc
    .tuple(text, text, fc.anything(), text)
    .map(([r, o, v, a]) => new InvalidOptionError(r, o, v, a)),
  SubsetLimitError: fc
    .tuple(text, int, int, int, int)
    .map(([r, n, f, s, m]) => new SubsetLimitError(r, n, f, s, m)),
  UnknownWorkerError: fc.tuple(int, int).map(([w, n]) => new UnknownWorkerError(w, n)),
}

describe('errors through JSON', () => {
  it.each(Object.keys(constructors))('%s keeps its code and details', (name) => {
    fc.assert(
      fc.property(constructors[name]!, (error) => {
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy).toMatchObject({ name, code: error.code })
        expect(copy.details).toEqual(error.details)
        expect([...aggregationErrorCodes, 'dimension_mismatch']).toContain(error.code)
      }),
    )
  })
})
