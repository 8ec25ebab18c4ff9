/** Every error of the package keeps its code and details through JSON (logs, experiment results, reports). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  ExperimentCellError,
  LocalClusterError,
  labErrorCodes,
  MatrixError,
  OutDirError,
  SimulateUnsupportedError,
} from '../src/errors.js'

const text = fc.string()

const constructors: Record<string, fc.Arbitrary<Error & { code: string; details: object }>> = {
  LocalClusterError: fc
    .record({ nodeId: text, exitCode: fc.option(fc.integer(), { nil: null }) })
    .map((v) => new LocalClusterError('m', v)),
  MatrixError: fc.record({ source: text, key: text }).map((v) => new MatrixError('m', v)),
  ExperimentCellError: fc.record({ cellId: text, field: text }).map((v) => new ExperimentCellError('m', v)),
  SimulateUnsupportedError: fc
    .record({ field: text, value: text, allowed: fc.array(text), why: text })
    .map((v) => new SimulateUnsupportedError(v)),
  OutDirError: fc.record({ dir: text, reason: text }).map((v) => new OutDirError(v)),
}

describe('errors through JSON', () => {
  it.each(Object.keys(constructors))('%s keeps its code and details', (name) => {
    fc.assert(
      fc.property(constructors[name]!, (error) => {
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy).toMatchObject({ name, code: error.code })
        expect(copy.details).toEqual(error.details)
        expect(labErrorCodes).toContain(error.code)
      }),
    )
  })
})
