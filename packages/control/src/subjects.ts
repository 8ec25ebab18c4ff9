/**
 * Every NATS subject, bucket and stream the control plane uses, with the schema of what travels on
 * it. This is the only module that spells a subject: other modules ask it, so a rename is one edit
 * and the catalogue below is the complete list an operator needs for NATS permissions.
 */
import { z } from 'zod'
import { InvalidPayloadError, InvalidSubjectTokenError } from './errors.js'

/**
 * Cluster and node ids become one subject token and part of bucket names, so they must avoid `.`,
 * wildcards and whitespace; bucket names further forbid anything but `[A-Za-z0-9_-]`.
 */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{1,128}$/

const token = z.string().regex(TOKEN_PATTERN, 'must match [A-Za-z0-9_-]{1,128}')
const nonNegativeInt = z.int().nonnegative()
const finite = z.number()

export const RoleSchema = z.enum(['server', 'worker'])
export type Role = z.infer<typeof RoleSchema>

/** A member of the cluster, as stored under its peer id in the membership KV bucket. */
export const MemberSchema = z.object({
  /** libp2p peer id (base58/base32): the identity signatures are checked against. */
  peerId: token,
  /** Operator-facing id, also the token in chaos and telemetry subjects. */
  nodeId: token,
  role: RoleSchema,
  multiaddrs: z.array(z.string().min(1).max(512)).max(32),
})
export type Member = z.infer<typeof MemberSchema>

/** Why a node doubts a peer, with enough evidence for an operator (or a test) to check the claim. */
export const SuspicionSchema = z.object({
  suspect: z.string().min(1).max(256),
  reason: z.string().min(1).max(64),
  round: nonNegativeInt,
  evidence: z.record(z.string(), z.json()),
})
export type Suspicion = z.infer<typeof SuspicionSchema>

/** One node's report for one round. Bounded so that an event always fits far below NATS' 1 MiB. */
export const TelemetryEventSchema = z.object({
  nodeId: token,
  role: RoleSchema,
  round: nonNegativeInt,
  timestampMs: nonNegativeInt,
  /** Test accuracy in [0, 1], only where the node evaluates. */
  accuracy: z.number().min(0).max(1).optional(),
  loss: finite.optional(),
  /**
   * Servers: the lower median of `modelDistances` (one meaning of drift, docs/OPERATIONS.md "What
   * drift means"): how far this server's model of the round is from the other servers' models.
   */
  drift: z.number().nonnegative().optional(),
  roundDurationSeconds: z.number().nonnegative().optional(),
  quorumWaitSeconds: z.number().nonnegative(),
  /** Rejected messages this round, by reason (dimension, non-finite, round-window, equivocation, …). */
  rejected: z.record(z.string().max(64), nonNegativeInt),
  suspicions: z.array(SuspicionSchema).max(64),
  /** ℓ2 distance from this server's model of the round to each model it received, by peer id. */
  modelDistances: z
    .record(z.string().max(256), z.number().nonnegative())
    .refine((distances) => Object.keys(distances).length <= 64, 'at most 64 peers')
    .optional(),
  /** Peer ids of the workers whose gradients this server aggregated in the round (servers): who
   * actually got into the rule's inputs, Byzantine senders included. */
  gradientSenders: z.array(z.string().max(256)).max(1024).optional(),
  /** Peer id of the libp2p key that signed the event (telemetry.ts); absent: unsigned, not shown. */
  peerId: token.optional(),
  /** That key's signature over `telemetryStatement(event)`, base64url. */
  signature: z.string().min(1).max(256).optional(),
})
export type TelemetryEvent = z.infer<typeof TelemetryEventSchema>

/** What a node's round record carries beyond its telemetry event: read locally, never published. */
export const roundRecordLocalFields = {
  /** The quorum wait by what was awaited (`phalanx_quorum_wait_seconds{input}`); sums to `quorumWaitSeconds`. */
  quorumWaitByInputSeconds: z
    .object({ models: z.number().nonnegative().optional(), gradients: z.number().nonnegative().optional() })
    .optional(),
  /** Servers: ℓ2 norm of the model this server published for the round (`phalanx_model_drift_ratio`'s scale). */
  modelNorm: z.number().nonnegative().optional(),
  /**
   * CPU (user + system, every thread of the process) used since the node's previous record: what
   * the node would need of a machine of its own, whatever else shares this one.
   */
  cpuSeconds: z.number().nonnegative().optional(),
  /**
   * Rejections since the process started, by reason (`rejected` holds this round's): what a reader
   * of one process's records compares, as `phalanx local` and the chaos suite do.
   */
  rejectedSinceStart: z.record(z.string().max(64), z.int().nonnegative()).optional(),
  /** Peer ids of the servers whose models this node took the median of in the round. */
  modelSenders: z.array(z.string().max(256)).max(1024).optional(),
}

