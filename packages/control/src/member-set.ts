/**
 * A node's verified member set: the only place a role comes from. It starts from the members the
 * node's config lists (the operator wrote the config) and changes only through records read from
 * the membership buckets that passed `createControlRecordVerifier` (pinned operator key, cluster,
 * validity window, sequence) and then the membership rules below. Anything else in the buckets —
 * bare Member JSON, a stranger's signature, an expired or replayed record, a bare delete or purge —
 * is refused, logged once per kind and reason, and counted (`phalanx_control_rejected_total`).
 *
 * The rules, on top of the signature:
 * - at most `servers` (N) members have the role server: an admit of one more is refused
 *   (`not_allowed`); a replacement needs the eviction first;
 * - a member's role never changes in place (a config member's included): evict first;
 * - a worker's own `join` (joins bucket only, `workerAdmission: open`) makes a worker, never a
 *   server, and is refused for a peer the operator evicted until the operator admits it again.
 *
 * Operator records and joins are sequenced by two verifiers: a join's sequence number comes from
 * the worker's clock, so a worker able to sign a huge one must not outrank the operator's
 * eviction of it.
 */
import type { Logger } from 'pino'
import { ControlRecordRejectedError } from './errors.js'
import { bucketOf, type MemberChange, type MembershipEntry, recordPeerId } from './membership.js'
import {
  type ControlRecord,
  ControlRecordSchema,
  type ControlRejectReason,
  createControlRecordVerifier,
  type PeerSignatureVerifier,
} from './operator.js'
import type { Member, Role } from './subjects.js'

export interface VerifiedMembersInit {
  cluster: string
  /** N: the most member servers there may ever be. */
  servers: number
  /** The members the node's config lists: trusted as they are. */
  configured: readonly Member[]
  /** The pinned operator key; without one every admit and evict is refused (`no_operator_key`). */
  operatorPublicKey?: string | undefined
  /** `open`: a worker may register itself with a `join` signed by its own peer key. */
  workerAdmission?: 'open' | 'closed'
  /** Checks a join's peer signature (`verifyPeerSignature` of @phalanx/net). */
  verifyPeer?: PeerSignatureVerifier
  log?: Logger
  /** Counts each refusal (`phalanx_control_rejected_total{kind,reason}`). */
  onRejected?: (kind: string, reason: ControlRejectReason) => void
  now?: () => number
}

export type MemberVerdict =
  | { ok: true; change: MemberChange | undefined }
  | { ok: false; error: ControlRecordRejectedError }

export interface VerifiedMembers {
  /**
   * Checks one stored entry and, when it passes, applies it; resolves with the change to the
   * member set (undefined when it changes nothing, e.g. a repeat). Never throws. Entries are
   * processed one at a time in call order.
   */
  apply(entry: MembershipEntry): Promise<MemberVerdict>
  members(): readonly Member[]
  servers(): readonly Member[]
  roleOf(peerId: string): Role | undefined
  /** Refusals so far, by `kind/reason`. */
  rejected(): Readonly<Record<string, number>>
  /** Resolves once every entry passed to `apply` so far has been decided. */
  idle(): Promise<void>
}

const VERIFIED_MEMBERS_DEFAULTS = {
  /** Evicted peers remembered (to refuse their joins); bounded, the oldest eviction forgotten first. */
  maxEvicted: 4_096,
} as const

const textDecoder = new TextDecoder('utf-8', { fatal: true })

