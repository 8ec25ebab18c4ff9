/**
 * The validation pipeline: plain functions over a received gossip message and a context, each
 * returning a verdict with a reason instead of throwing. Cheap checks run first, so the O(d)
 * hash and finiteness passes only run for messages that are otherwise acceptable.
 *
 * Order: decode → cluster → epoch → membership → forged sender → role/topic → oversize →
 * dimension → size → round window → (inline payload: hash → finiteness) → duplicate →
 * equivocation. The epoch comes before everything about the sender: a message of an earlier run
 * is refused as what it is, whoever signed it.
 * Oversize comes before dimension so that a huge announcement is counted as what it is, and is
 * refused from its header before any byte of the payload moves.
 */
import {
  bytesToVector,
  decodeVectorMessage,
  firstNonFinite,
  sha256,
  toHex,
  type VectorHeader,
} from './codec.js'
import { netDefaults } from './defaults.js'
import {
  type EquivocationEvidence,
  type MemberRole,
  type Membership,
  publisherRoleOf,
  type RejectReason,
  type SignedMessageEvidence,
  type VectorKind,
} from './types.js'

export interface ValidationContext {
  cluster: string
  /** The cluster's incarnation: messages signed in another one are refused (`wrong_epoch`). */
  epoch: number
  /** Expected number of float32 coordinates. */
  dimension: number
  maxPayloadBytes: number
  currentRound: number
  /** W: rounds accepted ahead of the current one; the window is [current − 1, current + W]. */
  roundWindowAhead: number
  membership: Membership
}

/** A signed gossip message as gossipsub hands it to a topic validator. */
export interface IncomingMessage {
  topic: string
  /** Signer's peer id; gossipsub StrictSign has verified the signature against it. */
  from: string | undefined
  data: Uint8Array
  sequenceNumber?: bigint | undefined
  signature?: Uint8Array | undefined
}

export interface Accepted {
  ok: true
  header: VectorHeader
  kind: VectorKind
  role: MemberRole
  hash: string
  /** The decoded inline payload; undefined when it must be fetched over a stream. */
  vector: Float32Array | undefined
}

export interface Rejected {
  ok: false
  reason: RejectReason
  detail: string
  header: VectorHeader | undefined
  /** Present the first time a sender is caught equivocating for a round. */
  equivocation?: EquivocationEvidence
}

export type Verdict = Accepted | Rejected

function reject(reason: RejectReason, detail: string, header?: VectorHeader): Rejected {
  return { ok: false, reason, detail, header }
}

/** Checks every field that can be checked without the payload bytes (and the inline payload). */
export function checkMessage(
  message: IncomingMessage,
  topicKind: VectorKind,
  ctx: ValidationContext,
): Verdict {
  const header = decodeVectorMessage(message.data)
  if (header === undefined) return reject('malformed', 'not a VectorMessage')
  if (header.cluster !== ctx.cluster) return reject('wrong_cluster', `cluster ${header.cluster}`, header)
  if (header.epoch !== ctx.epoch) return reject('wrong_epoch', `epoch ${header.epoch} ≠ ${ctx.epoch}`, header)
  const from = message.from
  if (from === undefined) return reject('forged_sender', 'unsigned message', header)
  const memberRole = ctx.membership.roleOf(from)
  if (memberRole === undefined) return reject('unknown_sender', `${from} is not a member`, header)
  if (header.sender !== from)
    return reject('forged_sender', `claims ${header.sender}, signed by ${from}`, header)
  if (header.kind !== topicKind)
    return reject('wrong_topic', `kind ${header.kind} on ${topicKind} topic`, header)
  const expectedRole = publisherRoleOf[topicKind]
  if (memberRole !== expectedRole || header.role !== expectedRole) {
    return reject('wrong_role', `${memberRole} (claims ${header.role}) cannot publish ${topicKind}`, header)
  }
  if (header.size > ctx.maxPayloadBytes || header.payload.byteLength > ctx.maxPayloadBytes) {
    return reject(
      'oversize',
      `${Math.max(header.size, header.payload.byteLength)} > ${ctx.maxPayloadBytes} bytes`,
      header,
    )
  }
  if (header.dimension !== ctx.dimension) {
    return reject('wrong_dimension', `dimension ${header.dimension} ≠ ${ctx.dimension}`, header)
  }
  if (header.size !== header.dimension * 4)
    return reject('size_mismatch', `size ${header.size} ≠ 4·d`, header)
  if (header.hash.byteLength !== 32)
    return reject('malformed', `hash of ${header.hash.byteLength} bytes`, header)
  if (header.round < ctx.currentRound - 1) {
    return reject('stale_round', `round ${header.round} < ${ctx.currentRound - 1}`, header)
  }
  if (header.round > ctx.currentRound + ctx.roundWindowAhead) {
    return reject(
      'future_round',
      `round ${header.round} > ${ctx.currentRound + ctx.roundWindowAhead}`,
      header,
    )
  }
  let vector: Float32Array | undefined
  if (header.payload.byteLength > 0) {
    const payloadReason = checkPayload(header, header.payload)
    if (payloadReason !== undefined) return reject(payloadReason.reason, payloadReason.detail, header)
    vector = bytesToVector(header.payload)
  }
  return { ok: true, header, kind: topicKind, role: expectedRole, hash: toHex(header.hash), vector }
}

