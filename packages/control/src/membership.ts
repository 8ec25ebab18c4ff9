/**
 * Membership: the member set lives in JetStream KV buckets as signed control records (key = peer
 * id), so it survives restarts and every node sees the same ordered history. The store only moves
 * records; it trusts none of them: `createVerifiedMembers` (member-set.ts) checks each one against
 * the pinned operator key before a node applies it. Two buckets, so that NATS permissions can let
 * workers write their own `join` records (`phalanx-<cluster>-joins`) but never the operator's
 * admits and evictions (`phalanx-<cluster>-members`). Nodes must not change their quorums in the
 * middle of a round, so applied changes go through a `MembershipView` (or the node's own staging)
 * that holds them until the node moves to the next round.
 */

import type { KV, KvWatchEntry } from '@nats-io/kv'
import {
  DEFAULT_REPLICAS,
  type OpenBucketOptions,
  openCreatedBucket,
  warnIfFewerReplicas,
} from './bucket-open.js'
import type { ControlConnection } from './connection.js'
import { withRetries } from './connection.js'
import { InvalidMemberError, RoundRegressionError } from './errors.js'
import { natsJetStream, natsKv } from './nats-modules.js'
import {
  type ControlRecord,
  ControlRecordSchema,
  controlRecordTarget,
  encodeControlRecord,
  type OperatorKey,
  signControlRecord,
} from './operator.js'
import type { Member } from './subjects.js'
import { MemberSchema } from './subjects.js'

/** A change to the member set, ordered by the KV revision that recorded it. */
export type MemberChange =
  | { kind: 'admit'; member: Member; revision: number }
  | { kind: 'evict'; peerId: string; revision: number }

/** Which bucket an entry came from: the operator's (`members`) or the workers' own (`joins`). */
export type MembershipBucket = 'members' | 'joins'

/** One revision of one key, exactly as stored: nothing in it is trusted until verified. */
export interface MembershipEntry {
  bucket: MembershipBucket
  key: string
  revision: number
  /** `DEL`/`PURGE` are bare KV deletes: no signed record asks for one, so nodes ignore them. */
  operation: 'PUT' | 'DEL' | 'PURGE'
  value: Uint8Array
}

export interface MembersWatch {
  /** Resolves once the entries already in both buckets have been delivered (the initial snapshot). */
  readonly initialized: Promise<void>
  stop(): void
}

export interface MembershipStore {
  readonly bucket: string
  readonly joinsBucket: string
  /** Replicas of the members bucket's stream as JetStream reports them (an existing bucket keeps its own). */
  readonly replicas: number
  /**
   * Stores a signed record under its target's peer id: `admit` and `evict` (a tombstone, never a
   * bare delete) in the members bucket, `join` in the joins bucket. Resolves with the KV revision
   * once JetStream acknowledged it. Checks only the record's shape: the signature is the readers'
   * business, since whoever can write the bucket can write anything.
   */
  putRecord(record: ControlRecord): Promise<number>
  /** Every revision both buckets still hold, members bucket first, each in revision order. */
  entries(): Promise<MembershipEntry[]>
  /** Delivers every revision held (history included), then every later write, per bucket in order. */
  watch(onEntry: (entry: MembershipEntry) => void): Promise<MembersWatch>
  /** Deletes both buckets (tests, and teardown of a throw-away cluster). */
  destroy(): Promise<void>
}

export interface MembershipView {
  /** The round whose member set `current()` returns. */
  readonly round: number
  current(): readonly Member[]
  servers(): readonly Member[]
  workers(): readonly Member[]
  /** Records a change to apply at the next round boundary (duplicates and stale revisions are ignored). */
  stage(change: MemberChange): void
  pending(): readonly MemberChange[]
  /**
   * Moves to `round`: if it is a later round, staged changes are applied in revision order; the same
   * round again changes nothing. Returns the member set in force for `round`.
   */
  advanceTo(round: number): readonly Member[]
}

export interface MembershipViewInit {
  /** Members in force at `round` (the config's list, or the verified member set). */
  members: readonly Member[]
  round?: number
}

export interface MembershipStoreInit {
  conn: ControlConnection
  /** Replicas of both buckets when this call creates them (JetStream allows 1 to 5; default DEFAULT_REPLICAS). */
  replicas?: number
  /** How long to wait for buckets this NATS user may not create (a worker's); see bucket-open.ts. */
  bucketWaitMs?: OpenBucketOptions['waitMs']
}

