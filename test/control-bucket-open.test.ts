/**
 * A worker that starts before any server: its NATS user may read the membership and checkpoint
 * buckets but not create them (permissions.ts), so its first open is refused the stream create.
 * On a real nats-server 2.9 running the per-role config (the Kubernetes worker user: one nkey-less
 * user for every worker, no node id), the worker's open waits, logged once, until a server creates
 * the bucket, then works; with no server at all it gives up after its bounded wait, naming the
 * bucket. Each test runs its own nats-server (stopped by PID), so no bucket outlives a test.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { NatsConnection, Status } from '@nats-io/transport-node'
import type { ControlConnection, NatsRole, NatsUser } from '@phalanx/control'
import {
  connectControl,
  createCheckpointStore,
  createMembershipStore,
  isBucketNotCreated,
  renderNatsServerConfig,
  signJoinRecord,
} from '@phalanx/control'
import type { Logger } from 'pino'
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { NatsServerHandle } from './support/nats.js'
import { startNatsServer } from './support/nats.js'

const CLUSTER = 'wait'
const MEMBERS = `phalanx-${CLUSTER}-members`
const CHECKPOINTS = `phalanx-${CLUSTER}-checkpoints`
const users: (NatsUser & { user: string; password: string })[] = [
  { role: 'server', nodeId: 'server-0', user: 'server-0', password: 's0-secret' },
  // As in Kubernetes: the workers share one user, whatever their (random) pod names.
  { role: 'worker', user: 'workers', password: 'w-secret' },
]

/** A logger whose lines can be awaited and counted. */
function awaitableLog(): { log: Logger; count(text: string): number; next(text: string): Promise<void> } {
  const lines: { msg?: string }[] = []
  const waiting = new Set<{ text: string; resolve: () => void }>()
  const log = pino(
    { level: 'debug' },
    {
      write: (line: string) => {
        const parsed = JSON.parse(line) as { msg?: string }
        lines.push(parsed)
        for (const waiter of waiting) {
          if (String(parsed.msg).includes(waiter.text)) {
            waiting.delete(waiter)
            waiter.resolve()
          }
        }
      },
    },
  )
  return {
    log,
    count: (text) => lines.filter((line) => String(line.msg).includes(text)).length,
    next: (text) => new Promise((resolve) => void waiting.add({ text, resolve })),
  }
}

/** Resolves at the `count`-th permissions violation the server reports for `subject`. */
async function violations(nc: NatsConnection, subject: string, count: number): Promise<void> {
  let seen = 0
  for await (const status of nc.status() as AsyncIterable<Status>) {
    const error = status.type === 'error' ? (status.error as Error & { subject?: string }) : undefined
    if (error?.name === 'PermissionViolationError' && error.subject === subject && ++seen === count) return
  }
  throw new Error(`connection closed after ${seen} of ${count} violations on ${subject}`)
}

let server: NatsServerHandle
let dir = ''
const connections: ControlConnection[] = []

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phalanx-bucket-wait-'))
  const configFile = join(dir, 'nats.conf')
  await writeFile(configFile, renderNatsServerConfig({ cluster: CLUSTER, users }))
  server = await startNatsServer({ jetstream: true, extraArgs: ['-c', configFile] })
})

afterEach(async () => {
  for (const conn of connections.splice(0)) await conn.close()
  await server?.dispose()
  await rm(dir, { recursive: true, force: true })
})

function connectAs(role: NatsRole, log: Logger): ControlConnection {
  const user = users.find((u) => u.role === role)!
  const conn = connectControl({
    servers: server.url,
    cluster: CLUSTER,
    name: role,
    log,
    user: user.user,
    pass: user.password,
  })
  connections.push(conn)
  return conn
}

const waitingLine = 'bucket does not exist yet and this role may not create it'

