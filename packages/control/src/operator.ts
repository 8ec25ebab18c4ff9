/**
 * The operator identity and the records it signs. Every control action that changes what a node
 * does — admitting or evicting a member, every chaos command — is a record carrying the cluster
 * id, a sequence number, its issue time and expiry, signed with the operator's Ed25519 key. Nodes
 * are pinned to the operator's public key (`operatorPublicKey`) and apply a record only after
 * `createControlRecordVerifier` has checked, in this order: shape, cluster, signer, signature,
 * validity window, and that its sequence number is newer than the last one applied for the same
 * target. The one record not signed by the operator is a worker's own `join`, signed by the
 * worker's peer key, and accepted only when the operator opened worker admission.
 *
 * The signature covers a domain tag and the canonical JSON (keys sorted) of every field but the
 * signature itself, so no other signed message of the system (gossip, checkpoints, telemetry) can
 * be passed off as a control record, and re-serialising a record never changes what was signed.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign as signBytes,
  verify as verifyBytes,
} from 'node:crypto'
import { chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import type { Logger } from 'pino'
import { z } from 'zod'
import { ControlRecordRejectedError, OperatorKeyError } from './errors.js'
import { ChaosCommandSchema, MemberSchema } from './subjects.js'

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,128}$/
const token = z.string().regex(TOKEN_PATTERN, 'must match [A-Za-z0-9_-]{1,128}')
const timestampMs = z.int().nonnegative()

/** What a record asks a node to do. */
export const ControlActionSchema = z.discriminatedUnion('kind', [
  /** Operator: `member` joins with the role given here (the only source of a node's role). */
  z.object({ kind: z.literal('admit'), member: MemberSchema }),
  /** Operator: `peerId` leaves; stored as a signed tombstone, never as a bare KV delete. */
  z.object({ kind: z.literal('evict'), peerId: token }),
  /** Operator: a chaos command for the node `nodeId`. */
  z.object({ kind: z.literal('chaos'), nodeId: token, command: ChaosCommandSchema }),
  /** A worker registering itself, signed by its own peer key (only under `workerAdmission: open`). */
  z.object({ kind: z.literal('join'), member: MemberSchema.extend({ role: z.literal('worker') }) }),
])
export type ControlAction = z.infer<typeof ControlActionSchema>
export type ControlActionKind = ControlAction['kind']

export const ControlRecordSchema = z
  .object({
    v: z.literal(1),
    cluster: token,
    /** Strictly increasing per target (member or chaos node): an older record never undoes a newer one. */
    seq: z.int().positive(),
    issuedAtMs: timestampMs,
    expiresAtMs: timestampMs,
    /** Whose key signed: the operator's, or (for `join` only) the joining member's peer key. */
    signer: z.enum(['operator', 'member']),
    action: ControlActionSchema,
    /** Ed25519 signature, base64url. */
    signature: z.string().min(1).max(256),
  })
  .strict()
export type ControlRecord = z.infer<typeof ControlRecordSchema>
export type UnsignedControlRecord = Omit<ControlRecord, 'signature'>

/** Why a record was refused; the label of `phalanx_control_rejected_total{reason}`. */
export const controlRejectReasons = [
  'malformed',
  'wrong_cluster',
  'no_operator_key',
  'wrong_signer',
  'bad_signature',
  'expired',
  'not_yet_valid',
  'replayed',
  'not_allowed',
] as const
export type ControlRejectReason = (typeof controlRejectReasons)[number]

export const CONTROL_RECORD_DEFAULTS = {
  /**
   * How long a record may be used. A chaos command is meant for now: a minute covers a slow NATS
   * hop and leaves no useful window to replay it. A membership record is standing state, read
   * again by every node that starts; it expires only so that a lost key's records age out.
   */
  lifetimeMs: {
    admit: 365 * 24 * 3600_000,
    evict: 365 * 24 * 3600_000,
    join: 365 * 24 * 3600_000,
    chaos: 60_000,
  } satisfies Record<ControlActionKind, number>,
  /** Clocks of the operator's machine and the nodes' may differ this much (NTP keeps far closer). */
  maxClockSkewMs: 30_000,
  /** Targets whose last sequence number is remembered; bounded, since every target costs memory. */
  maxTrackedTargets: 4_096,
} as const

