/** Named errors of `@phalanx/node`: one class per condition, each carrying the values that explain it. */

export interface ConfigErrorDetails {
  field: string
  value: unknown
  allowed?: string
  cause?: unknown
}

/** A configuration value is wrong: names the field, the value and what is allowed. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly field: string
  readonly value: unknown
  readonly allowed: string | undefined

  constructor(message: string, details: ConfigErrorDetails) {
    super(details.allowed === undefined ? message : `${message} (allowed: ${details.allowed})`, {
      cause: details.cause,
    })
    this.field = details.field
    this.value = details.value
    this.allowed = details.allowed
  }
}

/** A configuration is outside a bound the protocol needs (a GAR's bound or N−F ≥ 2F+1). */
export class ClusterBoundError extends Error {
  override readonly name = 'ClusterBoundError'
  readonly bound: string
  readonly values: Record<string, number>

  constructor(message: string, bound: string, values: Record<string, number>) {
    super(
      `${message}: needs ${bound} (${Object.entries(values)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')})`,
    )
    this.bound = bound
    this.values = values
  }
}

/** A chaos command arrived that this node cannot carry out in its current state or role. */
export class ChaosActionError extends Error {
  override readonly name = 'ChaosActionError'
  readonly command: string
  readonly reason: string

  constructor(message: string, details: { command: string; reason: string; cause?: unknown }) {
    super(message, { cause: details.cause })
    this.command = details.command
    this.reason = details.reason
  }
}

/** The SMR baseline's gradient log (a replicated JetStream stream) cannot be opened or used. */
export class SmrLogError extends Error {
  override readonly name = 'SmrLogError'
  readonly stream: string

  constructor(message: string, details: { stream: string; cause?: unknown }) {
    super(message, { cause: details.cause })
    this.stream = details.stream
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
export class ServerStateError extends Error {
  override readonly name = 'ServerStateError'
  readonly code: ServerStateErrorCode
  readonly path: string

  constructor(message: string, details: { code: ServerStateErrorCode; path: string; cause?: unknown }) {
    super(`${message} (${details.code}: ${details.path})`, { cause: details.cause })
    this.code = details.code
    this.path = details.path
  }
}
