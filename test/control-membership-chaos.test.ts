/**
 * Membership in a JetStream KV bucket, against the shared nats-server on 127.0.0.1:4222 (each test
 * uses its own cluster name, hence its own bucket). Chaos commands: control-chaos.test.ts.
 */
import { randomUUID } from 'node:crypto'
import type { Member, MemberChange, MembershipStore } from '@phalanx/control'
import {
  connectControl,
  createMembershipStore,
  createMembershipView,
} from '@phalanx/control'
import { afterEach, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import type { NatsServerHandle } from './support/nats.js'
import { SHARED_NATS_URL, startNatsServer } from './support/nats.js'

const SHARED_NATS = SHARED_NATS_URL

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function openConnection(name: string, cluster = `t${randomUUID().slice(0, 8)}`) {
  const captured = captureLogger()
  const conn = connectControl({ servers: SHARED_NATS, cluster, name, log: captured.log })
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

describe('membership KV bucket', () => {
  let store: MembershipStore | undefined
  afterEach(async () => {
    await store?.destroy()
    store = undefined
  })

  it('an admit and an evict are seen by a watcher on another connection, in revision order', async () => {
    const { conn: admin, cluster } = openConnection('admin')
    const { conn: node } = openConnection('s0', cluster)
    store = await createMembershipStore({ conn: admin })
    expect(store.bucket).toBe(`phalanx-${cluster}-members`)
    await store.admit(member('s0', 'server'))
    await store.admit(member('s1', 'server'))

    const nodeStore = await createMembershipStore({ conn: node })
    const recorder = changeRecorder()
    const watch = await nodeStore.watchMembers(recorder.onChange)
    cleanups.push(() => watch.stop())
    await watch.initialized
    expect(recorder.changes.map((c) => c.kind === 'admit' && c.member.peerId)).toEqual(['s0', 's1'])

    const view = createMembershipView({ members: [], round: 0 })
    for (const change of recorder.changes) view.stage(change)
    expect(view.advanceTo(1).map((m) => m.peerId)).toEqual(['s0', 's1'])

    await store.admit(member('w9', 'worker'))
    await store.evict('s1')
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
    expect((await nodeStore.members()).map((m) => m.peerId)).toEqual(['s0', 'w9'])
  })

  it('refuses to admit a malformed member, by name', async () => {
    const { conn } = openConnection('admin')
    store = await createMembershipStore({ conn })
    await expect(store.admit({ ...member('bad.peer', 'server') })).rejects.toMatchObject({
      name: 'InvalidMemberError',
      peerId: 'bad.peer',
    })
    expect(await store.members()).toEqual([])
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
    await adminStore.admit(member('s0', 'server'))
    const recorder = changeRecorder()
    const watch = await (await createMembershipStore({ conn: node })).watchMembers(recorder.onChange)
    cleanups.push(() => watch.stop())
    await watch.initialized
    expect(recorder.changes).toHaveLength(1)

    await server.kill('SIGKILL')
    await server.start()
    // Called while the admin connection may still be reconnecting: admit waits and retries.
    await adminStore.admit(member('w1', 'worker'))
    await recorder.until(2)
    expect(recorder.changes.map((c) => (c.kind === 'admit' ? c.member.peerId : c.peerId))).toContain('w1')
    expect((await adminStore.members()).map((m) => m.peerId)).toEqual(['s0', 'w1'])
  })
})