const MEMBERSHIP_DEFAULTS = {
  // The single-server default (see DEFAULT_REPLICAS); a node passes its config's `natsReplicas`.
  replicas: DEFAULT_REPLICAS,
  /**
   * Revisions kept per key (64 is JetStream KV's maximum). A node starting reads them all, so an
   * older record written again over a newer one is refused as `replayed`, and a bare delete does
   * not hide the record before it, by fresh nodes as by running ones.
   */
  history: 64,
} as const

const bucketKinds: Record<MembershipBucket, readonly ControlRecord['action']['kind'][]> = {
  members: ['admit', 'evict'],
  joins: ['join'],
}

/** The bucket a record of this kind belongs in; undefined for kinds no bucket holds (chaos). */
export function bucketOf(kind: ControlRecord['action']['kind']): MembershipBucket | undefined {
  if (bucketKinds.members.includes(kind)) return 'members'
  if (bucketKinds.joins.includes(kind)) return 'joins'
  return undefined
}

/** The peer id a membership record acts on (its KV key). */
export function recordPeerId(record: ControlRecord): string {
  return controlRecordTarget(record.action).slice('member:'.length)
}

/** The operator's signed admit of `member`; throws `InvalidMemberError` (by name) for a malformed one. */
export function signAdmitRecord(key: OperatorKey, init: { cluster: string; member: Member }): ControlRecord {
  const parsed = MemberSchema.safeParse(init.member)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
    throw new InvalidMemberError(`cannot admit ${init.member.peerId}: ${issues.join('; ')}`, {
      peerId: init.member.peerId,
      issues,
    })
  }
  return signControlRecord(key, { cluster: init.cluster, action: { kind: 'admit', member: parsed.data } })
}

/** The operator's signed eviction (tombstone) of `peerId`; throws `InvalidMemberError` for a malformed id. */
export function signEvictRecord(key: OperatorKey, init: { cluster: string; peerId: string }): ControlRecord {
  const parsed = MemberSchema.shape.peerId.safeParse(init.peerId)
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `peerId: ${i.message}`)
    throw new InvalidMemberError(`cannot evict ${init.peerId}: ${issues.join('; ')}`, {
      peerId: init.peerId,
      issues,
    })
  }
  return signControlRecord(key, { cluster: init.cluster, action: { kind: 'evict', peerId: parsed.data } })
}

function toEntry(bucket: MembershipBucket, entry: KvWatchEntry): MembershipEntry {
  const operation = entry.operation === 'PUT' || entry.operation === 'DEL' ? entry.operation : 'PURGE'
  return { bucket, key: entry.key, revision: entry.revision, operation, value: entry.value }
}

