/**
 * The validation pipeline: plain functions over a received gossip message and a context, each
 * returning a verdict with a reason instead of throwing. Cheap checks run first, so the O(d)
 * hash and finiteness passes only run for messages that are otherwise acceptable.
 *
 * Order: decode → cluster → epoch → membership → forged sender → role/topic → oversize →
 * dimension → size → round window → (inline payload: hash → finiteness) → duplicate →
 * equivocation (an announcement stays pending in the ledger until its payload is verified).
 * The epoch comes before everything about the sender: a message of an earlier run is refused as
 * what it is, whoever signed it.
 * Oversize comes before dimension so that a huge announcement is counted as what it is, and is
 * refused from its header before any byte of the payload moves.
 */
import { decodeVectorMessage, toHex, type VectorHeader } from './codec.js'
import { netDefaults } from './defaults.js'
import { inspectPayload, type ReceivedPayload } from './receive.js'
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
  /** Another offer of an announced hash whose payload is still pending (fetch it from here too). */
  again?: boolean
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
    const received = header.payload.byteLength === header.size ? inspectPayload(header.payload) : undefined
    const problem =
      received === undefined
        ? payloadSizeProblem(header.payload.byteLength, header.size)
        : checkReceived(header, received)
    if (problem !== undefined) return reject(problem.reason, problem.detail, header)
    vector = received!.vector
  }
  return { ok: true, header, kind: topicKind, role: expectedRole, hash: toHex(header.hash), vector }
}

type PayloadProblem = { reason: RejectReason; detail: string }

function payloadSizeProblem(bytes: number, size: number): PayloadProblem | undefined {
  return bytes === size
    ? undefined
    : { reason: 'size_mismatch', detail: `payload ${bytes} ≠ announced ${size} bytes` }
}

/** Checks payload bytes against the signed header: size, hash, then finiteness. */
export function checkPayload(
  header: Pick<VectorHeader, 'size' | 'hash'>,
  bytes: Uint8Array,
): PayloadProblem | undefined {
  return payloadSizeProblem(bytes.byteLength, header.size) ?? checkReceived(header, inspectPayload(bytes))
}

/**
 * Judges a received payload (inline, or fetched into place: `receive.ts` hashed and scanned it
 * once): the hash first, since bytes that do not match the signed hash are the fault of whoever
 * served them and the next peer may have the right ones; then finiteness, which for bytes
 * matching the signed hash is the signer's fault. The one place both are decided.
 */
export function checkReceived(
  header: Pick<VectorHeader, 'size' | 'hash'>,
  received: ReceivedPayload,
): PayloadProblem | undefined {
  const size = payloadSizeProblem(received.bytes.byteLength, header.size)
  if (size !== undefined) return size
  if (Buffer.compare(received.digest, header.hash) !== 0)
    return { reason: 'hash_mismatch', detail: 'payload does not match the signed sha256' }
  if (received.firstNonFinite >= 0)
    return { reason: 'non_finite', detail: `coordinate ${received.firstNonFinite} is not finite` }
  return undefined
}

interface LedgerEntry {
  /** What the sender signed first for this key: compact, never its payload. */
  first: SignedMessageEvidence
  /**
   * `pending`: the signed announcement passed every check but its payload has not been verified
   * yet, so it is not a commitment the ledger can call a repeat against (a failed fetch must not
   * turn the announcer's republish, or a relay's copy, into a `duplicate`). `committed`: the
   * payload was verified (inline, or fetched), or refused as the signer's own fault.
   */
  state: 'pending' | 'committed'
  equivocated: boolean
}

/** What `RoundLedger.observe` says about a message that passed every other check. */
export type LedgerVerdict =
  /** New and complete (inline payload verified): committed, deliver it. */
  | { kind: 'new' }
  /**
   * An announcement whose payload is not verified yet: the first one, or the same hash offered
   * again by another peer (a republish, a relay's forward, a sync answer). Fetch it.
   */
  | { kind: 'pending'; again: boolean }
  | { kind: 'rejected'; rejected: Rejected }

/**
 * What each sender committed to, per kind and round, within the window. The first signed message
 * is kept (compact: hashes and signature) so that a second, different one becomes evidence of
 * equivocation, whether or not the first one's payload has arrived: two hashes signed by one key
 * for one round prove it. An announced payload stays `pending` until it is verified, so that a
 * peer that stalls or fails a fetch costs that fetch, not the vector: every later offer of the
 * same hash is fetched again. A pending entry cannot block the honest version: only the signer
 * can create it (its signature), and a second hash from the signer is an equivocation.
 *
 * Bounds: only messages that passed every other check get an entry (members, inside the window),
 * one per (sender, kind, round), and `prune` drops the rounds the window left: entries (pending
 * ones included) stay under members × kinds × window, per sender under kinds × window. Evidence
 * is compact (no payload bytes) and held until taken (`takeEvidence`, the control plane
 * publishes it) up to `maxEvidencePerSender` per sender and `maxEvidence` in all, newest kept.
 */
export class RoundLedger {
  readonly #entries = new Map<string, LedgerEntry>()
  #evidence: EquivocationEvidence[] = []
  readonly #evidenceBySender = new Map<string, number>()
  #evidenceDropped = 0

  constructor(
    readonly maxEvidence: number = netDefaults.maxEvidence,
    readonly maxEvidencePerSender: number = netDefaults.maxEvidencePerSender,
  ) {}

