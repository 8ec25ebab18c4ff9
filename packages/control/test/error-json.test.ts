/** Every error of the package keeps its code and details through JSON (logs, chaos replies, reports). */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  BucketNotCreatedError,
  ChaosCommandFailedError,
  ChaosDisabledError,
  ChaosNoResponderError,
  ChaosRefusedError,
  ChaosTimeoutError,
  CheckpointQuorumError,
  ControlRecordRejectedError,
  controlErrorCodes,
  controlRejectReasons,
  InvalidCheckpointError,
  InvalidMemberError,
  InvalidPayloadError,
  InvalidSubjectTokenError,
  LogEntryCorruptError,
  MedianResultError,
  NatsCredentialsError,
  NotConnectedError,
  natsCredentialsErrorCodes,
  OperatorKeyError,
  OpsServerListenError,
  operatorKeyErrorCodes,
  PayloadTooLargeError,
  RoundRegressionError,
} from '../src/index.js'

const int = fc.integer()
const text = fc.string()
const texts = fc.array(text)
const target = fc.record({ nodeId: text, command: text })

const constructors: Record<string, fc.Arbitrary<Error & { code: string; details: object }>> = {
  InvalidSubjectTokenError: fc
    .record({ token: text, field: text })
    .map((v) => new InvalidSubjectTokenError('m', v)),
  InvalidPayloadError: fc.record({ kind: text, issues: texts }).map((v) => new InvalidPayloadError('m', v)),
  PayloadTooLargeError: fc
    .record({ kind: text, bytes: int, maxBytes: int })
    .map((v) => new PayloadTooLargeError('m', v)),
  NotConnectedError: fc.record({ operation: text, state: text }).map((v) => new NotConnectedError('m', v)),
  RoundRegressionError: fc
    .record({ round: int, currentRound: int })
    .map((v) => new RoundRegressionError('m', v)),
  InvalidMemberError: fc.record({ peerId: text, issues: texts }).map((v) => new InvalidMemberError('m', v)),
  ChaosDisabledError: target.map((v) => new ChaosDisabledError('m', v)),
  ChaosCommandFailedError: target.map((v) => new ChaosCommandFailedError('m', v)),
  ChaosRefusedError: fc
    .record(
      { nodeId: text, command: text, remoteName: text, remoteCode: text },
      { requiredKeys: ['nodeId', 'command', 'remoteName'] },
    )
    .map((v) => new ChaosRefusedError('m', v)),
  ChaosNoResponderError: target.map((v) => new ChaosNoResponderError('m', v)),
  ChaosTimeoutError: fc
    .record({ nodeId: text, command: text, timeoutMs: int })
    .map((v) => new ChaosTimeoutError('m', v)),
  InvalidCheckpointError: fc
    .record({ serverId: text, round: int, reason: text })
    .map((v) => new InvalidCheckpointError('m', v)),
  CheckpointQuorumError: fc.record({ serverQuorum: int }).map((v) => new CheckpointQuorumError('m', v)),
  MedianResultError: fc
    .record({ expectedDimension: int, actualDimension: int })
    .map((v) => new MedianResultError('m', v)),
  LogEntryCorruptError: fc.record({ stream: text, seq: int }).map((v) => new LogEntryCorruptError('m', v)),
  OpsServerListenError: fc.record({ host: text, port: int }).map((v) => new OpsServerListenError('m', v)),
  ControlRecordRejectedError: fc
    .record(
      { code: fc.constantFrom(...controlRejectReasons), kind: text, seq: int },
      { requiredKeys: ['code', 'kind'] },
    )
    .map((v) => new ControlRecordRejectedError('m', v)),
  OperatorKeyError: fc
    .record({ code: fc.constantFrom(...operatorKeyErrorCodes), value: text }, { requiredKeys: ['code'] })
    .map((v) => new OperatorKeyError('m', v)),
  NatsCredentialsError: fc
    .record({ code: fc.constantFrom(...natsCredentialsErrorCodes), option: text, path: text })
    .map((v) => new NatsCredentialsError('m', v)),
  BucketNotCreatedError: fc
    .record({ bucket: text, waitedMs: int })
    .map((v) => new BucketNotCreatedError('m', v)),
}

const codes: readonly string[] = [
  ...controlErrorCodes,
  ...controlRejectReasons,
  ...operatorKeyErrorCodes,
  ...natsCredentialsErrorCodes,
]

describe('errors through JSON', () => {
  it.each(Object.keys(constructors))('%s keeps its code and details', (name) => {
    fc.assert(
      fc.property(constructors[name]!, (error) => {
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy).toMatchObject({ name, code: error.code })
        expect(copy.details).toEqual(error.details)
        expect(codes).toContain(error.code)
      }),
    )
  })
})