/**
 * One node's record of one round: the one shape every layer passes on. The round loop fills its
 * timing and senders, the node process adds the evaluation, distances, drift, suspicions and the
 * round's rejections; `phalanx local` reads it from its children; the control plane records it in
 * `/metrics` and publishes it as a `TelemetryEvent` (this record without its local fields, with the
 * publisher's time, peer id and signature). Narrower views of it are `Pick`s of this type.
 */
export const RoundRecordSchema = TelemetryEventSchema.omit({
  timestampMs: true,
  peerId: true,
  signature: true,
}).extend(roundRecordLocalFields)
export type RoundRecord = z.infer<typeof RoundRecordSchema>

/** Announced after each accepted KV change; the KV bucket stays the source of truth. */
export const MembershipChangeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('admit'), member: MemberSchema, revision: nonNegativeInt }),
  z.object({ kind: z.literal('evict'), peerId: token, revision: nonNegativeInt }),
])
export type MembershipChange = z.infer<typeof MembershipChangeSchema>

export const ChaosCommandSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('kill') }),
  z.object({ kind: z.literal('pause') }),
  z.object({ kind: z.literal('resume') }),
  z.object({
    kind: z.literal('corrupt'),
    attack: z.string().min(1).max(64),
    options: z.record(z.string(), z.json()).default({}),
  }),
  z.object({ kind: z.literal('partition'), durationMs: z.int().positive() }),
  z.object({ kind: z.literal('heal') }),
])
export type ChaosCommand = z.infer<typeof ChaosCommandSchema>
export type ChaosCommandKind = ChaosCommand['kind']

export const ChaosReplySchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), nodeId: token, kind: z.string() }),
  z.object({
    ok: z.literal(false),
    nodeId: token,
    kind: z.string(),
    // `code` is optional: a node built before error codes answers without it.
    error: z.object({ name: z.string(), message: z.string(), code: z.string().optional() }),
  }),
])
export type ChaosReply = z.infer<typeof ChaosReplySchema>

/** Published after a checkpoint is acknowledged by JetStream, so watchers need not poll the bucket. */
export const CheckpointAnnouncementSchema = z.object({
  serverId: token,
  round: nonNegativeInt,
  configHash: z.string().min(1).max(128),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  dimension: z.int().positive(),
  objectName: z.string().min(1),
})
export type CheckpointAnnouncement = z.infer<typeof CheckpointAnnouncementSchema>

/** One signed gossip message of an equivocation, compact: its hash and signature, never a payload. */
const SignedMessageRecordSchema = z.object({
  /** sha256 of the payload the message commits to, hex. */
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** gossipsub sequence number, decimal (a uint64). */
  seqno: z
    .string()
    .regex(/^[0-9]{1,20}$/)
    .optional(),
  /** The signer's gossipsub signature, base64url. */
  signature: z.string().min(1).max(256).optional(),
  /** The signed message bytes when they carry no payload (an announcement, ≤ 1 KiB), base64url. */
  data: z.string().min(1).max(1400).optional(),
})

/**
 * Equivocation evidence a node saw in the data plane (two signed hashes from one sender for one
 * round and kind), published once by the node that caught it and signed by its peer key.
 */
export const EquivocationRecordSchema = z.object({
  /** The reporting node's id and peer id (the key that signed this record). */
  nodeId: token,
  peerId: token,
  kind: z.enum(['model', 'gradient']),
  round: nonNegativeInt,
  /** The equivocating signer's peer id. */
  sender: z.string().min(1).max(256),
  first: SignedMessageRecordSchema,
  second: SignedMessageRecordSchema,
  /** The reporter's signature over `evidenceStatement(record)`, base64url. */
  signature: z.string().min(1).max(256),
})
export type EquivocationRecord = z.infer<typeof EquivocationRecordSchema>

/** Schema of every payload kind; `encode`/`decode` look the schema up here. */
export const payloadSchemas = {
  telemetry: TelemetryEventSchema,
  membership: MembershipChangeSchema,
  member: MemberSchema,
  chaos: ChaosCommandSchema,
  chaosReply: ChaosReplySchema,
  checkpoint: CheckpointAnnouncementSchema,
  evidence: EquivocationRecordSchema,
} as const
export type PayloadKind = keyof typeof payloadSchemas
export type PayloadOf<K extends PayloadKind> = z.output<(typeof payloadSchemas)[K]>
export type PayloadInput<K extends PayloadKind> = z.input<(typeof payloadSchemas)[K]>

