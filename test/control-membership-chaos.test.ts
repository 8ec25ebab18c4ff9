/**
 * Membership in JetStream KV buckets, against the shared nats-server on 127.0.0.1:4222 (each test
 * uses its own cluster name, hence its own buckets): the operator's signed records go through,
 * and whatever else a client with write access leaves in the buckets — bare Member JSON, a
 * stranger's signature, an expired or replayed record, a bare delete or purge — is refused by a
 * node's verified member set, running or freshly started, and counted by reason.
 * Chaos commands: control-chaos.test.ts.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Kvm } from '@nats-io/kv'
import { connect } from '@nats-io/transport-node'
import type { ControlConnection, Member, MemberChange, MembershipStore, OperatorKey } from '@phalanx/control'
import {
  connectControl,
  createMembershipStore,
  createMembershipView,
  createVerifiedMembers,
  encodeControlRecord,
  generateOperatorKey,
  signAdmitRecord,
  signControlRecord,
  signEvictRecord,
} from '@phalanx/control'
import { createMembership, loadOrCreatePeerKey, type Membership } from '@phalanx/net'
import { attachControlPlane, clusterConfigSchema } from '@phalanx/node'
import { Registry } from 'prom-client'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import type { NatsServerHandle } from './support/nats.js'
import { freePorts, SHARED_NATS_URL, startNatsServer } from './support/nats.js'

const SHARED_NATS = SHARED_NATS_URL

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

let operator: OperatorKey
let stranger: OperatorKey
beforeAll(() => {
  operator = generateOperatorKey()
  stranger = generateOperatorKey()
})

function openConnection(name: string, cluster = `t${randomUUID().slice(0, 8)}`, servers = SHARED_NATS) {
  const captured = captureLogger()
  const conn = connectControl({ servers, cluster, name, log: captured.log })
  cleanups.push(() => conn.close())
  return { conn, captured, cluster }
}

const member = (peerId: string, role: Member['role'], nodeId = peerId): Member => ({
  peerId,
  nodeId,
  role,
  multiaddrs: [`/ip4/127.0.0.1/tcp/${4000 + peerId.length}`],
})

/** Collects changes and lets the test await the n-th one. */
function changeRecorder() {
  const changes: MemberChange[] = []
  const waiters: { count: number; resolve: () => void }[] = []
  return {
    changes,
    onChange(change: MemberChange) {
      changes.push(change)
      for (const waiter of waiters) if (changes.length >= waiter.count) waiter.resolve()
    },
    until(count: number) {
      return changes.length >= count
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ count, resolve }))
    },
  }
}

/** What a node does (control-plane.ts): watch both buckets, apply only what its verified set accepts. */
async function follow(conn: ControlConnection, configured: readonly Member[] = []) {
  const recorder = changeRecorder()
  const rejected: Record<string, number> = {}
  const refusals = changeRecorder()
  const verified = createVerifiedMembers({
    cluster: conn.subjects.cluster,
    servers: 4,
    configured,
    operatorPublicKey: operator.publicKey,
    onRejected: (kind, reason) => {
      rejected[`${kind}/${reason}`] = (rejected[`${kind}/${reason}`] ?? 0) + 1
      refusals.onChange({ kind: 'evict', peerId: kind, revision: 0 })
    },
  })
  const store = await createMembershipStore({ conn })
  const watch = await store.watch((entry) => {
    void verified.apply(entry).then((verdict) => {
      if (verdict.ok && verdict.change !== undefined) recorder.onChange(verdict.change)
    })
  })
  cleanups.push(() => watch.stop())
  await watch.initialized
  await verified.idle()
  /** Resolves once `count` refusals have been counted. */
  const rejectedUntil = (count: number) => refusals.until(count)
  return { recorder, rejected, rejectedUntil, verified, store }
}