  static #key(kind: VectorKind, round: number, sender: string): string {
    return `${kind}\u0000${round}\u0000${sender}`
  }

  /**
   * Records an otherwise valid message: `new` when it is the sender's first for the round and
   * its payload is verified (inline), `pending` when the payload must still be fetched (first
   * offer or another offer of the same hash), else the rejection (duplicate of a committed one,
   * or equivocation, with evidence the first time).
   */
  classify(accepted: Accepted, message: IncomingMessage): LedgerVerdict {
    const { header, kind, hash } = accepted
    const key = RoundLedger.#key(kind, header.round, header.sender)
    const entry = this.#entries.get(key)
    const complete = accepted.vector !== undefined
    if (entry === undefined) {
      this.#entries.set(key, {
        first: evidenceOf(message, header.sender, hash),
        state: complete ? 'committed' : 'pending',
        equivocated: false,
      })
      return complete ? { kind: 'new' } : { kind: 'pending', again: false }
    }
    if (entry.equivocated) {
      return {
        kind: 'rejected',
        rejected: reject(
          'equivocation',
          `${header.sender} already equivocated in round ${header.round}`,
          header,
        ),
      }
    }
    if (entry.first.hash === hash) {
      if (entry.state === 'committed')
        return { kind: 'rejected', rejected: reject('duplicate', 'same payload again', header) }
      if (!complete) return { kind: 'pending', again: true }
      // The same bytes inline, while the announced copy is still being fetched: verified already.
      entry.state = 'committed'
      return { kind: 'new' }
    }
    entry.equivocated = true
    const evidence: EquivocationEvidence = {
      kind,
      round: header.round,
      sender: header.sender,
      first: entry.first,
      second: evidenceOf(message, header.sender, hash),
    }
    this.#keepEvidence(evidence)
    return {
      kind: 'rejected',
      rejected: {
        ...reject('equivocation', `two different ${kind}s for round ${header.round}`, header),
        equivocation: evidence,
      },
    }
  }

  /** As `classify`, for callers that only need a rejection or nothing (pending counts as nothing). */
  observe(accepted: Accepted, message: IncomingMessage): Rejected | undefined {
    const verdict = this.classify(accepted, message)
    return verdict.kind === 'rejected' ? verdict.rejected : undefined
  }

  /**
   * The payload of a pending entry was verified (or refused as the signer's fault: it matches the
   * signed hash but is not finite): the entry becomes a commitment. False when it was committed
   * already (another copy got there first) or is gone: the caller must not deliver it again.
   */
  commit(kind: VectorKind, round: number, sender: string, hash: string): boolean {
    const entry = this.#entries.get(RoundLedger.#key(kind, round, sender))
    if (entry === undefined || entry.equivocated || entry.first.hash !== hash) return false
    if (entry.state === 'committed') return false
    entry.state = 'committed'
    return true
  }

  /** True while the entry waits for its payload (for tests and the bound's accounting). */
  isPending(kind: VectorKind, round: number, sender: string): boolean {
    return this.#entries.get(RoundLedger.#key(kind, round, sender))?.state === 'pending'
  }

  #keepEvidence(evidence: EquivocationEvidence): void {
    const sender = evidence.sender
    const held = this.#evidenceBySender.get(sender) ?? 0
    if (held >= this.maxEvidencePerSender) {
      // One sender equivocating every round keeps its newest few, not the whole budget.
      const oldest = this.#evidence.findIndex((e) => e.sender === sender)
      this.#evidence.splice(oldest, 1)
      this.#evidenceDropped++
    } else this.#evidenceBySender.set(sender, held + 1)
    this.#evidence.push(evidence)
    while (this.#evidence.length > this.maxEvidence) {
      const dropped = this.#evidence.shift()!
      this.#evidenceDropped++
      const left = (this.#evidenceBySender.get(dropped.sender) ?? 1) - 1
      if (left <= 0) this.#evidenceBySender.delete(dropped.sender)
      else this.#evidenceBySender.set(dropped.sender, left)
    }
  }

  /** True when the sender has been caught equivocating for this kind and round. */
  isEquivocator(kind: VectorKind, round: number, sender: string): boolean {
    return this.#entries.get(RoundLedger.#key(kind, round, sender))?.equivocated === true
  }

  /**
   * Forgets rounds below the window, equivocators' and pending entries included: a message of
   * those rounds is refused as stale before it reaches the ledger. Held evidence stays until taken.
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

  /** Evidence held and not taken yet, oldest first. */
  evidence(): readonly EquivocationEvidence[] {
    return this.#evidence
  }

  /** Hands over the evidence held and forgets it (the control plane publishes it once). */
  takeEvidence(): EquivocationEvidence[] {
    const taken = this.#evidence
    this.#evidence = []
    this.#evidenceBySender.clear()
    return taken
  }

  /** Evidence pairs dropped unpublished by the bounds (newest kept). */
  get evidenceDropped(): number {
    return this.#evidenceDropped
  }
}

/** The largest signed message kept verbatim in evidence: an announcement, never a payload. */
const maxEvidenceDataBytes = 1024

function evidenceOf(message: IncomingMessage, sender: string, hash: string): SignedMessageEvidence {
  return {
    topic: message.topic,
    from: sender,
    // An announcement (~150 bytes, the hash and no payload) is kept so that anyone can check its
    // signature; a message carrying its payload inline is reduced to hash and signature.
    data: message.data.byteLength <= maxEvidenceDataBytes ? message.data.slice() : undefined,
    sequenceNumber: message.sequenceNumber,
    signature: message.signature?.slice(),
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
  const entry = ledger.classify(verdict, message)
  if (entry.kind === 'rejected') return entry.rejected
  return entry.kind === 'pending' && entry.again ? { ...verdict, again: true } : verdict
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
