/** Every error of the package keeps its code and details through JSON (logs, reports, the CLI). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  BackendUnavailableError,
  BatchShapeError,
  DatasetFileMissingError,
  DatasetTooLargeError,
  IdxFormatError,
  InvalidModelOptionError,
  modelErrorCodes,
  ParameterLengthError,
  PartitionError,
  UnknownDatasetError,
  UnknownModelError,
} from '../src/index.js'

const int = fc.integer()
const text = fc.string()
const texts = fc.array(text)

const constructors: Record<string, fc.Arbitrary<Error & { code: string; details: object }>> = {
  ParameterLengthError: fc
    .record({ model: text, expected: int, actual: int })
    .map((d) => new ParameterLengthError(d)),
  BatchShapeError: fc
    .record({ model: text, problem: text, expected: fc.anything(), actual: fc.anything() })
    .map((d) => new BatchShapeError(d)),
  UnknownModelError: fc.record({ model: text, known: texts }).map((d) => new UnknownModelError(d)),
  UnknownDatasetError: fc.record({ dataset: text, known: texts }).map((d) => new UnknownDatasetError(d)),
  DatasetFileMissingError: fc
    .record({ dataset: text, path: text, tried: texts, install: text })
    .map((d) => new DatasetFileMissingError(d)),
  IdxFormatError: fc.record({ path: text, problem: text }).map((d) => new IdxFormatError(d)),
  DatasetTooLargeError: fc
    .record({ path: text, maxBytes: int, compressed: fc.boolean() })
    .map((d) => new DatasetTooLargeError(d)),
  BackendUnavailableError: fc
    .record({ backend: text, reason: text })
    .map((d) => new BackendUnavailableError(d)),
  InvalidModelOptionError: fc
    .record({ option: text, value: fc.anything(), requirement: text })
    .map((d) => new InvalidModelOptionError(d)),
  PartitionError: fc
    .record({ scheme: text, workers: int, samples: int, problem: text })
    .map((d) => new PartitionError(d)),
}

describe('errors through JSON', () => {
  it.each(Object.keys(constructors))('%s keeps its code and details', (name) => {
    fc.assert(
      fc.property(constructors[name]!, (error) => {
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy).toMatchObject({ name, code: error.code })
        expect(copy.details).toEqual(error.details)
        expect(modelErrorCodes).toContain(error.code)
      }),
    )
  })
})