export async function createMembershipStore(init: MembershipStoreInit): Promise<MembershipStore> {
  const { conn } = init
  const log = conn.log.child({ component: 'membership' })
  const names: Record<MembershipBucket, string> = {
    members: conn.subjects.membersBucket,
    joins: conn.subjects.joinsBucket,
  }
  const nc = await conn.connected()
  const [{ Kvm, KvWatchInclude }, { StorageType }] = await Promise.all([natsKv(), natsJetStream()])
  const kvm = new Kvm(nc)
  // Created by the first role allowed to (a server, the operator); a worker waits for that.
  const open = (name: string): Promise<KV> =>
    openCreatedBucket(
      conn,
      name,
      () =>
        kvm.create(name, {
          history: MEMBERSHIP_DEFAULTS.history,
          replicas: init.replicas ?? MEMBERSHIP_DEFAULTS.replicas,
          storage: StorageType.File,
        }),
      init.bucketWaitMs === undefined ? {} : { waitMs: init.bucketWaitMs },
    )
  const buckets: Record<MembershipBucket, KV> = {
    members: await open(names.members),
    joins: await open(names.joins),
  }
  const replicas = init.replicas ?? MEMBERSHIP_DEFAULTS.replicas
  const [membersStatus, joinsStatus] = await withRetries(conn, `status ${names.members}`, () =>
    Promise.all([buckets.members.status(), buckets.joins.status()]),
  )
  warnIfFewerReplicas(conn, names.members, replicas, membersStatus.replicas)
  warnIfFewerReplicas(conn, names.joins, replicas, joinsStatus.replicas)

  const invalid = (peerId: string, issues: string[]) =>
    new InvalidMemberError(`cannot store a membership record for ${peerId}: ${issues.join('; ')}`, {
      peerId,
      issues,
    })

  const readAll = async (bucket: MembershipBucket): Promise<MembershipEntry[]> =>
    withRetries(conn, `read ${names[bucket]}`, async () => {
      const result: MembershipEntry[] = []
      for await (const entry of await buckets[bucket].history({ key: '>' }))
        result.push(toEntry(bucket, entry))
      return result.sort((a, b) => a.revision - b.revision)
    })

  const watchOne = async (bucket: MembershipBucket, onEntry: (entry: MembershipEntry) => void) => {
    const kv = buckets[bucket]
    let markInitialized!: () => void
    const initialized = new Promise<void>((resolve) => {
      markInitialized = resolve
    })
    // With an empty bucket there is no initial entry to wait for.
    if ((await kv.status()).values === 0) markInitialized()
    const watcher = await kv.watch({ key: '>', include: KvWatchInclude.AllHistory })
    void (async () => {
      for await (const entry of watcher) {
        try {
          onEntry(toEntry(bucket, entry))
        } catch (error) {
          log.error({ err: error, bucket }, 'membership entry handler threw')
        }
        // delta = messages still pending in the consumer after this one: 0 means caught up.
        if (entry.delta === 0 || (entry.delta === undefined && watcher.getPending() === 0)) markInitialized()
      }
      markInitialized()
    })()
    return { initialized, stop: () => watcher.stop() }
  }

  return {
    bucket: names.members,
    joinsBucket: names.joins,
    replicas: membersStatus.replicas,
    async putRecord(record) {
      const parsed = ControlRecordSchema.safeParse(record)
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
        const action = (record as { action?: { member?: { peerId?: unknown }; peerId?: unknown } }).action
        throw invalid(String(action?.member?.peerId ?? action?.peerId ?? '?'), issues)
      }
      const bucket = bucketOf(parsed.data.action.kind)
      const peerId = bucket === undefined ? '?' : recordPeerId(parsed.data)
      if (bucket === undefined)
        throw invalid(peerId, [`a ${parsed.data.action.kind} record is not membership`])
      const value = encodeControlRecord(parsed.data)
      const revision = await withRetries(conn, `${parsed.data.action.kind} ${peerId}`, () =>
        buckets[bucket].put(peerId, value),
      )
      log.info(
        { peerId, kind: parsed.data.action.kind, seq: parsed.data.seq, revision },
        'membership record stored',
      )
      const action = parsed.data.action
      // An announcement for watchers that do not read the buckets; nodes never act on it.
      if (action.kind === 'admit') {
        conn.publish('membership', conn.subjects.membership, {
          kind: 'admit',
          member: action.member,
          revision,
        })
      } else if (action.kind === 'evict') {
        conn.publish('membership', conn.subjects.membership, { kind: 'evict', peerId, revision })
      }
      return revision
    },
    async entries() {
      return [...(await readAll('members')), ...(await readAll('joins'))]
    },
    async watch(onEntry) {
      const watches = [await watchOne('members', onEntry), await watchOne('joins', onEntry)]
      return {
        initialized: Promise.all(watches.map((w) => w.initialized)).then(() => undefined),
        stop: () => {
          for (const w of watches) w.stop()
        },
      }
    },
    async destroy() {
      const jsm = await kvm.js.jetstreamManager()
      for (const name of Object.values(names)) await jsm.streams.delete(`KV_${name}`)
    },
  }
}

export function createMembershipView(init: MembershipViewInit): MembershipView {
  let round = init.round ?? 0
  const byPeer = new Map<string, Member>(init.members.map((member) => [member.peerId, member]))
  const lastRevision = new Map<string, number>()
  let staged: MemberChange[] = []
  let snapshot = sortMembers(byPeer)

  const peerOf = (change: MemberChange): string =>
    change.kind === 'admit' ? change.member.peerId : change.peerId

  return {
    get round() {
      return round
    },
    current: () => snapshot,
    servers: () => snapshot.filter((member) => member.role === 'server'),
    workers: () => snapshot.filter((member) => member.role === 'worker'),
    stage(change) {
      if (staged.some((s) => s.revision === change.revision && peerOf(s) === peerOf(change))) return
      staged.push(change)
    },
    pending: () => [...staged],
    advanceTo(next) {
      if (next < round) {
        throw new RoundRegressionError(`membership view cannot go back from round ${round} to ${next}`, {
          round: next,
          currentRound: round,
        })
      }
      if (next === round) return snapshot
      const ordered = [...staged].sort((a, b) => a.revision - b.revision)
      staged = []
      for (const change of ordered) {
        const peerId = peerOf(change)
        // A watcher that restarts replays history: never let an older record undo a newer one.
        if (change.revision <= (lastRevision.get(peerId) ?? -1)) continue
        lastRevision.set(peerId, change.revision)
        if (change.kind === 'admit') byPeer.set(peerId, change.member)
        else byPeer.delete(peerId)
      }
      round = next
      snapshot = sortMembers(byPeer)
      return snapshot
    },
  }
}

function sortMembers(byPeer: ReadonlyMap<string, Member>): readonly Member[] {
  return Object.freeze(
    [...byPeer.values()].sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)),
  )
}
