/**
 * The codes of `@phalanx/control`, one class per failure condition of the control plane. Each
 * carries the values that explain it and keeps the underlying `cause`. Three classes carry a
 * family of codes: a refused control record (its reason, as counted in
 * `phalanx_control_rejected_total`), an operator key and a NATS credentials file (what is wrong
 * with the file).
 */
import { PhalanxError, type PhalanxErrorOptions } from '@phalanx/errors'

export const controlErrorCodes = [
  'invalid_subject_token',
  'invalid_payload',
  'control_payload_too_large',
  'not_connected',
  'round_regression',
  'invalid_member',
  'chaos_disabled',
  'chaos_command_failed',
  'chaos_refused',
  'chaos_no_responder',
  'chaos_timeout',
  'invalid_checkpoint',
  'checkpoint_quorum',
  'median_result',
  'log_entry_corrupt',
  'ops_server_listen',
  'bucket_not_created',
] as const
export type ControlErrorCode = (typeof controlErrorCodes)[number]

/** What is wrong with an operator key (the codes of `OperatorKeyError`). */
export const operatorKeyErrorCodes = [
  'unreadable',
  'invalid_key',
  'invalid_public_key',
  'key_exists',
  'unwritable',
  'missing',
] as const
export type OperatorKeyErrorCode = (typeof operatorKeyErrorCodes)[number]

/** What is wrong with a NATS credentials or TLS file (the codes of `NatsCredentialsError`). */
export const natsCredentialsErrorCodes = ['unreadable', 'invalid', 'conflict'] as const
export type NatsCredentialsErrorCode = (typeof natsCredentialsErrorCodes)[number]

type ErrorOptionsWithCause = Pick<PhalanxErrorOptions, 'cause'>

/** A cluster or node id that cannot be one token of a NATS subject / a bucket name. */
export class InvalidSubjectTokenError extends PhalanxError<
  'invalid_subject_token',
  { token: string; field: string }
> {
  override readonly name = 'InvalidSubjectTokenError'
  declare readonly token: string
  declare readonly field: string

  constructor(message: string, values: { token: string; field: string }, options?: ErrorOptionsWithCause) {
    super('invalid_subject_token', values, { message, ...options })
  }
}

/** A payload that does not satisfy its subject's schema (outgoing: a caller bug; incoming: dropped). */
export class InvalidPayloadError extends PhalanxError<
  'invalid_payload',
  { kind: string; issues: readonly string[] }
> {
  override readonly name = 'InvalidPayloadError'
  declare readonly kind: string
  declare readonly issues: readonly string[]

  constructor(
    message: string,
    values: { kind: string; issues: readonly string[] },
    options?: ErrorOptionsWithCause,
  ) {
    super('invalid_payload', values, { message, ...options })
  }
}

/** An encoded payload larger than the server's max_payload (1 MiB by default): it must go to the object store. */
export class PayloadTooLargeError extends PhalanxError<
  'control_payload_too_large',
  { kind: string; bytes: number; maxBytes: number }
> {
  override readonly name = 'PayloadTooLargeError'
  declare readonly kind: string
  declare readonly bytes: number
  declare readonly maxBytes: number

  constructor(message: string, values: { kind: string; bytes: number; maxBytes: number }) {
    super('control_payload_too_large', values, { message })
  }
}

/** An operation that needs a live NATS connection (KV, object store, request) was called while there is none. */
export class NotConnectedError extends PhalanxError<'not_connected', { operation: string; state: string }> {
  override readonly name = 'NotConnectedError'
  declare readonly operation: string
  declare readonly state: string

  constructor(
    message: string,
    values: { operation: string; state: string },
    options?: ErrorOptionsWithCause,
  ) {
    super('not_connected', values, { message, ...options })
  }
}

/** The membership view was asked to go back to an earlier round. */
export class RoundRegressionError extends PhalanxError<
  'round_regression',
  { round: number; currentRound: number }
