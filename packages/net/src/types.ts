/** Public shapes of the data plane. Implementations live in the other modules. */

export type MemberRole = 'server' | 'worker'
export type VectorKind = 'model' | 'gradient'

/** Which role may publish which kind: servers publish models, workers publish gradients. */
export const publisherRoleOf: Readonly<Record<VectorKind, MemberRole>> = {
  model: 'server',
  gradient: 'worker',
}

/**
 * Why a received message was not delivered. Each is counted (`NetCounters.rejected_total`) and
 * logged once.
 */
export const rejectReasons = [
  'malformed',
  'wrong_cluster',
  'wrong_epoch',
  'unknown_sender',
  'forged_sender',
  'wrong_role',
  'wrong_topic',
  'wrong_dimension',
  'oversize',
  'size_mismatch',
  'non_finite',
  'hash_mismatch',
  'stale_round',
  'future_round',
  'duplicate',
  'equivocation',
  'payload_unavailable',
] as const
export type RejectReason = (typeof rejectReasons)[number]

/** A vector that passed every check, as handed to the application. */
export interface DeliveredVector {
  kind: VectorKind
  round: number
  /** Peer id (base58) of the signer. */
  sender: string
  role: MemberRole
  /**
   * Read-only. Not a copy: a received vector is the array its payload was received into (or a
   * view of its inline payload), the same memory this node serves to peers that pull it and
   * relays; the node's own is the array it published. An application that needs to write into
   * one copies it first: writing into it would make this node serve bytes that fail the signed
   * hash (its peers refuse them and penalise it). Delivered once per (kind, round, sender) and
   * shared by every listener.
   */
  vector: Float32Array
  /** sha256 of the little-endian float32 payload, hex. */
  hash: string
  /** True for the node's own published vector (kept so a server counts itself in a quorum). */
  self: boolean
}

/**
 * One signed gossipsub message as evidence: its hash and signature, and its signed bytes only when
 * they carry no payload (an announcement, ≤ 1 KiB), so evidence never holds a vector.
 */
export interface SignedMessageEvidence {
  topic: string
  from: string
  data: Uint8Array | undefined
  sequenceNumber: bigint | undefined
  signature: Uint8Array | undefined
  /** sha256 of the payload the message commits to, hex. */
  hash: string
}

/** Two different signed messages from one sender for one round and kind. */
export interface EquivocationEvidence {
  kind: VectorKind
  round: number
  sender: string
  first: SignedMessageEvidence
  second: SignedMessageEvidence
}

export interface RejectedMessage {
  reason: RejectReason
  topic: string
  /** The peer that signed the message, when it could be read. */
  from: string | undefined
  round: number | undefined
  detail: string | undefined
}

/** A member set: who may publish, and in which role. */
export interface Membership {
  /** Closed: the connection gater refuses peers outside the set. Open: anyone may connect,
   * but only members' vectors are accepted. */
  readonly closed: boolean
  roleOf(peerId: string): MemberRole | undefined
  has(peerId: string): boolean
  members(): ReadonlyMap<string, MemberRole>
  count(role?: MemberRole): number
  /** Replaces the whole set (e.g. from the control plane's membership KV). */
  replace(members: Iterable<readonly [string, MemberRole]>): void
  add(peerId: string, role: MemberRole): void
  remove(peerId: string): void
  setClosed(closed: boolean): void
  /** Called after every change; returns an unsubscribe function. */
  onChange(listener: () => void): () => void
}

export interface CollectOptions {
  /** How many distinct senders to wait for. */
  quorum: number
  /** Give up after this long with a `QuorumTimeoutError` naming who did send. */
  timeoutMs: number
  signal?: AbortSignal
}