describe('membership KV bucket', () => {
  let store: MembershipStore | undefined
  afterEach(async () => {
    await store?.destroy()
    store = undefined
  })

  it('signed admits and an evict tombstone are seen by a watcher on another connection, in revision order', async () => {
    const { conn: admin, cluster } = openConnection('admin')
    const { conn: node } = openConnection('s0', cluster)
    store = await createMembershipStore({ conn: admin })
    expect(store.bucket).toBe(`phalanx-${cluster}-members`)
    expect(store.joinsBucket).toBe(`phalanx-${cluster}-joins`)
    await store.putRecord(signAdmitRecord(operator, { cluster, member: member('s0', 'server') }))
    await store.putRecord(signAdmitRecord(operator, { cluster, member: member('s1', 'server') }))

    const { recorder, rejected, verified } = await follow(node)
    expect(recorder.changes.map((c) => c.kind === 'admit' && c.member.peerId)).toEqual(['s0', 's1'])

    const view = createMembershipView({ members: [], round: 0 })
    for (const change of recorder.changes) view.stage(change)
    expect(view.advanceTo(1).map((m) => m.peerId)).toEqual(['s0', 's1'])

    await store.putRecord(signAdmitRecord(operator, { cluster, member: member('w9', 'worker') }))
    await store.putRecord(signEvictRecord(operator, { cluster, peerId: 's1' }))
    await recorder.until(4)
    const [admitW9, evictS1] = recorder.changes.slice(2)
    expect(admitW9).toMatchObject({ kind: 'admit', member: { peerId: 'w9', role: 'worker' } })
    expect(evictS1).toMatchObject({ kind: 'evict', peerId: 's1' })
    expect(evictS1!.revision).toBeGreaterThan(admitW9!.revision)

    // Mid-round the view still shows round 1's members; the next round boundary applies both changes.
    view.stage(admitW9!)
    view.stage(evictS1!)
    expect(view.advanceTo(1).map((m) => m.peerId)).toEqual(['s0', 's1'])
    expect(view.advanceTo(2).map((m) => m.peerId)).toEqual(['s0', 'w9'])
    expect(verified.members().map((m) => m.peerId)).toEqual(['s0', 'w9'])
    expect(rejected).toEqual({})
    // The eviction is a signed tombstone, not a KV delete.
    const entries = await store.entries()
    expect(entries.every((entry) => entry.operation === 'PUT')).toBe(true)
    expect(entries.filter((entry) => entry.key === 's1')).toHaveLength(2)
  })

  it('refuses to sign or store a malformed member, by name', async () => {
    const { conn, cluster } = openConnection('admin')
    store = await createMembershipStore({ conn })
    expect(() => signAdmitRecord(operator, { cluster, member: member('bad.peer', 'server') })).toThrow(
      expect.objectContaining({ name: 'InvalidMemberError', peerId: 'bad.peer' }),
    )
    await expect(store.putRecord(member('s0', 'server') as never)).rejects.toMatchObject({
      name: 'InvalidMemberError',
      peerId: '?',
    })
    expect(await store.entries()).toEqual([])
  })

  it('applies nothing an outsider writes into the buckets, on a running node and on a fresh one, and counts each by reason', async () => {
    const { conn: admin, cluster } = openConnection('admin')
    const { conn: running } = openConnection('s0', cluster)
    store = await createMembershipStore({ conn: admin })
    const legit = signAdmitRecord(operator, { cluster, member: member('s1', 'server') })
    await store.putRecord(legit)
    const first = await follow(running)
    expect(first.verified.members().map((m) => m.peerId)).toEqual(['s1'])

    // An anonymous client of the same NATS account, with nothing but the bucket names.
    const outsider = await connect({ servers: SHARED_NATS, name: 'outsider' })
    cleanups.push(() => outsider.close())
    const kvm = new Kvm(outsider)
    const members = await kvm.open(store.bucket)
    const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
    await members.put('sybil1', json(member('sybil1', 'server')))
    await members.put(
      'sybil2',
      encodeControlRecord(signAdmitRecord(stranger, { cluster, member: member('sybil2', 'server') })),
    )
    await members.put(
      'sybil3',
      encodeControlRecord(
        signControlRecord(operator, {
          cluster,
          action: { kind: 'admit', member: member('sybil3', 'server') },
          issuedAtMs: Date.now() - 10_000,
          lifetimeMs: 1_000,
        }),
      ),
    )
    // The operator evicts s1; the outsider writes the older admit again over the tombstone …
    await store.putRecord(signEvictRecord(operator, { cluster, peerId: 's1' }))
    await members.put('s1', encodeControlRecord(legit))
    // … and deletes and purges what it cannot forge.
    await store.putRecord(signAdmitRecord(operator, { cluster, member: member('s2', 'server') }))
    await members.delete('s2')
    await store.putRecord(signAdmitRecord(operator, { cluster, member: member('s3', 'server') }))
    await members.purge('s3')
    await outsider.flush()

    const expected = {
      'unknown/malformed': 1,
      'admit/bad_signature': 1,
      'admit/expired': 1,
      'admit/replayed': 1,
      'evict/malformed': 2,
    }
    // The running node saw it all happen …
    await first.recorder.until(4) // admit s1, evict s1, admit s2, admit s3
    await first.rejectedUntil(6)
    expect(first.rejected).toEqual(expected)
    expect(first.verified.members().map((m) => m.peerId)).toEqual(['s2', 's3'])
    // … and a node starting now reads every revision the bucket kept: the same refusals, except
    // that the purge took s3's admit with it (only NATS permissions stop a writer destroying one).
    const { conn: fresh } = openConnection('s9', cluster)
    const second = await follow(fresh)
    expect(second.rejected).toEqual(expected)
    expect(second.verified.members().map((m) => m.peerId)).toEqual(['s2'])
  })
})