> {
  override readonly name = 'RoundRegressionError'
  declare readonly round: number
  declare readonly currentRound: number

  constructor(message: string, values: { round: number; currentRound: number }) {
    super('round_regression', values, { message })
  }
}

/** A member record that fails validation (bad peer id, role, or multiaddrs) on admit. */
export class InvalidMemberError extends PhalanxError<
  'invalid_member',
  { peerId: string; issues: readonly string[] }
> {
  override readonly name = 'InvalidMemberError'
  declare readonly peerId: string
  declare readonly issues: readonly string[]

  constructor(message: string, values: { peerId: string; issues: readonly string[] }) {
    super('invalid_member', values, { message })
  }
}

/** Sent back by a node whose chaos listener was started with chaos disabled. */
export class ChaosDisabledError extends PhalanxError<'chaos_disabled', { nodeId: string; command: string }> {
  override readonly name = 'ChaosDisabledError'
  declare readonly nodeId: string
  declare readonly command: string

  constructor(message: string, values: { nodeId: string; command: string }) {
    super('chaos_disabled', values, { message })
  }
}

/** The node's own handler failed while executing a chaos command. */
export class ChaosCommandFailedError extends PhalanxError<
  'chaos_command_failed',
  { nodeId: string; command: string }
> {
  override readonly name = 'ChaosCommandFailedError'
  declare readonly nodeId: string
  declare readonly command: string

  constructor(message: string, values: { nodeId: string; command: string }, options?: ErrorOptionsWithCause) {
    super('chaos_command_failed', values, { message, ...options })
  }
}

/** The target node answered but did not acknowledge (disabled, handler failed, invalid command). */
export class ChaosRefusedError extends PhalanxError<
  'chaos_refused',
  { nodeId: string; command: string; remoteName: string; remoteCode?: string }
> {
  override readonly name = 'ChaosRefusedError'
  declare readonly nodeId: string
  declare readonly command: string
  /** The `name` of the error the target reported, e.g. `ChaosDisabledError`: for people. */
  declare readonly remoteName: string
  /** The `code` of the error the target reported (absent from nodes older than codes): for callers. */
  declare readonly remoteCode: string | undefined

  constructor(
    message: string,
    values: { nodeId: string; command: string; remoteName: string; remoteCode?: string },
  ) {
    super('chaos_refused', values, { message })
  }
}

/** Nobody listens on the target's chaos subject (node down, wrong id, or not connected to NATS). */
export class ChaosNoResponderError extends PhalanxError<
  'chaos_no_responder',
  { nodeId: string; command: string }
> {
  override readonly name = 'ChaosNoResponderError'
  declare readonly nodeId: string
  declare readonly command: string

  constructor(message: string, values: { nodeId: string; command: string }, options?: ErrorOptionsWithCause) {
    super('chaos_no_responder', values, { message, ...options })
  }
}

/** The target did not answer within the timeout. */
export class ChaosTimeoutError extends PhalanxError<
  'chaos_timeout',
  { nodeId: string; command: string; timeoutMs: number }
> {
  override readonly name = 'ChaosTimeoutError'
  declare readonly nodeId: string
  declare readonly command: string
  declare readonly timeoutMs: number

  constructor(
    message: string,
    values: { nodeId: string; command: string; timeoutMs: number },
    options?: ErrorOptionsWithCause,
  ) {
    super('chaos_timeout', values, { message, ...options })
  }
}

/** A checkpoint whose model is empty, non-finite, or otherwise unusable was offered to `put`. */
export class InvalidCheckpointError extends PhalanxError<
  'invalid_checkpoint',
  { serverId: string; round: number; reason: string }
> {
  override readonly name = 'InvalidCheckpointError'
  declare readonly serverId: string
  declare readonly round: number
  declare readonly reason: string

  constructor(message: string, values: { serverId: string; round: number; reason: string }) {
    super('invalid_checkpoint', values, { message })
  }
}

