/**
 * One class per failure condition of the control plane. Each sets `name` (callers and tests branch on
 * it), carries the values that explain it, and keeps the underlying `cause`.
 */

interface ErrorOptionsWithCause {
  cause?: unknown
}

/** A cluster or node id that cannot be one token of a NATS subject / a bucket name. */
export class InvalidSubjectTokenError extends Error {
  readonly token: string
  readonly field: string
  constructor(message: string, values: { token: string; field: string }, options?: ErrorOptionsWithCause) {
    super(message, options)
    this.name = 'InvalidSubjectTokenError'
    this.token = values.token
    this.field = values.field
  }
}

/** A payload that does not satisfy its subject's schema (outgoing: a caller bug; incoming: dropped). */
export class InvalidPayloadError extends Error {
  readonly kind: string
  readonly issues: readonly string[]
  constructor(
    message: string,
    values: { kind: string; issues: readonly string[] },
    options?: ErrorOptionsWithCause,
  ) {
    super(message, options)
    this.name = 'InvalidPayloadError'
    this.kind = values.kind
    this.issues = values.issues
  }
}

/** An encoded payload larger than the server's max_payload (1 MiB by default): it must go to the object store. */
export class PayloadTooLargeError extends Error {
  readonly kind: string
  readonly bytes: number
  readonly maxBytes: number
  constructor(message: string, values: { kind: string; bytes: number; maxBytes: number }) {
    super(message)
    this.name = 'PayloadTooLargeError'
    this.kind = values.kind
    this.bytes = values.bytes
    this.maxBytes = values.maxBytes
  }
}

/** An operation that needs a live NATS connection (KV, object store, request) was called while there is none. */
export class NotConnectedError extends Error {
  readonly operation: string
  readonly state: string
  constructor(
    message: string,
    values: { operation: string; state: string },
    options?: ErrorOptionsWithCause,
  ) {
    super(message, options)
    this.name = 'NotConnectedError'
    this.operation = values.operation
    this.state = values.state
  }
}

/** The membership view was asked to go back to an earlier round. */
export class RoundRegressionError extends Error {
  readonly round: number
  readonly currentRound: number
  constructor(message: string, values: { round: number; currentRound: number }) {
    super(message)
    this.name = 'RoundRegressionError'
    this.round = values.round
    this.currentRound = values.currentRound
  }
}

/** A member record that fails validation (bad peer id, role, or multiaddrs) on admit. */
export class InvalidMemberError extends Error {
  readonly peerId: string
  readonly issues: readonly string[]
  constructor(message: string, values: { peerId: string; issues: readonly string[] }) {
    super(message)
    this.name = 'InvalidMemberError'
    this.peerId = values.peerId
    this.issues = values.issues
  }
}

/** Sent back by a node whose chaos listener was started with chaos disabled. */
export class ChaosDisabledError extends Error {
  readonly nodeId: string
  readonly command: string
  constructor(message: string, values: { nodeId: string; command: string }) {
    super(message)
    this.name = 'ChaosDisabledError'
    this.nodeId = values.nodeId
    this.command = values.command
  }
}

/** The node's own handler failed while executing a chaos command. */
export class ChaosCommandFailedError extends Error {
  readonly nodeId: string
  readonly command: string
  constructor(message: string, values: { nodeId: string; command: string }, options?: ErrorOptionsWithCause) {
    super(message, options)
    this.name = 'ChaosCommandFailedError'
    this.nodeId = values.nodeId
    this.command = values.command
  }
}

/** The target node answered but did not acknowledge (disabled, handler failed, invalid command). */
export class ChaosRefusedError extends Error {
  readonly nodeId: string
  readonly command: string
  /** The `name` of the error the target reported, e.g. `ChaosDisabledError`. */
  readonly remoteName: string
  constructor(message: string, values: { nodeId: string; command: string; remoteName: string }) {
    super(message)
    this.name = 'ChaosRefusedError'
    this.nodeId = values.nodeId
    this.command = values.command
    this.remoteName = values.remoteName
  }
}

/** Nobody listens on the target's chaos subject (node down, wrong id, or not connected to NATS). */
export class ChaosNoResponderError extends Error {
  readonly nodeId: string
  readonly command: string
  constructor(message: string, values: { nodeId: string; command: string }, options?: ErrorOptionsWithCause) {
    super(message, options)
    this.name = 'ChaosNoResponderError'
    this.nodeId = values.nodeId
    this.command = values.command
  }
}

