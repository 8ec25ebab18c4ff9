/**
 * Smoke test of the 3-node JetStream cluster helper and of the replicated log the SMR baseline is
 * built on: an R3 stream on three routed nats-servers keeps accepting appends after its leader is
 * killed, and two followers see the same entries in the same order (large entries included).
 */
import { createHash, randomUUID } from 'node:crypto'
import { jetstreamManager } from '@nats-io/jetstream'
import type { LogEntry } from '@phalanx/control'
import {
  connectControl,
  createCheckpointStore,
  createMembershipStore,
  createReplicatedLog,
} from '@phalanx/control'
import { configFromEnv, resolveConfig } from '@phalanx/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import type { NatsClusterHandle } from './support/nats.js'
import { SHARED_NATS_URL, startNatsCluster, waitForJetStream } from './support/nats.js'

let cluster: NatsClusterHandle
beforeAll(async () => {
  cluster = await startNatsCluster({ size: 3 })
  await waitForJetStream(cluster.urls)
})
afterAll(async () => {
  await cluster?.dispose()
})

/** Coordinate-wise median of three vectors (the real one lives in @phalanx/aggregation). */
const median3 = (models: readonly Float32Array[]) =>
  Float32Array.from(models[0]!, (_, i) => models.map((m) => m[i]!).sort((a, b) => a - b)[1]!)

const digest = (data: Uint8Array) => createHash('sha256').update(data).digest('hex').slice(0, 16)

/** Entry i: small ones, and every third one 2.5 MB (over NATS' 1 MiB payload, so chunked). */
function entry(i: number): Uint8Array {
  const size = i % 3 === 0 ? 2_500_000 : 1_000 + i
  return Uint8Array.from({ length: size }, (_, j) => (i * 31 + j) & 0xff)
}

function collector() {
  const entries: LogEntry[] = []
  const waiters: { count: number; resolve: () => void }[] = []
  return {
    entries,
    onEntry(e: LogEntry) {
      entries.push(e)
      for (const w of waiters) if (entries.length >= w.count) w.resolve()
    },
    /** Resolves at the count-th entry; rejects (naming what arrived) rather than hang the suite. */
    until(count: number, deadlineMs = 60_000) {
      if (entries.length >= count) return Promise.resolve()
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`only ${entries.map((e) => e.seq).join(',')} after ${deadlineMs} ms`)),
          deadlineMs,
        )
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(timer)
            resolve()
          },
        })
      })
    },
  }
}

describe('3-node JetStream cluster', () => {
  it("natsReplicas 3 (the manifests' PHALANX_NATS_REPLICAS) creates the members, joins and checkpoint buckets as R3", async () => {
    const { natsReplicas } = resolveConfig(configFromEnv({ PHALANX_NATS_REPLICAS: '3' }))
    const { log } = captureLogger('info')
    const conn = connectControl({ servers: [...cluster.urls], cluster: 'r3', name: 'server-0', log })
    try {
      const members = await createMembershipStore({ conn, replicas: natsReplicas })
      const checkpoints = await createCheckpointStore({ conn, replicas: natsReplicas })
      expect([members.replicas, checkpoints.replicas]).toEqual([3, 3])
      // What JetStream itself says of the streams behind them, not what the stores remember.
      const jsm = await jetstreamManager(await conn.connected())
      for (const bucket of [members.bucket, members.joinsBucket]) {
        expect((await jsm.streams.info(`KV_${bucket}`)).config.num_replicas, bucket).toBe(3)
      }
      expect((await jsm.streams.info(`OBJ_${checkpoints.bucket}`)).config.num_replicas).toBe(3)
      await members.destroy()
      await checkpoints.destroy()
    } finally {
      await conn.close()
    }
  })

  it('R3 checkpoints stay agreed with one NATS server killed (then restarted for the next test)', async () => {
    const { log } = captureLogger('info')
    const conn = connectControl({
      servers: [...cluster.urls],
      cluster: 'ckpt3',
      name: 'server-0',
      log,
      reconnectTimeWaitMs: 200,
      reconnectJitterMs: 100,
    })
    try {
      const store = await createCheckpointStore({ conn, replicas: 3 })
      const models = [Float32Array.of(1, 5), Float32Array.of(2, 4), Float32Array.of(3, 6)]
      for (const [i, model] of models.entries()) {
        await store.put({ serverId: `s${i}`, round: 3, configHash: 'h', model })
      }
      const victim = cluster.servers[0]!
      await victim.kill('SIGKILL')
      try {
        const { agreed } = await store.agreedCheckpoint({
          serverQuorum: 3,
          configHash: 'h',
          median: median3,
          servers: ['s0', 's1', 's2'],
        })
        expect(agreed?.round).toBe(3)
        expect(Array.from(agreed!.model)).toEqual([2, 5])
      } finally {
        await victim.start()
        await waitForJetStream(cluster.urls)
      }
      await store.destroy()
    } finally {
      await conn.close()
    }
  })

  it('an R3 replicated log survives its leader being killed, and followers agree on the order', async () => {
    const { log } = captureLogger('info')
    const conn = connectControl({
      servers: [...cluster.urls],
      cluster: 'smr',
      name: 'replica-0',
      log,
      reconnectTimeWaitMs: 200,
      reconnectJitterMs: 100,
    })
    try {
      const replicated = await createReplicatedLog({ conn, name: 'gradients', replicas: 3 })
      expect(await replicated.info()).toMatchObject({ replicas: 3, messages: 0 })
      const first = collector()
      const followerA = await replicated.follow({ onEntry: (e) => first.onEntry(e) })

      const appended: number[] = []
      for (const i of [1, 2, 3]) appended.push((await replicated.append(entry(i), { worker: `w${i}` })).seq)

      const { leader } = await replicated.info()
      const leaderServer = cluster.servers.find((server) => server.name === leader)
      expect(leaderServer).toBeDefined()
      await leaderServer!.kill('SIGKILL')

      for (const i of [4, 5, 6]) appended.push((await replicated.append(entry(i), { worker: `w${i}` })).seq)
      expect(appended).toEqual([...appended].sort((a, b) => a - b))
      const after = await replicated.info()
      expect(after.leader).not.toBe(leader)

      await first.until(6)
      const second = collector()
      const followerB = await replicated.follow({ onEntry: (e) => second.onEntry(e) })
      await second.until(6)
      const order = (entries: LogEntry[]) => entries.map((e) => `${e.seq}:${e.meta.worker}:${digest(e.data)}`)
      const expected = [1, 2, 3, 4, 5, 6].map((i, k) => `${appended[k]}:w${i}:${digest(entry(i))}`)
      expect(order(first.entries)).toEqual(expected)
      expect(order(second.entries)).toEqual(expected)
      await followerA.stop()
      await followerB.stop()
      await replicated.destroy()
    } finally {
      await conn.close()
    }
  })
})