/** `agreedCheckpoint` was called with a quorum that cannot protect against a single liar. */
export class CheckpointQuorumError extends PhalanxError<'checkpoint_quorum', { serverQuorum: number }> {
  override readonly name = 'CheckpointQuorumError'
  declare readonly serverQuorum: number

  constructor(message: string, values: { serverQuorum: number }) {
    super('checkpoint_quorum', values, { message })
  }
}

/** The `median` function passed in returned a vector of the wrong dimension or with non-finite values. */
export class MedianResultError extends PhalanxError<
  'median_result',
  { expectedDimension: number; actualDimension: number }
> {
  override readonly name = 'MedianResultError'
  declare readonly expectedDimension: number
  declare readonly actualDimension: number

  constructor(message: string, values: { expectedDimension: number; actualDimension: number }) {
    super('median_result', values, { message })
  }
}

/** A replicated-log entry could not be reassembled (missing or out-of-order chunks). */
export class LogEntryCorruptError extends PhalanxError<'log_entry_corrupt', { stream: string; seq: number }> {
  override readonly name = 'LogEntryCorruptError'
  declare readonly stream: string
  declare readonly seq: number

  constructor(message: string, values: { stream: string; seq: number }) {
    super('log_entry_corrupt', values, { message })
  }
}

/** The operations HTTP server could not bind its port. */
export class OpsServerListenError extends PhalanxError<'ops_server_listen', { host: string; port: number }> {
  override readonly name = 'OpsServerListenError'
  declare readonly host: string
  declare readonly port: number

  constructor(message: string, values: { host: string; port: number }, options?: ErrorOptionsWithCause) {
    super('ops_server_listen', values, { message, ...options })
  }
}

/** A control record a node refused; `code` is the reason counted in `phalanx_control_rejected_total`. */
export class ControlRecordRejectedError extends PhalanxError<string, { kind: string; seq?: number }> {
  override readonly name = 'ControlRecordRejectedError'
  /** The record's action kind (`admit`, `evict`, `chaos`, `join`), or `unknown` when unreadable. */
  declare readonly kind: string
  declare readonly seq: number | undefined

  constructor(message: string, values: { code: string; kind: string; seq?: number }) {
    const { code, ...details } = values
    super(code, details, { message })
  }
}

/** An operator key that cannot be read, parsed, written or pinned. */
export class OperatorKeyError extends PhalanxError<OperatorKeyErrorCode, { value?: string }> {
  override readonly name = 'OperatorKeyError'
  declare readonly value: string | undefined

  constructor(
    message: string,
    values: { code: OperatorKeyErrorCode; value?: string },
    options?: ErrorOptionsWithCause,
  ) {
    const { code, ...details } = values
    super(code, details, { message, ...options })
  }
}

/**
 * A NATS credentials or TLS file that cannot be used: `unreadable` (missing, no permission),
 * `invalid` (not a creds file, not a user seed, not PEM) or `conflict` (two identities, a client
 * certificate without its key). `option` names the setting (config field or flag), never the secret.
 */
export class NatsCredentialsError extends PhalanxError<
  NatsCredentialsErrorCode,
  { option: string; path: string }
> {
  override readonly name = 'NatsCredentialsError'
  declare readonly option: string
  declare readonly path: string

  constructor(
    message: string,
    values: { code: NatsCredentialsErrorCode; option: string; path: string },
    options?: ErrorOptionsWithCause,
  ) {
    const { code, ...details } = values
    super(code, details, { message, ...options })
  }
}

/**
 * A bucket this connection may not create (its role lacks STREAM.CREATE: a worker, in
 * permissions.ts) that no server or operator created within `waitedMs`.
 */
export class BucketNotCreatedError extends PhalanxError<
  'bucket_not_created',
  { bucket: string; waitedMs: number }
> {
  override readonly name = 'BucketNotCreatedError'
  declare readonly bucket: string
  declare readonly waitedMs: number

  constructor(
    message: string,
    values: { bucket: string; waitedMs: number },
    options?: ErrorOptionsWithCause,
  ) {
    super('bucket_not_created', values, { message, ...options })
  }
}
