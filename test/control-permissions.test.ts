/**
 * The per-role NATS permissions of permissions.ts on a real nats-server 2.9 that this test starts
 * with the rendered config (stopped by PID): each role can do its job through the real control
 * plane code (telemetry, membership KV read/watch, a worker's join, checkpoint put and read), and
 * a worker's credentials get a permissions violation on every write it has no right to.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kvm } from '@nats-io/kv'
import type { NatsConnection, Status } from '@nats-io/transport-node'
import type { ControlConnection, NatsRole, NatsUser, TelemetryEvent } from '@phalanx/control'
import {
  connectControl,
  createChaosListener,
  createCheckpointStore,
  createMembershipStore,
  createTelemetry,
  generateOperatorKey,
  renderNatsServerConfig,
  sendChaosCommand,
  signControlRecord,
  signJoinRecord,
  watchTelemetry,
} from '@phalanx/control'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import type { NatsServerHandle } from './support/nats.js'
import { startNatsServer } from './support/nats.js'

const CLUSTER = 'perm'
const MEMBERS = `phalanx-${CLUSTER}-members`
const JOINS = `phalanx-${CLUSTER}-joins`
const CHECKPOINTS = `phalanx-${CLUSTER}-checkpoints`
const WORKER_PEER = 'peerWorker0'
const users: (NatsUser & { user: string; password: string })[] = [
  { role: 'operator', user: 'operator', password: 'op-secret' },
  { role: 'server', nodeId: 'server-0', user: 'server-0', password: 's0-secret' },
  { role: 'worker', nodeId: 'worker-0', peerId: WORKER_PEER, user: 'worker-0', password: 'w0-secret' },
  { role: 'observer', user: 'observer', password: 'obs-secret' },
]

let server: NatsServerHandle
let dir = ''
const connections: ControlConnection[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phalanx-perm-'))
  const configFile = join(dir, 'nats.conf')
  await writeFile(configFile, renderNatsServerConfig({ cluster: CLUSTER, users }))
  server = await startNatsServer({
    jetstream: true,
    // Adding '-V' (trace) to these shows every API subject the clients use: how the minimal set
    // in permissions.ts was found.
    extraArgs: ['-c', configFile],
  })
})

afterAll(async () => {
  for (const conn of connections.splice(0)) await conn.close()
  await server?.dispose()
  await rm(dir, { recursive: true, force: true })
})

function connectAs(role: NatsRole, nodeId?: string): ControlConnection {
  const user = users.find((u) => u.role === role && u.nodeId === nodeId)!
  const conn = connectControl({
    servers: server.url,
    cluster: CLUSTER,
    name: `${role}-${nodeId ?? 'any'}`,
    log: captureLogger().log,
    user: user.user,
    pass: user.password,
  })
  connections.push(conn)
  return conn
}

/** The permissions violation the server reports for `subject`, awaited as a status event. */
function violation(nc: NatsConnection, subject: string): Promise<{ operation: string; subject: string }> {
  return (async () => {
    for await (const status of nc.status() as AsyncIterable<Status>) {
      if (status.type !== 'error') continue
      const error = status.error as Error & { operation?: string; subject?: string }
      if (error.name === 'PermissionViolationError' && error.subject === subject) {
        return { operation: error.operation ?? '', subject }
      }
    }
    throw new Error('connection closed before the violation')
  })()
}