describe('replicas on a single server', () => {
  it('a bucket that exists with fewer replicas than asked is opened as it is, and the node says so', async () => {
    const { log, matching } = captureLogger('info')
    const cluster = `rw${randomUUID().slice(0, 8)}`
    const conn = connectControl({ servers: SHARED_NATS_URL, cluster, name: 'server-0', log })
    try {
      const first = await createMembershipStore({ conn })
      expect(first.replicas).toBe(1)
      const again = await createMembershipStore({ conn, replicas: 3 })
      expect(again.replicas).toBe(1)
      expect(matching('fewer replicas than asked', { bucket: again.bucket })).toHaveLength(1)
      expect(matching('fewer replicas than asked', { bucket: again.joinsBucket })).toHaveLength(1)
      await first.destroy()
    } finally {
      await conn.close()
    }
  })
})

describe('replicated log on a single server (R1)', () => {
  it('interleaved writers: every follower sees whole entries in one order; a follower starting mid-entry skips it', async () => {
    const { log } = captureLogger('info')
    const name = `l${randomUUID().slice(0, 8)}`
    const writerA = connectControl({ servers: SHARED_NATS_URL, cluster: 'smr1', name: 'a', log })
    const writerB = connectControl({ servers: SHARED_NATS_URL, cluster: 'smr1', name: 'b', log })
    try {
      const logA = await createReplicatedLog({ conn: writerA, name, replicas: 1, chunkBytes: 1000 })
      const logB = await createReplicatedLog({ conn: writerB, name, replicas: 1, chunkBytes: 1000 })
      const payload = (writer: number, i: number) =>
        Uint8Array.from({ length: 3500 }, (_, j) => (writer * 7 + i + j) & 0xff)
      const results = await Promise.all(
        [0, 1].map(async (writer) => {
          const seqs: number[] = []
          for (let i = 0; i < 4; i += 1) {
            seqs.push(
              (await (writer === 0 ? logA : logB).append(payload(writer, i), { id: `${writer}-${i}` })).seq,
            )
          }
          return seqs
        }),
      )
      const first = collector()
      const second = collector()
      const followers = [
        await logA.follow({ onEntry: (e) => first.onEntry(e) }),
        await logB.follow({ onEntry: (e) => second.onEntry(e) }),
      ]
      await Promise.all([first.until(8), second.until(8)])
      const order = (entries: LogEntry[]) => entries.map((e) => `${e.seq}:${e.meta.id}:${digest(e.data)}`)
      expect(order(first.entries)).toEqual(order(second.entries))
      expect(first.entries.map((e) => e.seq)).toEqual(results.flat().sort((a, b) => a - b))
      for (const e of first.entries) {
        const [writer, i] = e.meta.id!.split('-').map(Number)
        expect(digest(e.data)).toBe(digest(payload(writer!, i!)))
      }
      // The fresh stream's seq 1 is the first chunk of some entry: a follower starting at seq 2 skips
      // that entry (it cannot be whole) and sees every other one, in the same order.
      const late = collector()
      const lateFollower = await logA.follow({ fromSeq: 2, onEntry: (e) => late.onEntry(e) })
      await late.until(7)
      const lateSeqs = late.entries.map((e) => e.seq)
      expect(first.entries.map((e) => e.seq).filter((seq) => lateSeqs.includes(seq))).toEqual(lateSeqs)
      expect(lateSeqs).toHaveLength(7)
      for (const follower of [...followers, lateFollower]) await follower.stop()
      await logA.destroy()
    } finally {
      await writerA.close()
      await writerB.close()
    }
  })
})