describe('workers registering themselves (workerAdmission)', () => {
  /** Resolves once `predicate` holds over `membership` (checked now and on each of its changes). */
  const membershipUntil = (membership: Membership, predicate: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!predicate()) return
        off()
        resolve()
      }
      const off = membership.onChange(check)
      check()
    })

  it('open: a worker’s join signed by its peer key makes it a worker on the servers, until the operator evicts it; closed: refused and counted', async () => {
    const cluster = `t${randomUUID().slice(0, 8)}`
    const work = mkdtempSync(join(tmpdir(), 'phalanx-join-'))
    cleanups.push(() => rmSync(work, { recursive: true, force: true }))
    const keys = new Map<string, Awaited<ReturnType<typeof loadOrCreatePeerKey>>['key']>()
    for (const id of ['server-0', 'worker-x']) keys.set(id, (await loadOrCreatePeerKey(join(work, id))).key)
    const peerIdOf = (id: string) => peerIdFromPrivateKey(keys.get(id)!).toString()
    const [openPort, closedPort] = (await freePorts(2)) as [number, number]
    const { log } = captureLogger()
    const configOf = (workerAdmission: 'open' | 'closed', opsPort = 0) =>
      clusterConfigSchema.parse({
        cluster,
        servers: 1,
        byzantineServers: 0,
        natsUrl: SHARED_NATS,
        operatorPublicKey: operator.publicKey,
        members: [`server-0:${peerIdOf('server-0')}`],
        workerAdmission,
        opsPort,
        opsHost: '127.0.0.1',
      })
    const registries = new Map<number, Registry>()
    const plane = async (nodeId: string, workerAdmission: 'open' | 'closed', opsPort = 0) => {
      const registry = new Registry()
      registries.set(opsPort, registry)
      const membership = createMembership({ members: [[peerIdOf('server-0'), 'server']], closed: true })
      const key = keys.get(nodeId === 'worker-x' ? 'worker-x' : 'server-0')!
      const control = await attachControlPlane({
        config: configOf(workerAdmission, opsPort),
        log,
        nodeId,
        role: nodeId.startsWith('server-') ? 'server' : 'worker',
        onChaos: () => {},
        membership,
        registry,
        self: {
          peerId: peerIdFromPrivateKey(key).toString(),
          multiaddrs: [],
          sign: (statement) => key.sign(statement) as Promise<Uint8Array>,
        },
      })
      cleanups.push(() => control.close())
      return { control, membership }
    }
    /** `phalanx_control_rejected_total` of the node whose ops port is `port`, by `kind/reason`. */
    const rejectedOn = async (port: number) => {
      const metric = registries.get(port)!.getSingleMetric('phalanx_control_rejected_total')
      const counts: Record<string, number> = {}
      for (const { labels, value } of (await metric?.get())?.values ?? []) {
        counts[`${labels.kind}/${labels.reason}`] = value
      }
      return counts
    }
    /** The counter is state, not an event: read it until it shows `key`, for at most 20 s. */
    const rejectedUntil = async (port: number, key: string) => {
      const deadline = Date.now() + 20_000
      while (!((await rejectedOn(port))[key]! >= 1) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      return rejectedOn(port)
    }

    const openServer = await plane('server-0', 'open', openPort)
    const closedServer = await plane('server-0', 'closed', closedPort)
    const worker = peerIdOf('worker-x')
    await plane('worker-x', 'open')
    // The server with admission open applies the join (before its first round: at once) …
    await membershipUntil(openServer.membership, () => openServer.membership.roleOf(worker) === 'worker')
    // … the one with admission closed refuses it and counts it.
    const { conn: reader } = openConnection('reader', cluster)
    const store = await createMembershipStore({ conn: reader })
    cleanups.push(() => store.destroy())
    expect((await store.entries()).map((e) => [e.bucket, e.key])).toEqual([['joins', worker]])
    expect(await rejectedUntil(closedPort, 'join/not_allowed')).toEqual({ 'join/not_allowed': 1 })
    expect(closedServer.membership.roleOf(worker)).toBeUndefined()

    // The operator evicts it; its next join (a restart) is refused until the operator admits it.
    await store.putRecord(signEvictRecord(operator, { cluster, peerId: worker }))
    await membershipUntil(openServer.membership, () => !openServer.membership.has(worker))
    await plane('worker-x', 'open')
    expect(await rejectedUntil(openPort, 'join/not_allowed')).toEqual({ 'join/not_allowed': 1 })
    expect(openServer.membership.has(worker)).toBe(false)
    const member = { peerId: worker, nodeId: 'worker-x', role: 'worker' as const, multiaddrs: [] }
    await store.putRecord(signAdmitRecord(operator, { cluster, member }))
    await membershipUntil(openServer.membership, () => openServer.membership.roleOf(worker) === 'worker')
  })
})