function parseRecord(bytes: Uint8Array): ControlRecord | undefined {
  if (bytes.byteLength > 64 * 1024) return undefined
  try {
    const parsed = ControlRecordSchema.safeParse(JSON.parse(textDecoder.decode(bytes)))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

export function createVerifiedMembers(init: VerifiedMembersInit): VerifiedMembers {
  const log = init.log?.child({ component: 'verified-members' })
  const byPeer = new Map<string, Member>(init.configured.map((member) => [member.peerId, member]))
  const evicted = new Set<string>()
  const counts: Record<string, number> = {}
  const count = (kind: string, reason: ControlRejectReason) => {
    const key = `${kind}/${reason}`
    counts[key] = (counts[key] ?? 0) + 1
    init.onRejected?.(kind, reason)
    return counts[key] === 1
  }
  const common = {
    cluster: init.cluster,
    ...(init.now === undefined ? {} : { now: init.now }),
    ...(init.log === undefined ? {} : { log: init.log }),
    onRejected: count,
  }
  const operatorRecords = createControlRecordVerifier({
    ...common,
    operatorPublicKey: init.operatorPublicKey,
  })
  const joinRecords = createControlRecordVerifier({
    ...common,
    workerAdmission: init.workerAdmission ?? 'closed',
    ...(init.verifyPeer === undefined ? {} : { verifyPeer: init.verifyPeer }),
  })

  /** A refusal of this module's own (the verifiers count and log theirs). */
  const refuse = (
    kind: string,
    reason: ControlRejectReason,
    message: string,
    fields: object,
  ): MemberVerdict => {
    if (count(kind, reason))
      log?.warn({ kind, reason, ...fields }, `membership entry refused: ${message} (logged once, counted)`)
    return { ok: false, error: new ControlRecordRejectedError(message, { code: reason, kind }) }
  }
  const serverCount = () => [...byPeer.values()].filter((member) => member.role === 'server').length

  const decide = async (entry: MembershipEntry): Promise<MemberVerdict> => {
    const where = { bucket: entry.bucket, key: entry.key, revision: entry.revision }
    if (entry.operation !== 'PUT') {
      // Nobody signs a bare delete: whoever could write the bucket could evict anyone with one.
      return refuse(
        entry.bucket === 'joins' ? 'join' : 'evict',
        'malformed',
        `bare KV ${entry.operation} ignored`,
        where,
      )
    }
    const record = parseRecord(entry.value)
    if (record === undefined) {
      return refuse('unknown', 'malformed', 'not a signed control record (bare member JSON?)', where)
    }
    const kind = record.action.kind
    if (bucketOf(kind) !== entry.bucket) {
      return refuse(
        kind,
        'not_allowed',
        `a ${kind} record does not belong in the ${entry.bucket} bucket`,
        where,
      )
    }
    const peerId = recordPeerId(record)
    if (peerId !== entry.key) {
      return refuse(kind, 'malformed', `record for ${peerId} stored under another key`, where)
    }
    const verdict = await (kind === 'join' ? joinRecords : operatorRecords).check(record)
    if (!verdict.ok) return verdict
    if (verdict.repeat) return { ok: true, change: undefined }
    const current = byPeer.get(peerId)
    const action = record.action
    const fields = { ...where, peerId, seq: record.seq }
    switch (action.kind) {
      case 'admit': {
        const { member } = action
        if (current !== undefined && current.role !== member.role) {
          return refuse(
            kind,
            'not_allowed',
            `${peerId} is a ${current.role}: evict it before a new role`,
            fields,
          )
        }
        if (member.role === 'server' && current === undefined && serverCount() >= init.servers) {
          return refuse(kind, 'not_allowed', `already ${init.servers} servers: evict one first`, fields)
        }
        byPeer.set(peerId, member)
        evicted.delete(peerId)
        return { ok: true, change: { kind: 'admit', member, revision: entry.revision } }
      }
      case 'evict': {
        evicted.delete(peerId)
        evicted.add(peerId)
        if (evicted.size > VERIFIED_MEMBERS_DEFAULTS.maxEvicted) {
          evicted.delete(evicted.values().next().value as string)
        }
        if (!byPeer.delete(peerId)) return { ok: true, change: undefined }
        return { ok: true, change: { kind: 'evict', peerId, revision: entry.revision } }
      }
      case 'join': {
        if (evicted.has(peerId)) {
          return refuse(
            kind,
            'not_allowed',
            `${peerId} was evicted: only the operator admits it again`,
            fields,
          )
        }
        if (current?.role === 'server') {
          return refuse(kind, 'not_allowed', `${peerId} is a server: a join never changes a role`, fields)
        }
        if (current !== undefined) return { ok: true, change: undefined }
        const member: Member = { ...action.member, role: 'worker' }
        byPeer.set(peerId, member)
        return { ok: true, change: { kind: 'admit', member, revision: entry.revision } }
      }
      default:
        return refuse(kind, 'not_allowed', `a ${kind} record is not membership`, fields)
    }
  }

  let queue: Promise<unknown> = Promise.resolve()
  return {
    apply(entry) {
      const next = queue.then(() => decide(entry))
      queue = next.catch(() => undefined)
      return next.catch((error: unknown) =>
        refuse('unknown', 'malformed', `entry could not be checked: ${String(error)}`, { key: entry.key }),
      )
    },
    members: () =>
      [...byPeer.values()].sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)),
    servers: () =>
      [...byPeer.values()]
        .filter((member) => member.role === 'server')
        .sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)),
    roleOf: (peerId) => byPeer.get(peerId)?.role,
    rejected: () => ({ ...counts }),
    idle: () => queue.then(() => undefined),
  }
}
