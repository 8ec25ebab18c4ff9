/** Every error of the package keeps its code and details through JSON (logs, telemetry, reports). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  DimensionMismatchError,
  InvalidQuorumError,
  KeyFileError,
  NetConfigError,
  NodeNotStartedError,
  netErrorCodes,
  PayloadProtocolError,
  PayloadTooLargeError,
  QuorumAbortedError,
  QuorumTimeoutError,
  StreamIdleError,
} from '../src/index.js'

const int = fc.integer()
const text = fc.string()
const texts = fc.array(text)

const constructors: Record<string, fc.Arbitrary<Error & { code: string; details: object }>> = {
  QuorumTimeoutError: fc
    .record({ kind: text, round: int, required: int, arrived: int, senders: texts, timeoutMs: int })
    .map((v) => new QuorumTimeoutError('timeout', v)),
  QuorumAbortedError: fc
    .record({ round: int, arrived: int, senders: texts })
    .map((v) => new QuorumAbortedError('aborted', v)),
  InvalidQuorumError: fc
    .record({ quorum: fc.double(), members: int })
    .map((v) => new InvalidQuorumError('invalid', v)),
  KeyFileError: fc.record({ path: text }).map((v) => new KeyFileError('key', v)),
  PayloadTooLargeError: fc
    .record({ bytes: int, maxPayloadBytes: int })
    .map((v) => new PayloadTooLargeError('large', v)),
  DimensionMismatchError: fc
    .record({ source: text, expected: int, actual: int })
    .map((v) => new DimensionMismatchError(v)),
  NetConfigError: fc
    .record({ field: text, value: fc.anything() })
    .map((v) => new NetConfigError('config', v)),
  NodeNotStartedError: fc.record({ operation: text }).map((v) => new NodeNotStartedError('stopped', v)),
  PayloadProtocolError: text.map((reason) => new PayloadProtocolError(reason)),
  StreamIdleError: int.map((ms) => new StreamIdleError(ms)),
}

describe('errors through JSON', () => {
  it.each(Object.keys(constructors))('%s keeps its code and details', (name) => {
    fc.assert(
      fc.property(constructors[name]!, (error) => {
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy).toMatchObject({ name, code: error.code })
        expect(copy.details).toEqual(error.details)
        expect([...netErrorCodes, 'dimension_mismatch']).toContain(error.code)
      }),
    )
  })
})