describe('membership across a NATS restart', () => {
  let server: NatsServerHandle | undefined
  afterEach(async () => {
    await server?.dispose()
  })

  it('a watcher keeps receiving changes after the server is killed and restarted', async () => {
    server = await startNatsServer({ jetstream: true })
    const { log } = captureLogger()
    const opts = {
      servers: server.url,
      cluster: 'restart',
      log,
      reconnectTimeWaitMs: 100,
      reconnectJitterMs: 50,
    }
    const admin = connectControl({ ...opts, name: 'admin' })
    const node = connectControl({ ...opts, name: 'node' })
    cleanups.push(
      () => admin.close(),
      () => node.close(),
    )
    const adminStore = await createMembershipStore({ conn: admin })
    await adminStore.putRecord(
      signAdmitRecord(operator, { cluster: 'restart', member: member('s0', 'server') }),
    )
    const { recorder, verified } = await follow(node)
    expect(recorder.changes).toHaveLength(1)

    await server.kill('SIGKILL')
    await server.start()
    // Called while the admin connection may still be reconnecting: putRecord waits and retries.
    await adminStore.putRecord(
      signAdmitRecord(operator, { cluster: 'restart', member: member('w1', 'worker') }),
    )
    await recorder.until(2)
    expect(recorder.changes.map((c) => (c.kind === 'admit' ? c.member.peerId : c.peerId))).toContain('w1')
    expect(verified.members().map((m) => m.peerId)).toEqual(['s0', 'w1'])
  })
})
