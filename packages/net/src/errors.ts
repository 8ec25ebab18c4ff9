/**
 * One class per condition. Validation failures of received messages are never thrown: they are
 * counted and logged (see `RejectReason`). These errors are for callers' own mistakes and for
 * waits that cannot complete.
 */

/** A quorum of `required` distinct senders did not arrive in time. */
export class QuorumTimeoutError extends Error {
  readonly kind: string
  readonly round: number
  readonly required: number
  readonly arrived: number
  readonly senders: readonly string[]
  readonly timeoutMs: number

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
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'QuorumTimeoutError'
    this.kind = values.kind
    this.round = values.round
    this.required = values.required
    this.arrived = values.arrived
    this.senders = values.senders
    this.timeoutMs = values.timeoutMs
  }
}

/** The caller's AbortSignal fired before the quorum was reached. */
export class QuorumAbortedError extends Error {
  readonly round: number
  readonly arrived: number
  readonly senders: readonly string[]

  constructor(
    message: string,
    values: { round: number; arrived: number; senders: readonly string[] },
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'QuorumAbortedError'
    this.round = values.round
    this.arrived = values.arrived
    this.senders = values.senders
  }
}

/** A quorum was asked for that can never be met (q < 1, or more than the member count). */
export class InvalidQuorumError extends Error {
  readonly quorum: number
  readonly members: number

  constructor(message: string, values: { quorum: number; members: number }) {
    super(message)
    this.name = 'InvalidQuorumError'
    this.quorum = values.quorum
    this.members = values.members
  }
}

/** The peer key file exists but cannot be read or is not a libp2p private key. */
export class KeyFileError extends Error {
  readonly path: string

  constructor(message: string, values: { path: string }, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'KeyFileError'
    this.path = values.path
  }
}

/** The node was asked to publish a vector whose payload exceeds `maxPayloadBytes`. */
export class PayloadTooLargeError extends Error {
  readonly bytes: number
  readonly maxPayloadBytes: number

  constructor(message: string, values: { bytes: number; maxPayloadBytes: number }) {
    super(message)
    this.name = 'PayloadTooLargeError'
    this.bytes = values.bytes
    this.maxPayloadBytes = values.maxPayloadBytes
  }
}

/** The node was asked to publish a vector of a dimension other than the cluster's. */
export class DimensionMismatchError extends Error {
  readonly dimension: number
  readonly expected: number

  constructor(message: string, values: { dimension: number; expected: number }) {
    super(message)
    this.name = 'DimensionMismatchError'
    this.dimension = values.dimension
    this.expected = values.expected
  }
}

/** A node configuration value is out of its allowed range. */
export class NetConfigError extends Error {
  readonly field: string
  readonly value: unknown

  constructor(message: string, values: { field: string; value: unknown }) {
    super(message)
    this.name = 'NetConfigError'
    this.field = values.field
    this.value = values.value
  }
}

/** An operation that needs a running node was called before `start()` or after `stop()`. */
export class NodeNotStartedError extends Error {
  readonly operation: string

  constructor(message: string, values: { operation: string }) {
    super(message)
    this.name = 'NodeNotStartedError'
    this.operation = values.operation
  }
}
