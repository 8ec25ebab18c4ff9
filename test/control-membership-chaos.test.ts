/**
 * Membership in a JetStream KV bucket and chaos commands over request/reply, against the shared
 * nats-server on 127.0.0.1:4222 (each test uses its own cluster name, hence its own bucket).
 */
import { randomUUID } from 'node:crypto'
import type { ChaosCommand, ControlConnection, Member, MemberChange, MembershipStore } from '@phalanx/control'
import {
  connectControl,
  createChaosListener,
  createMembershipStore,
  createMembershipView,
  sendChaosCommand,
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

describe('chaos commands', () => {
  const commands: ChaosCommand[] = [
    { kind: 'kill' },
    { kind: 'pause' },
    { kind: 'resume' },
    { kind: 'corrupt', attack: 'sign-flip', options: { scale: 4 } },
    { kind: 'partition', durationMs: 1500 },
    { kind: 'heal' },
  ]

  async function listen(conn: ControlConnection, enabled: boolean, nodeId = 'w3') {
    const executed: ChaosCommand[] = []
    let markExecuted!: () => void
    const firstExecution = new Promise<void>((resolve) => {
      markExecuted = resolve
    })
    const listener = createChaosListener({
      conn,
      nodeId,
      enabled,
      onCommand: (command) => {
        executed.push(command)
        markExecuted()
      },
    })
    cleanups.push(() => listener.stop())
    await listener.ready
    return { executed, firstExecution, listener }
  }

  it.each(commands)('$kind is executed and acknowledged when chaos is enabled', async (command) => {
    const { conn: node, cluster } = openConnection('w3')
    const { conn: operator } = openConnection('operator', cluster)
    const { executed, firstExecution } = await listen(node, true)
    await expect(sendChaosCommand({ conn: operator, nodeId: 'w3', command })).resolves.toEqual({
      nodeId: 'w3',
      kind: command.kind,
    })
    // `kill` is acknowledged before it runs (the process is not expected to answer afterwards).
    if (command.kind === 'kill') await firstExecution
    expect(executed).toEqual([command])
  })

  it.each(commands)('$kind is refused, logged and not executed when chaos is disabled', async (command) => {
    const { conn: node, cluster, captured } = openConnection('w3')
    const { conn: operator } = openConnection('operator', cluster)
    const { executed, listener } = await listen(node, false)
    const refusal = await sendChaosCommand({ conn: operator, nodeId: 'w3', command }).catch(
      (error: unknown) => error,
    )
    expect(refusal).toMatchObject({
      name: 'ChaosRefusedError',
      remoteName: 'ChaosDisabledError',
      nodeId: 'w3',
    })
    expect(executed).toEqual([])
    expect(listener.received()).toBe(1)
    expect(captured.matching('refuses chaos command', { command: command.kind })).toHaveLength(1)
  })

  it('reports a handler failure as a refusal naming the failure', async () => {
    const { conn: node, cluster } = openConnection('w4')
    const { conn: operator } = openConnection('operator', cluster)
    const listener = createChaosListener({
      conn: node,
      nodeId: 'w4',
      enabled: true,
      onCommand: () => {
        throw new Error('attack not available')
      },
    })
    cleanups.push(() => listener.stop())
    await listener.ready
    await expect(
      sendChaosCommand({
        conn: operator,
        nodeId: 'w4',
        command: { kind: 'corrupt', attack: 'nope', options: {} },
      }),
    ).rejects.toMatchObject({ name: 'ChaosRefusedError', remoteName: 'ChaosCommandFailedError' })
  })

  it('says so when no node listens under that id', async () => {
    const { conn: operator } = openConnection('operator')
    await expect(
      sendChaosCommand({ conn: operator, nodeId: 'ghost', command: { kind: 'kill' } }),
    ).rejects.toMatchObject({
      name: 'ChaosNoResponderError',
      nodeId: 'ghost',
    })
  })

  it('times out, by name, when the target never answers', async () => {
    const { conn: node, cluster } = openConnection('w5')
    const { conn: operator } = openConnection('operator', cluster)
    let release!: () => void
    const blocked = new Promise<void>((resolve) => {
      release = resolve
    })
    const listener = createChaosListener({
      conn: node,
      nodeId: 'w5',
      enabled: true,
      onCommand: () => blocked,
    })
    cleanups.push(
      () => listener.stop(),
      () => release(),
    )
    await listener.ready
    await expect(
      sendChaosCommand({ conn: operator, nodeId: 'w5', command: { kind: 'pause' }, timeoutMs: 300 }),
    ).rejects.toMatchObject({ name: 'ChaosTimeoutError', timeoutMs: 300 })
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