/** The target did not answer within the timeout. */
export class ChaosTimeoutError extends Error {
  readonly nodeId: string
  readonly command: string
  readonly timeoutMs: number
  constructor(
    message: string,
    values: { nodeId: string; command: string; timeoutMs: number },
    options?: ErrorOptionsWithCause,
  ) {
    super(message, options)
    this.name = 'ChaosTimeoutError'
    this.nodeId = values.nodeId
    this.command = values.command
    this.timeoutMs = values.timeoutMs
  }
}

/** A checkpoint whose model is empty, non-finite, or otherwise unusable was offered to `put`. */
export class InvalidCheckpointError extends Error {
  readonly serverId: string
  readonly round: number
  readonly reason: string
  constructor(message: string, values: { serverId: string; round: number; reason: string }) {
    super(message)
    this.name = 'InvalidCheckpointError'
    this.serverId = values.serverId
    this.round = values.round
    this.reason = values.reason
  }
}

/** `agreedCheckpoint` was called with a quorum that cannot protect against a single liar. */
export class CheckpointQuorumError extends Error {
  readonly serverQuorum: number
  constructor(message: string, values: { serverQuorum: number }) {
    super(message)
    this.name = 'CheckpointQuorumError'
    this.serverQuorum = values.serverQuorum
  }
}

/** The `median` function passed in returned a vector of the wrong dimension or with non-finite values. */
export class MedianResultError extends Error {
  readonly expectedDimension: number
  readonly actualDimension: number
  constructor(message: string, values: { expectedDimension: number; actualDimension: number }) {
    super(message)
    this.name = 'MedianResultError'
    this.expectedDimension = values.expectedDimension
    this.actualDimension = values.actualDimension
  }
}

/** A replicated-log entry could not be reassembled (missing or out-of-order chunks). */
export class LogEntryCorruptError extends Error {
  readonly stream: string
  readonly seq: number
  constructor(message: string, values: { stream: string; seq: number }) {
    super(message)
    this.name = 'LogEntryCorruptError'
    this.stream = values.stream
    this.seq = values.seq
  }
}

/** The operations HTTP server could not bind its port. */
export class OpsServerListenError extends Error {
  readonly host: string
  readonly port: number
  constructor(message: string, values: { host: string; port: number }, options?: ErrorOptionsWithCause) {
    super(message, options)
    this.name = 'OpsServerListenError'
    this.host = values.host
    this.port = values.port
  }
}

/** A control record a node refused; `code` is the reason counted in `phalanx_control_rejected_total`. */
export class ControlRecordRejectedError extends Error {
  readonly code: string
  /** The record's action kind (`admit`, `evict`, `chaos`, `join`), or `unknown` when unreadable. */
  readonly kind: string
  readonly seq: number | undefined
  constructor(message: string, values: { code: string; kind: string; seq?: number }) {
    super(message)
    this.name = 'ControlRecordRejectedError'
    this.code = values.code
    this.kind = values.kind
    this.seq = values.seq
  }
}

/** An operator key that cannot be read, parsed, written or pinned. */
export class OperatorKeyError extends Error {
  /** `unreadable`, `invalid_key`, `invalid_public_key`, `key_exists`, `unwritable`, `missing`. */
  readonly code: string
  readonly value: string | undefined
  constructor(message: string, values: { code: string; value?: string }, options?: ErrorOptionsWithCause) {
    super(message, options)
    this.name = 'OperatorKeyError'
    this.code = values.code
    this.value = values.value
  }
}

/**
 * A NATS credentials or TLS file that cannot be used: `unreadable` (missing, no permission),
 * `invalid` (not a creds file, not a user seed, not PEM) or `conflict` (two identities, a client
 * certificate without its key). `option` names the setting (config field or flag), never the secret.
 */
export class NatsCredentialsError extends Error {
  readonly code: 'unreadable' | 'invalid' | 'conflict'
  readonly option: string
  readonly path: string
  constructor(
    message: string,
    values: { code: 'unreadable' | 'invalid' | 'conflict'; option: string; path: string },
    options?: ErrorOptionsWithCause,
  ) {
    super(message, options)
    this.name = 'NatsCredentialsError'
    this.code = values.code
    this.option = values.option
    this.path = values.path
  }
}

/**
 * A bucket this connection may not create (its role lacks STREAM.CREATE: a worker, in
 * permissions.ts) that no server or operator created within `waitedMs`.
 */
export class BucketNotCreatedError extends Error {
  readonly bucket: string
  readonly waitedMs: number
  constructor(
    message: string,
    values: { bucket: string; waitedMs: number },
    options?: ErrorOptionsWithCause,
  ) {
    super(message, options)
    this.name = 'BucketNotCreatedError'
    this.bucket = values.bucket
    this.waitedMs = values.waitedMs
  }
}
