/**
 * The codes of `@phalanx/net`, one class per condition. Validation failures of received messages
 * are never thrown: they are counted and logged (see `RejectReason`). These errors are for
 * callers' own mistakes and for waits that cannot complete. A vector of the wrong dimension gets
 * `@phalanx/errors`'s `DimensionMismatchError` (source `publish`).
 */
import { type Json, PhalanxError, type PhalanxErrorOptions, toJson } from '@phalanx/errors'

export { DimensionMismatchError } from '@phalanx/errors'

export const netErrorCodes = [
  // Not `quorum_timeout`: that is the round transport's (`@phalanx/node`), which its adapter over
  // this package translates this one into.
  'net_quorum_timeout',
  'quorum_aborted',
  'invalid_quorum',
  'key_file',
  'payload_too_large',
  'net_config',
  'node_not_started',
  'payload_protocol',
  'stream_idle',
] as const
export type NetErrorCode = (typeof netErrorCodes)[number]

type CauseOnly = Pick<PhalanxErrorOptions, 'cause'>

/** A quorum of `required` distinct senders did not arrive in time. */
export class QuorumTimeoutError extends PhalanxError<
  'net_quorum_timeout',
  {
    kind: string
    round: number
    required: number
    arrived: number
    senders: readonly string[]
    timeoutMs: number
  }
> {
  override readonly name = 'QuorumTimeoutError'
  declare readonly kind: string
  declare readonly round: number
  declare readonly required: number
  declare readonly arrived: number
  declare readonly senders: readonly string[]
  declare readonly timeoutMs: number

  constructor(
    message: string,
    values: {
      kind: string
      round: number
      required: number
      arrived: number
      senders: readonly string[]
      timeoutMs: number
    },
    options: CauseOnly = {},
  ) {
    super('net_quorum_timeout', values, { message, ...options })
  }
}

/** The caller's AbortSignal fired before the quorum was reached. */
export class QuorumAbortedError extends PhalanxError<
  'quorum_aborted',
  { round: number; arrived: number; senders: readonly string[] }
> {
  override readonly name = 'QuorumAbortedError'
  declare readonly round: number
  declare readonly arrived: number
  declare readonly senders: readonly string[]

  constructor(
    message: string,
    values: { round: number; arrived: number; senders: readonly string[] },
    options: CauseOnly = {},
  ) {
    super('quorum_aborted', values, { message, ...options })
  }
}

/** A quorum was asked for that can never be met (q < 1, or more than the member count). */
export class InvalidQuorumError extends PhalanxError<'invalid_quorum', { quorum: Json; members: number }> {
  override readonly name = 'InvalidQuorumError'
  declare readonly quorum: Json
  declare readonly members: number

  constructor(message: string, values: { quorum: number; members: number }) {
    super('invalid_quorum', { quorum: toJson(values.quorum), members: values.members }, { message })
  }
}

/** The peer key file exists but cannot be read or is not a libp2p private key. */
export class KeyFileError extends PhalanxError<'key_file', { path: string }> {
  override readonly name = 'KeyFileError'
  declare readonly path: string

  constructor(message: string, values: { path: string }, options: CauseOnly = {}) {
    super('key_file', values, { message, ...options })
  }
}

/** The node was asked to publish a vector whose payload exceeds `maxPayloadBytes`. */
export class PayloadTooLargeError extends PhalanxError<
  'payload_too_large',
  { bytes: number; maxPayloadBytes: number }
> {
  override readonly name = 'PayloadTooLargeError'
  declare readonly bytes: number
  declare readonly maxPayloadBytes: number

  constructor(message: string, values: { bytes: number; maxPayloadBytes: number }) {
    super('payload_too_large', values, { message })
  }
}

/** A node configuration value is out of its allowed range. */
export class NetConfigError extends PhalanxError<'net_config', { field: string; value: Json }> {
  override readonly name = 'NetConfigError'
  declare readonly field: string
  declare readonly value: Json

  constructor(message: string, values: { field: string; value: unknown }) {
    super('net_config', { field: values.field, value: toJson(values.value) }, { message })
  }
}

/** An operation that needs a running node was called before `start()` or after `stop()`. */
export class NodeNotStartedError extends PhalanxError<'node_not_started', { operation: string }> {
  override readonly name = 'NodeNotStartedError'
  declare readonly operation: string

  constructor(message: string, values: { operation: string }) {
    super('node_not_started', values, { message })
  }
}

/** The peer broke the payload protocol (or the stream is being closed); its stream is dropped. */
export class PayloadProtocolError extends PhalanxError<'payload_protocol', { reason: string }> {
  override readonly name = 'PayloadProtocolError'
  declare readonly reason: string

  constructor(reason: string) {
    super('payload_protocol', { reason }, { message: reason })
  }
}

/** A served stream was closed for sitting idle. */
export class StreamIdleError extends PhalanxError<'stream_idle', { idleMs: number }> {
  override readonly name = 'StreamIdleError'
  declare readonly idleMs: number

  constructor(idleMs: number) {
    super('stream_idle', { idleMs }, { message: `no progress for ${idleMs} ms` })
  }
}