const DOMAIN_TAG = 'phalanx-control-record/v1\n'
const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: true })

/** JSON with object keys sorted at every level: one byte string per record, whoever serialises it. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** The bytes a record's signature covers. */
export function controlRecordStatement(record: UnsignedControlRecord): Uint8Array {
  const { signature: _ignored, ...unsigned } = record as ControlRecord
  return textEncoder.encode(DOMAIN_TAG + canonicalJson(unsigned))
}

/** The key the record acts on: sequence numbers are compared within one target only. */
export function controlRecordTarget(action: ControlAction): string {
  switch (action.kind) {
    case 'admit':
    case 'join':
      return `member:${action.member.peerId}`
    case 'evict':
      return `member:${action.peerId}`
    case 'chaos':
      return `chaos:${action.nodeId}`
  }
}

// ---------------------------------------------------------------------------------------------
// The operator key

export interface OperatorKey {
  /** Raw 32-byte Ed25519 public key, base64url: what nodes pin as `operatorPublicKey`. */
  readonly publicKey: string
  readonly privateKey: KeyObject
}

/** Ed25519 SPKI DER is a fixed 12-byte header followed by the 32-byte key. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

function rawPublicKey(key: KeyObject): string {
  const der = key.export({ type: 'spki', format: 'der' })
  return Buffer.from(der.subarray(ED25519_SPKI_PREFIX.length)).toString('base64url')
}

/** The `KeyObject` of a base64url raw Ed25519 public key; throws `OperatorKeyError` if it is not one. */
export function operatorPublicKeyObject(publicKey: string): KeyObject {
  const raw = Buffer.from(publicKey, 'base64url')
  if (raw.byteLength !== 32 || raw.toString('base64url') !== publicKey) {
    throw new OperatorKeyError('an operator public key is 32 bytes, base64url (43 characters)', {
      code: 'invalid_public_key',
      value: publicKey,
    })
  }
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
}

export function generateOperatorKey(): OperatorKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  return { privateKey, publicKey: rawPublicKey(publicKey) }
}

/** Writes `key` as PKCS#8 PEM (mode 0600, write-then-rename); refuses to overwrite a key. */
export async function writeOperatorKey(path: string, key: OperatorKey): Promise<void> {
  const pem = key.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  try {
    await mkdir(dirname(path), { recursive: true })
    const temporary = `${path}.${process.pid}.tmp`
    await writeFile(temporary, pem, { mode: 0o600, flag: 'wx' })
    await chmod(temporary, 0o600)
    // link + unlink instead of rename: rename would silently replace an existing key.
    try {
      await link(temporary, path)
    } finally {
      await unlink(temporary)
    }
  } catch (cause) {
    const exists = (cause as NodeJS.ErrnoException).code === 'EEXIST'
    throw new OperatorKeyError(
      exists ? `${path} exists: an operator key is never overwritten` : `cannot write operator key ${path}`,
      { code: exists ? 'key_exists' : 'unwritable', value: path },
      { cause },
    )
  }
}

export async function loadOperatorKey(path: string): Promise<OperatorKey> {
  let pem: string
  try {
    pem = await readFile(path, 'utf8')
  } catch (cause) {
    throw new OperatorKeyError(
      `cannot read operator key ${path}`,
      { code: 'unreadable', value: path },
      { cause },
    )
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey(pem)
  } catch (cause) {
    throw new OperatorKeyError(
      `${path} is not a PEM private key`,
      { code: 'invalid_key', value: path },
      { cause },
    )
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new OperatorKeyError(`${path} holds a ${privateKey.asymmetricKeyType} key, not Ed25519`, {
      code: 'invalid_key',
      value: path,
    })
  }
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) }
}

/** Loads the key at `path`, or creates one there (what `phalanx local` does for its run). */
export async function loadOrCreateOperatorKey(path: string): Promise<OperatorKey> {
  try {
    return await loadOperatorKey(path)
  } catch (error) {
    if (!(error instanceof OperatorKeyError) || error.code !== 'unreadable') throw error
  }
  const key = generateOperatorKey()
  await writeOperatorKey(path, key)
  return key
}

// ---------------------------------------------------------------------------------------------
// Signing