/** Checks payload bytes against the signed header: size, hash, then finiteness. */
export function checkPayload(
  header: Pick<VectorHeader, 'size' | 'hash'>,
  bytes: Uint8Array,
): { reason: RejectReason; detail: string } | undefined {
  if (bytes.byteLength !== header.size) {
    return { reason: 'size_mismatch', detail: `payload ${bytes.byteLength} ≠ announced ${header.size} bytes` }
  }
  if (!Buffer.from(sha256(bytes)).equals(header.hash)) {
    return { reason: 'hash_mismatch', detail: 'payload does not match the signed sha256' }
  }
  const bad = firstNonFinite(bytesToVector(bytes))
  if (bad >= 0) return { reason: 'non_finite', detail: `coordinate ${bad} is not finite` }
  return undefined
}

interface LedgerEntry {
  first: SignedMessageEvidence
  equivocated: boolean
}

/**
 * What each sender committed to, per kind and round, within the window: the first signed message
 * is kept so that a second, different one becomes evidence of equivocation. Only messages that
 * passed every other check get an entry (members, inside the window), and `prune` drops the
 * rounds the window left, so entries stay under members × kinds × window; the evidence list
 * keeps the newest `maxEvidence` pairs.
 */
export class RoundLedger {
  readonly #entries = new Map<string, LedgerEntry>()
  readonly #evidence: EquivocationEvidence[] = []

  constructor(readonly maxEvidence: number = netDefaults.maxEvidence) {}

  static #key(kind: VectorKind, round: number, sender: string): string {
    return `${kind}\u0000${round}\u0000${sender}`
  }

  /**
   * Records an otherwise valid message. Returns undefined when it is the sender's first for the
   * round, or the rejection (duplicate, or equivocation with evidence the first time).
   */
  observe(accepted: Accepted, message: IncomingMessage): Rejected | undefined {
    const { header, kind, hash } = accepted
    const key = RoundLedger.#key(kind, header.round, header.sender)
    const entry = this.#entries.get(key)
    if (entry === undefined) {
      this.#entries.set(key, { first: evidenceOf(message, header.sender, hash), equivocated: false })
      return undefined
    }
    if (entry.equivocated) {
      return reject('equivocation', `${header.sender} already equivocated in round ${header.round}`, header)
    }
    if (entry.first.hash === hash) return reject('duplicate', `same payload again`, header)
    entry.equivocated = true
    const evidence: EquivocationEvidence = {
      kind,
      round: header.round,
      sender: header.sender,
      first: entry.first,
      second: evidenceOf(message, header.sender, hash),
    }
    this.#evidence.push(evidence)
    // A Byzantine member equivocating every round of a long run must not grow this for good.
    if (this.#evidence.length > this.maxEvidence)
      this.#evidence.splice(0, this.#evidence.length - this.maxEvidence)
    return {
      ...reject('equivocation', `two different ${kind}s for round ${header.round}`, header),
      equivocation: evidence,
    }
  }

  /** True when the sender has been caught equivocating for this kind and round. */
  isEquivocator(kind: VectorKind, round: number, sender: string): boolean {
    return this.#entries.get(RoundLedger.#key(kind, round, sender))?.equivocated === true
  }

  /**
   * Forgets rounds below the window, equivocators' entries included: a message of those rounds
   * is refused as stale before it reaches the ledger. The evidence list is kept (bounded).
   */
  prune(oldestRound: number): void {
    for (const key of this.#entries.keys()) {
      if (Number(key.split('\u0000')[1]) < oldestRound) this.#entries.delete(key)
    }
  }

  /** Entries held (for the bound's test). */
  get size(): number {
    return this.#entries.size
  }

  evidence(): readonly EquivocationEvidence[] {
    return this.#evidence
  }
}

function evidenceOf(message: IncomingMessage, sender: string, hash: string): SignedMessageEvidence {
  return {
    topic: message.topic,
    from: sender,
    data: message.data,
    sequenceNumber: message.sequenceNumber,
    signature: message.signature,
    hash,
  }
}

/**
 * The whole pipeline for one message: header and inline checks, then the ledger. Never throws.
 */
export function validateVectorMessage(
  message: IncomingMessage,
  topicKind: VectorKind,
  ctx: ValidationContext,
  ledger: RoundLedger,
): Verdict {
  let verdict: Verdict
  try {
    verdict = checkMessage(message, topicKind, ctx)
  } catch (error) {
    // Defence in depth: a bug in a check must not crash the node or let a message through.
    return reject('malformed', `validator error: ${(error as Error).message}`)
  }
  if (!verdict.ok) return verdict
  return ledger.observe(verdict, message) ?? verdict
}

/** Reasons that prove the signer misbehaved (as opposed to lagging or a network fault). */
export function isSignerFault(reason: RejectReason): boolean {
  return !(
    reason === 'stale_round' ||
    reason === 'future_round' ||
    reason === 'duplicate' ||
    reason === 'payload_unavailable'
  )
}

/**
 * Reasons for which the peer that handed the message over is at fault as well as its signer:
 * an honest relay validates before it forwards, so it never passes these on. Not an equivocation
 * (an honest relay forwards the version it saw first), nor what only lags or repeats.
 */
export function isRelayFault(reason: RejectReason): boolean {
  return isSignerFault(reason) && reason !== 'equivocation'
}
