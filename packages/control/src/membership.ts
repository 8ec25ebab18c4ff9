/**
 * Membership: the member set lives in a JetStream KV bucket (key = peer id), so it survives restarts
 * and every node sees the same ordered history (KV revisions). Nodes must not change their quorums
 * in the middle of a round, so changes go through a `MembershipView` that stages them and applies
 * them only when the node moves to the next round.
 */

import { StorageType } from '@nats-io/jetstream'
import type { KV, KvWatchEntry } from '@nats-io/kv'
import { Kvm } from '@nats-io/kv'
import type { ControlConnection } from './connection.js'
import { withRetries } from './connection.js'
import { InvalidMemberError, RoundRegressionError } from './errors.js'
import type { Member } from './subjects.js'
import { encode, MemberSchema } from './subjects.js'

/** A change to the member set, ordered by the KV revision that recorded it. */
export type MemberChange =
  | { kind: 'admit'; member: Member; revision: number }
  | { kind: 'evict'; peerId: string; revision: number }

export interface MembersWatch {
  /** Resolves once the changes already in the bucket have been delivered (the initial snapshot). */
  readonly initialized: Promise<void>
  stop(): void
}

export interface MembershipStore {
  readonly bucket: string
  /** Adds or replaces a member; resolves with the KV revision once JetStream acknowledged it. */
  admit(member: Member): Promise<number>
  /** Removes a member (a no-op if absent); resolves once acknowledged. */
  evict(peerId: string): Promise<void>
  members(): Promise<Member[]>
  /** Delivers the current members as admits, then every later change, in revision order. */
  watchMembers(onChange: (change: MemberChange) => void): Promise<MembersWatch>
  /** Deletes the bucket (tests, and `phalanx` teardown of a throw-away cluster). */
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
  /** Members in force at `round` (the config's list in local mode, `store.members()` otherwise). */
  members: readonly Member[]
  round?: number
}

export interface MembershipStoreInit {
  conn: ControlConnection
  replicas?: number
}

const MEMBERSHIP_DEFAULTS = {
  // One replica suits the single-server default; a 3-node NATS cluster should pass 3.
  replicas: 1,
} as const

export async function createMembershipStore(init: MembershipStoreInit): Promise<MembershipStore> {
  const { conn } = init
  const log = conn.log.child({ component: 'membership' })
  const bucket = conn.subjects.membersBucket
  const nc = await conn.connected()
  const kvm = new Kvm(nc)
  const kv: KV = await withRetries(conn, `open ${bucket}`, () =>
    kvm.create(bucket, {
      // One value per peer is the state; older revisions are not needed to rebuild it.
      history: 1,
      replicas: init.replicas ?? MEMBERSHIP_DEFAULTS.replicas,
      storage: StorageType.File,
    }),
  )

  const decodeEntry = (
    entry: KvWatchEntry | { key: string; value: Uint8Array; revision: number; operation: string },
  ) => {
    if (entry.operation !== 'PUT') {
      return { kind: 'evict', peerId: entry.key, revision: entry.revision } satisfies MemberChange
    }
    const member = conn.decode('member', entry.value)
    if (member === undefined) return undefined
    if (member.peerId !== entry.key) {
      log.warn({ key: entry.key, peerId: member.peerId }, 'member record under a different key ignored')
      return undefined
    }
    return { kind: 'admit', member, revision: entry.revision } satisfies MemberChange
  }

  return {
    bucket,
    async admit(member) {
      const parsed = MemberSchema.safeParse(member)
      if (!parsed.success) {
        const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
        throw new InvalidMemberError(`cannot admit ${member.peerId}: ${issues.join('; ')}`, {
          peerId: member.peerId,
          issues,
        })
      }
      const value = encode('member', parsed.data)
      const revision = await withRetries(conn, `admit ${member.peerId}`, () =>
        kv.put(parsed.data.peerId, value),
      )
      log.info(
        { peerId: member.peerId, nodeId: member.nodeId, role: member.role, revision },
        'member admitted',
      )
      conn.publish('membership', conn.subjects.membership, { kind: 'admit', member: parsed.data, revision })
      return revision
    },
    async evict(peerId) {
      const entry = await withRetries(conn, `evict ${peerId}`, async () => {
        await kv.delete(peerId)
        return kv.get(peerId)
      })
      const revision = entry?.revision ?? 0
      log.info({ peerId, revision }, 'member evicted')
      conn.publish('membership', conn.subjects.membership, { kind: 'evict', peerId, revision })
    },
    members: () =>
      withRetries(conn, 'list members', async () => {
        const result: Member[] = []
        const keys: string[] = []
        for await (const key of await kv.keys()) keys.push(key)
        for (const key of keys.sort()) {
          const entry = await kv.get(key)
          if (entry === null || entry.operation !== 'PUT') continue
          const change = decodeEntry(entry)
          if (change?.kind === 'admit') result.push(change.member)
        }
        return result
      }),
    async watchMembers(onChange) {
      let markInitialized!: () => void
      const initialized = new Promise<void>((resolve) => {
        markInitialized = resolve
      })
      const status = await kv.status()
      // With an empty bucket there is no initial entry to wait for.
      if (status.values === 0) markInitialized()
      const watcher = await kv.watch({ key: '>' })
      void (async () => {
        for await (const entry of watcher) {
          const change = decodeEntry(entry)
          if (change !== undefined) {
            try {
              onChange(change)
            } catch (error) {
              log.error({ err: error }, 'membership change handler threw')
            }
          }
          // delta = messages still pending in the consumer after this one: 0 means caught up.
          if (entry.delta === 0 || (entry.delta === undefined && watcher.getPending() === 0))
            markInitialized()
        }
        markInitialized()
      })()
      return {
        initialized,
        stop: () => watcher.stop(),
      }
    },
    async destroy() {
      await kvm.js.jetstreamManager().then((jsm) => jsm.streams.delete(`KV_${bucket}`))
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