export interface SignControlRecordInit {
  cluster: string
  action: ControlAction
  /** Default: microseconds since the epoch, kept strictly increasing within this process. */
  seq?: number
  /** Default: now. */
  issuedAtMs?: number
  /** Default: the action's lifetime in `CONTROL_RECORD_DEFAULTS`. */
  lifetimeMs?: number
}

let lastSeq = 0
/**
 * A clock-derived sequence number: a new `phalanx admit` process has no memory of the last one,
 * and the wall clock in microseconds increases across processes on one machine (and across an
 * operator's machines as far as their clocks agree).
 */
export function nextSequenceNumber(nowMs = Date.now()): number {
  lastSeq = Math.max(lastSeq + 1, Math.floor(nowMs * 1000))
  return lastSeq
}

function unsignedRecord(init: SignControlRecordInit, signer: ControlRecord['signer']): UnsignedControlRecord {
  const issuedAtMs = init.issuedAtMs ?? Date.now()
  return {
    v: 1,
    cluster: init.cluster,
    seq: init.seq ?? nextSequenceNumber(issuedAtMs),
    issuedAtMs,
    expiresAtMs: issuedAtMs + (init.lifetimeMs ?? CONTROL_RECORD_DEFAULTS.lifetimeMs[init.action.kind]),
    signer,
    action: init.action,
  }
}

export function signControlRecord(key: OperatorKey, init: SignControlRecordInit): ControlRecord {
  const unsigned = unsignedRecord(init, 'operator')
  const signature = signBytes(null, controlRecordStatement(unsigned), key.privateKey).toString('base64url')
  return ControlRecordSchema.parse({ ...unsigned, signature })
}

/** A worker's own `join`, signed by its peer key through `sign` (the libp2p node's key). */
export async function signJoinRecord(
  sign: (statement: Uint8Array) => Promise<Uint8Array>,
  init: Omit<SignControlRecordInit, 'action'> & {
    member: Extract<ControlAction, { kind: 'join' }>['member']
  },
): Promise<ControlRecord> {
  const { member, ...rest } = init
  const unsigned = unsignedRecord({ ...rest, action: { kind: 'join', member } }, 'member')
  const signature = Buffer.from(await sign(controlRecordStatement(unsigned))).toString('base64url')
  return ControlRecordSchema.parse({ ...unsigned, signature })
}

export function encodeControlRecord(record: ControlRecord): Uint8Array {
  return textEncoder.encode(JSON.stringify(ControlRecordSchema.parse(record)))
}

// ---------------------------------------------------------------------------------------------
// Verifying

/** Whether `signature` over `data` is the peer key's of `peerId` (injected: net owns peer ids). */
export type PeerSignatureVerifier = (
  peerId: string,
  data: Uint8Array,
  signature: Uint8Array,
) => Promise<boolean>

export interface ControlRecordVerifierInit {
  cluster: string
  /** The pinned operator key; without one every operator record is refused (`no_operator_key`). */
  operatorPublicKey?: string | undefined
  /** Needed for `join` records; without it they are refused (`not_allowed`). */
  verifyPeer?: PeerSignatureVerifier
  /** `open`: workers may register themselves with a `join` signed by their own key. */
  workerAdmission?: 'open' | 'closed'
  /**
   * Chaos records issued before this time are refused as `replayed`: a command issued before this
   * process started was meant for an earlier incarnation (a replayed `kill` must not kill its
   * replacement). Default: when the verifier is created.
   */
  chaosIssuedAfterMs?: number
  now?: () => number
  log?: Logger
  /** Counts each refusal (`phalanx_control_rejected_total{kind,reason}`). */
  onRejected?: (kind: string, reason: ControlRejectReason) => void
}

export type ControlRecordVerdict =
  | {
      ok: true
      record: ControlRecord /** The same record (same seq and signature) seen before. */
      repeat: boolean
    }
  | { ok: false; error: ControlRecordRejectedError }

export interface ControlRecordVerifier {
  /**
   * Checks a record (bytes off the wire or a parsed value) and, when it is accepted, remembers its
   * sequence number for its target. Never throws; each refusal is counted and logged once per
   * kind and reason.
   */
  check(input: Uint8Array | unknown): Promise<ControlRecordVerdict>
  /** Refusals so far, by `kind/reason`. */
  rejected(): Readonly<Record<string, number>>
}