/** Human-readable catalogue of every subject, for docs and NATS permission files. */
export const SUBJECT_CATALOG: readonly { pattern: string; kind: PayloadKind | 'bytes'; purpose: string }[] = [
  { pattern: 'phalanx.<cluster>.telemetry.<nodeId>', kind: 'telemetry', purpose: 'per-round node report' },
  { pattern: 'phalanx.<cluster>.membership', kind: 'membership', purpose: 'admit/evict announcements' },
  { pattern: 'phalanx.<cluster>.chaos.<nodeId>', kind: 'chaos', purpose: 'fault injection (request/reply)' },
  { pattern: '_INBOX.> (chaos replies)', kind: 'chaosReply', purpose: 'acknowledgement of a chaos command' },
  { pattern: 'phalanx.<cluster>.checkpoints', kind: 'checkpoint', purpose: 'checkpoint stored announcement' },
  {
    pattern: 'phalanx.<cluster>.evidence.<nodeId>',
    kind: 'evidence',
    purpose: 'equivocation evidence a node caught, published once',
  },
  {
    pattern: 'KV bucket phalanx-<cluster>-members',
    kind: 'bytes',
    purpose: 'operator-signed admit/evict records (operator writes only), key = peer id',
  },
  {
    pattern: 'KV bucket phalanx-<cluster>-joins',
    kind: 'bytes',
    purpose: "workers' own signed join records (workerAdmission: open), key = peer id",
  },
  { pattern: 'object store phalanx-<cluster>-checkpoints', kind: 'bytes', purpose: 'model checkpoints' },
  {
    pattern: 'phalanx.<cluster>.log.<log> (stream phalanx-<cluster>-<log>)',
    kind: 'bytes',
    purpose: 'replicated log',
  },
]

export interface ClusterSubjects {
  readonly cluster: string
  readonly prefix: string
  telemetry(nodeId: string): string
  readonly telemetryAll: string
  readonly membership: string
  chaos(nodeId: string): string
  readonly checkpoints: string
  /** Where a node publishes the equivocation evidence it caught (evidence.ts). */
  evidence(nodeId: string): string
  readonly evidenceAll: string
  readonly membersBucket: string
  /** Workers' self-registrations: separate from `membersBucket` so a worker may write here only. */
  readonly joinsBucket: string
  readonly checkpointsBucket: string
  /** Subject and stream name of a replicated log (the SMR baseline's gradient log is one). */
  log(logName: string): { subject: string; stream: string }
}

export function assertToken(value: string, field: string): string {
  if (!TOKEN_PATTERN.test(value)) {
    throw new InvalidSubjectTokenError(`${field} "${value}" must match [A-Za-z0-9_-]{1,128}`, {
      token: value,
      field,
    })
  }
  return value
}

export function clusterSubjects(cluster: string): ClusterSubjects {
  assertToken(cluster, 'cluster')
  const prefix = `phalanx.${cluster}`
  return {
    cluster,
    prefix,
    telemetry: (nodeId) => `${prefix}.telemetry.${assertToken(nodeId, 'nodeId')}`,
    telemetryAll: `${prefix}.telemetry.*`,
    membership: `${prefix}.membership`,
    chaos: (nodeId) => `${prefix}.chaos.${assertToken(nodeId, 'nodeId')}`,
    checkpoints: `${prefix}.checkpoints`,
    evidence: (nodeId) => `${prefix}.evidence.${assertToken(nodeId, 'nodeId')}`,
    evidenceAll: `${prefix}.evidence.*`,
    membersBucket: `phalanx-${cluster}-members`,
    joinsBucket: `phalanx-${cluster}-joins`,
    checkpointsBucket: `phalanx-${cluster}-checkpoints`,
    log: (logName) => {
      assertToken(logName, 'logName')
      return { subject: `${prefix}.log.${logName}`, stream: `phalanx-${cluster}-${logName}` }
    },
  }
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`)
}

const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder('utf-8', { fatal: true })

/** Validates then serialises; throws `InvalidPayloadError` because an invalid outgoing payload is a bug. */
export function encode<K extends PayloadKind>(kind: K, payload: PayloadInput<K>): Uint8Array {
  const parsed = payloadSchemas[kind].safeParse(payload)
  if (!parsed.success) {
    const issues = describeIssues(parsed.error)
    throw new InvalidPayloadError(`invalid outgoing ${kind} payload: ${issues.join('; ')}`, { kind, issues })
  }
  return textEncoder.encode(JSON.stringify(parsed.data))
}

export type DecodeResult<K extends PayloadKind> =
  | { ok: true; value: PayloadOf<K> }
  | { ok: false; error: InvalidPayloadError }

/** Parses and validates incoming bytes; never throws (remote input is untrusted by definition). */
export function decode<K extends PayloadKind>(kind: K, data: Uint8Array): DecodeResult<K> {
  let json: unknown
  try {
    json = JSON.parse(textDecoder.decode(data))
  } catch (cause) {
    const issues = ['(root): not UTF-8 JSON']
    return {
      ok: false,
      error: new InvalidPayloadError(`invalid incoming ${kind} payload`, { kind, issues }, { cause }),
    }
  }
  const parsed = payloadSchemas[kind].safeParse(json)
  if (!parsed.success) {
    const issues = describeIssues(parsed.error)
    return { ok: false, error: new InvalidPayloadError(`invalid incoming ${kind} payload`, { kind, issues }) }
  }
  return { ok: true, value: parsed.data as PayloadOf<K> }
}