describe('a worker opening a bucket before any server created it', () => {
  it('waits for the membership buckets (logged once), then reads, watches and joins', async () => {
    const workerLog = awaitableLog()
    const worker = connectAs('worker', workerLog.log)
    const nc = await worker.connected()
    // Two refused creates: the worker went on trying past the first.
    const refusedTwice = violations(nc, `$JS.API.STREAM.CREATE.KV_${MEMBERS}`, 2)
    const opening = createMembershipStore({ conn: worker })
    await refusedTwice

    const serverConn = connectAs('server', pino({ level: 'silent' }))
    await createMembershipStore({ conn: serverConn })
    const store = await opening
    expect(workerLog.count(waitingLine)).toBe(1)
    expect(workerLog.count('bucket created by another role: opened')).toBe(1)

    const watch = await store.watch(() => undefined)
    await watch.initialized
    watch.stop()
    const join = await signJoinRecord(async () => new Uint8Array(64), {
      cluster: CLUSTER,
      member: { peerId: 'peerWorkerA', nodeId: 'worker-abc', role: 'worker', multiaddrs: [] },
    })
    expect(await store.putRecord(join)).toBeGreaterThan(0)
    expect((await store.entries()).map((entry) => `${entry.bucket}:${entry.key}`)).toEqual([
      'joins:peerWorkerA',
    ])
  })

  it('waits for the checkpoint store, then lists what the server stored', async () => {
    const workerLog = awaitableLog()
    const worker = connectAs('worker', workerLog.log)
    const waiting = workerLog.next(waitingLine)
    const opening = createCheckpointStore({ conn: worker })
    await waiting

    const serverStore = await createCheckpointStore({ conn: connectAs('server', pino({ level: 'silent' })) })
    const stored = await serverStore.put({
      serverId: 'server-0',
      round: 10,
      configHash: 'cfg',
      model: Float32Array.from([1, 2, 3]),
    })
    const store = await opening
    expect((await store.list()).map((info) => info.objectName)).toEqual([stored.objectName])
    expect(workerLog.count(waitingLine)).toBe(1)
  })

  it('gives up after its bounded wait when no server ever creates the bucket, naming it', async () => {
    const workerLog = awaitableLog()
    const worker = connectAs('worker', workerLog.log)
    const failure = (await createCheckpointStore({ conn: worker, bucketWaitMs: 400 }).then(
      () => undefined,
      (error: unknown) => error,
    )) as Error & { bucket?: string; waitedMs?: number }
    expect(failure).toMatchObject({ name: 'BucketNotCreatedError', bucket: CHECKPOINTS })
    expect(failure.waitedMs).toBeGreaterThanOrEqual(400)
    // The client's RequestError, caused by the server's refusal of the create.
    const refusal = (failure.cause as Error).cause as Error & { subject?: string }
    expect(refusal).toMatchObject({
      name: 'PermissionViolationError',
      subject: `$JS.API.STREAM.CREATE.OBJ_${CHECKPOINTS}`,
    })
    expect(workerLog.count(waitingLine)).toBe(1)
  })
})

describe('isBucketNotCreated', () => {
  const violation = (subject: string) =>
    Object.assign(new Error(`Permissions Violation for Publish to "${subject}"`), {
      name: 'PermissionViolationError',
      subject,
    })
  it.each([
    ['a refused stream create', violation('$JS.API.STREAM.CREATE.KV_x'), true],
    [
      'the same, as a cause',
      new Error('request failed', { cause: violation('$JS.API.STREAM.CREATE.KV_x') }),
      true,
    ],
    ['a refused put (a real permission problem)', violation('$KV.x.peer'), false],
    ['a missing stream', Object.assign(new Error('stream not found'), { code: 10_059 }), true],
    ['a missing object store', new Error('object store not found'), true],
    ['a timeout', Object.assign(new Error('timeout'), { name: 'TimeoutError' }), false],
    ['not an error', 'stream not found', false],
  ])('%s → %s', (_, error, expected) => {
    expect(isBucketNotCreated(error)).toBe(expected)
  })
})
