/**
 * The codes of `@phalanx/node`, one class per condition, each carrying the values that explain
 * it. A server state file's refusal carries a family of codes (which check failed).
 */
import { type Json, PhalanxError, toJson } from '@phalanx/errors'

export const nodeErrorCodes = [
  'config_invalid',
  'cluster_bound',
  'chaos_action_refused',
  'smr_log_failed',
  /** `QuorumTimeoutError`, owned by the transport port (`transport.ts`). */
  'quorum_timeout',
  /** `BehindError` (`protocol.ts`): a waiting node the cluster left behind catches up. */
  'behind',
] as const
export type NodeErrorCode = (typeof nodeErrorCodes)[number]

export type ConfigErrorDetails = {
  field: string
  value: unknown
  allowed?: string
  cause?: unknown
}

/** A configuration value is wrong: names the field, the value and what is allowed. */
export class ConfigError extends PhalanxError<
  'config_invalid',
  { field: string; value: Json; allowed?: string }
> {
  override readonly name = 'ConfigError'
  declare readonly field: string
  declare readonly value: Json
  declare readonly allowed: string | undefined

  constructor(message: string, details: ConfigErrorDetails) {
    const { cause, value, ...rest } = details
    super(
      'config_invalid',
      { ...rest, value: toJson(value) },
      { message: rest.allowed === undefined ? message : `${message} (allowed: ${rest.allowed})`, cause },
    )
  }
}

/** A configuration is outside a bound the protocol needs (a GAR's bound or N−F ≥ 2F+1). */
export class ClusterBoundError extends PhalanxError<
  'cluster_bound',
  { bound: string; values: Record<string, number> }
> {
  override readonly name = 'ClusterBoundError'
  declare readonly bound: string
  declare readonly values: Record<string, number>

  constructor(message: string, bound: string, values: Record<string, number>) {
    super(
      'cluster_bound',
      { bound, values },
      {
        message: `${message}: needs ${bound} (${Object.entries(values)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')})`,
      },
    )
  }
}

/** A chaos command arrived that this node cannot carry out in its current state or role. */
export class ChaosActionError extends PhalanxError<
  'chaos_action_refused',
  { command: string; reason: string }
> {
  override readonly name = 'ChaosActionError'
  declare readonly command: string
  declare readonly reason: string

  constructor(message: string, details: { command: string; reason: string; cause?: unknown }) {
    const { cause, ...rest } = details
    super('chaos_action_refused', rest, { message, cause })
  }
}

/** The SMR baseline's gradient log (a replicated JetStream stream) cannot be opened or used. */
export class SmrLogError extends PhalanxError<'smr_log_failed', { stream: string }> {
  override readonly name = 'SmrLogError'
  declare readonly stream: string

  constructor(message: string, details: { stream: string; cause?: unknown }) {
    const { cause, ...rest } = details
    super('smr_log_failed', rest, { message, cause })
  }
}

/** Why a server's state file or signed-round watermark was refused (or could not be written). */
export const serverStateErrorCodes = [
  /** Shorter than its fixed frame, or than its header says: a lost or torn write. */
  'state_truncated',
  /** Not a file of this kind (another format, or garbage). */
  'state_bad_magic',
  /** Written by a format version this build does not read. */
  'state_bad_version',
  /** The sha256 over header and body does not match: bytes changed on disk. */
  'state_checksum_mismatch',
  /** The header does not parse or a field is out of range (round, dimension, identity). */
  'state_bad_header',
  /** The body's length is not what the header's dimension and rounds need. */
  'state_bad_length',
  /** A model value is NaN or ±Infinity: resuming from it would make an honest server Byzantine. */
  'state_non_finite',
  /** The file exists but cannot be read (permissions, I/O error). */
  'state_unreadable',
  /** Writing, syncing or renaming failed: the server must not publish what it could not record. */
  'state_write_failed',
] as const
export type ServerStateErrorCode = (typeof serverStateErrorCodes)[number]

/** A state file or watermark was refused, or could not be made durable; `code` says which check failed. */
export class ServerStateError extends PhalanxError<ServerStateErrorCode, { path: string }> {
  override readonly name = 'ServerStateError'
  declare readonly path: string

  constructor(message: string, details: { code: ServerStateErrorCode; path: string; cause?: unknown }) {
    super(
      details.code,
      { path: details.path },
      { message: `${message} (${details.code}: ${details.path})`, cause: details.cause },
    )
  }
}