describe('per-role NATS permissions', () => {
  it('let each role do its job: admits, checkpoints, a join, watches, telemetry, chaos', async () => {
    const operatorKey = generateOperatorKey()
    const operator = connectAs('operator')
    const operatorStore = await createMembershipStore({ conn: operator })
    await operatorStore.putRecord(
      signControlRecord(operatorKey, {
        cluster: CLUSTER,
        action: {
          kind: 'admit',
          member: { peerId: 'peerServer0', nodeId: 'server-0', role: 'server', multiaddrs: [] },
        },
      }),
    )

    // The server: opens the membership buckets, stores a checkpoint (creating the object store).
    const serverConn = connectAs('server', 'server-0')
    const serverMembers = await createMembershipStore({ conn: serverConn })
    expect((await serverMembers.entries()).map((e) => e.key)).toEqual(['peerServer0'])
    const checkpoints = await createCheckpointStore({ conn: serverConn })
    const stored = await checkpoints.put({
      serverId: 'server-0',
      round: 3,
      configHash: 'cfg',
      model: Float32Array.from({ length: 200_000 }, (_, i) => i),
    })

    // The worker: reads and watches the member set, writes its own join, reads checkpoints.
    const workerConn = connectAs('worker', 'worker-0')
    const workerMembers = await createMembershipStore({ conn: workerConn })
    const seen: string[] = []
    const watch = await workerMembers.watch((entry) => seen.push(`${entry.bucket}:${entry.key}`))
    await watch.initialized
    const join = await signJoinRecord(async () => new Uint8Array(64), {
      cluster: CLUSTER,
      member: { peerId: WORKER_PEER, nodeId: 'worker-0', role: 'worker', multiaddrs: [] },
    })
    await workerMembers.putRecord(join)
    const workerCheckpoints = await createCheckpointStore({ conn: workerConn })
    expect((await workerCheckpoints.list()).map((c) => c.objectName)).toEqual([stored.objectName])
    // 800 kB: several chunks, so the ordered consumer's flow control is exercised.
    expect((await workerCheckpoints.read(stored.objectName))?.byteLength).toBe(800_000)
    watch.stop()
    expect(seen).toContain('members:peerServer0')

    // Telemetry: the worker publishes its own, the observer sees it.
    const observer = connectAs('observer')
    let resolveEvent!: (event: TelemetryEvent) => void
    const received = new Promise<TelemetryEvent>((resolve) => {
      resolveEvent = resolve
    })
    const telemetryWatch = await watchTelemetry({ conn: observer, onEvent: (event) => resolveEvent(event) })
    await workerConn.connected()
    createTelemetry({ conn: workerConn, nodeId: 'worker-0', role: 'worker' }).publish({ round: 1 })
    expect(await received).toMatchObject({ nodeId: 'worker-0', round: 1 })
    telemetryWatch.stop()

    // Chaos: the operator's request reaches the worker, whose answer goes back (allow_responses).
    const executed: string[] = []
    const listener = createChaosListener({
      conn: workerConn,
      nodeId: 'worker-0',
      enabled: true,
      operatorPublicKey: operatorKey.publicKey,
      onCommand: (command) => void executed.push(command.kind),
    })
    await listener.ready
    await expect(
      sendChaosCommand({ conn: operator, nodeId: 'worker-0', command: { kind: 'pause' }, operatorKey }),
    ).resolves.toEqual({ nodeId: 'worker-0', kind: 'pause' })
    expect(executed).toEqual(['pause'])
    listener.stop()
  })

  // Each write a role has no right to, tried with that role's credentials over a raw connection.
  const refusals: { role: NatsRole; nodeId?: string; what: string; subject: string }[] = [
    { role: 'worker', nodeId: 'worker-0', what: 'members bucket put', subject: `$KV.${MEMBERS}.peerSybil` },
    { role: 'worker', nodeId: 'worker-0', what: "another worker's join", subject: `$KV.${JOINS}.peerOther` },
    {
      role: 'worker',
      nodeId: 'worker-0',
      what: 'chaos command',
      subject: `phalanx.${CLUSTER}.chaos.server-0`,
    },
    {
      role: 'worker',
      nodeId: 'worker-0',
      what: "another node's telemetry",
      subject: `phalanx.${CLUSTER}.telemetry.server-0`,
    },
    { role: 'worker', nodeId: 'worker-0', what: 'checkpoint chunk', subject: `$O.${CHECKPOINTS}.C.forged` },
    {
      role: 'worker',
      nodeId: 'worker-0',
      what: 'checkpoint metadata',
      subject: `$O.${CHECKPOINTS}.M.Zm9yZ2Vk`,
    },
    {
      role: 'worker',
      nodeId: 'worker-0',
      what: 'stream delete',
      subject: `$JS.API.STREAM.DELETE.KV_${MEMBERS}`,
    },
    {
      role: 'worker',
      nodeId: 'worker-0',
      what: 'stream purge',
      subject: `$JS.API.STREAM.PURGE.OBJ_${CHECKPOINTS}`,
    },
    {
      role: 'worker',
      nodeId: 'worker-0',
      what: 'checkpoint announcement',
      subject: `phalanx.${CLUSTER}.checkpoints`,
    },
    { role: 'server', nodeId: 'server-0', what: 'members bucket put', subject: `$KV.${MEMBERS}.peerSybil` },
    {
      role: 'server',
      nodeId: 'server-0',
      what: 'chaos command',
      subject: `phalanx.${CLUSTER}.chaos.server-1`,
    },
    { role: 'observer', what: 'any publish', subject: `phalanx.${CLUSTER}.telemetry.worker-0` },
  ]
  it.each(refusals)('refuse a $role: $what', async ({ role, nodeId, subject }) => {
    const conn = connectAs(role, nodeId)
    const nc = await conn.connected()
    const refused = violation(nc, subject)
    nc.publish(subject, new Uint8Array([1]))
    expect(await refused).toEqual({ operation: 'publish', subject })
  })

  it("refuse a worker the KV client's put into the members bucket", async () => {
    const nc = await connectAs('worker', 'worker-0').connected()
    const kv = await new Kvm(nc).open(MEMBERS)
    const refused = violation(nc, `$KV.${MEMBERS}.peerSybil`)
    await expect(kv.put('peerSybil', new Uint8Array([1]))).rejects.toThrow()
    await refused
  })
})