export function createControlRecordVerifier(init: ControlRecordVerifierInit): ControlRecordVerifier {
  const now = init.now ?? Date.now
  const chaosIssuedAfterMs = init.chaosIssuedAfterMs ?? now()
  const log = init.log?.child({ component: 'control-records' })
  let operatorKey: KeyObject | undefined
  if (init.operatorPublicKey !== undefined) operatorKey = operatorPublicKeyObject(init.operatorPublicKey)
  const applied = new Map<string, { seq: number; signature: string }>()
  const counts: Record<string, number> = {}

  const refuse = (
    kind: string,
    reason: ControlRejectReason,
    message: string,
    seq?: number,
  ): ControlRecordVerdict => {
    const key = `${kind}/${reason}`
    counts[key] = (counts[key] ?? 0) + 1
    init.onRejected?.(kind, reason)
    if (counts[key] === 1)
      log?.warn({ kind, reason, seq }, `control record refused: ${message} (logged once, counted)`)
    return {
      ok: false,
      error: new ControlRecordRejectedError(message, {
        code: reason,
        kind,
        ...(seq === undefined ? {} : { seq }),
      }),
    }
  }

  const parse = (input: unknown): ControlRecord | undefined => {
    let value = input
    if (input instanceof Uint8Array) {
      if (input.byteLength > 64 * 1024) return undefined
      try {
        value = JSON.parse(textDecoder.decode(input))
      } catch {
        return undefined
      }
    }
    const parsed = ControlRecordSchema.safeParse(value)
    return parsed.success ? parsed.data : undefined
  }

  return {
    async check(input) {
      const record = parse(input)
      if (record === undefined) return refuse('unknown', 'malformed', 'not a control record')
      const { action, seq } = record
      const kind = action.kind
      if (record.cluster !== init.cluster) {
        return refuse(kind, 'wrong_cluster', `record for cluster ${record.cluster}, not ${init.cluster}`, seq)
      }
      const expectedSigner = kind === 'join' ? 'member' : 'operator'
      if (record.signer !== expectedSigner) {
        return refuse(kind, 'wrong_signer', `a ${kind} record must be signed by the ${expectedSigner}`, seq)
      }
      const statement = controlRecordStatement(record)
      const signature = Buffer.from(record.signature, 'base64url')
      if (kind === 'join') {
        if (init.workerAdmission !== 'open' || init.verifyPeer === undefined) {
          return refuse(
            kind,
            'not_allowed',
            'workers may not register themselves (workerAdmission: closed)',
            seq,
          )
        }
        if (!(await init.verifyPeer(action.member.peerId, statement, signature))) {
          return refuse(kind, 'bad_signature', `join not signed by ${action.member.peerId}`, seq)
        }
      } else {
        if (operatorKey === undefined) {
          return refuse(kind, 'no_operator_key', 'no operator public key is configured', seq)
        }
        let valid = false
        try {
          valid = verifyBytes(null, statement, operatorKey, signature)
        } catch {
          valid = false
        }
        if (!valid) return refuse(kind, 'bad_signature', 'not signed by the operator key', seq)
      }
      const at = now()
      if (record.expiresAtMs <= at) return refuse(kind, 'expired', `expired at ${record.expiresAtMs}`, seq)
      if (record.issuedAtMs > at + CONTROL_RECORD_DEFAULTS.maxClockSkewMs) {
        return refuse(kind, 'not_yet_valid', `issued at ${record.issuedAtMs}, in the future`, seq)
      }
      if (kind === 'chaos' && record.issuedAtMs < chaosIssuedAfterMs) {
        return refuse(kind, 'replayed', 'chaos command issued before this node started', seq)
      }
      const target = controlRecordTarget(action)
      const last = applied.get(target)
      if (last !== undefined) {
        if (last.seq === seq && last.signature === record.signature) return { ok: true, record, repeat: true }
        if (seq <= last.seq) return refuse(kind, 'replayed', `seq ${seq} ≤ ${last.seq} already applied`, seq)
      }
      applied.delete(target)
      applied.set(target, { seq, signature: record.signature })
      if (applied.size > CONTROL_RECORD_DEFAULTS.maxTrackedTargets) {
        applied.delete(applied.keys().next().value as string)
      }
      return { ok: true, record, repeat: false }
    },
    rejected: () => ({ ...counts }),
  }
}
