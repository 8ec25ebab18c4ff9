/**
 * Checkpoints in a JetStream object store on a nats-server this test owns: every acknowledged put
 * survives a SIGKILL of the server, and after the restart the agreed checkpoint is the median of
 * N−F servers' verified models — a Byzantine server's forgeries are never what is resumed from —
 * and only servers of the node's verified member set count: Sybil "servers" written into the
 * members bucket by an outsider, signing a far-future round, are never agreed on.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Kvm } from '@nats-io/kv'
import { Objm } from '@nats-io/obj'
import { connect } from '@nats-io/transport-node'
import type { CheckpointInfo } from '@phalanx/control'
import {
  checkpointObjectName,
  connectControl,
  createCheckpointStore,
  createMembershipStore,
  encodeControlRecord,
  encodeModel,
  generateOperatorKey,
  sha256Hex,
  signAdmitRecord,
} from '@phalanx/control'
import { loadOrCreatePeerKey } from '@phalanx/net'
import { attachControlPlane, clusterConfigSchema, configHash, createNodeCheckpoints } from '@phalanx/node'
import { afterEach, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import type { NatsServerHandle } from './support/nats.js'
import { startNatsServer } from './support/nats.js'

function coordinateMedian(models: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(models[0]!.length)
  for (let i = 0; i < out.length; i += 1) {
    const column = models.map((m) => m[i]!).sort((a, b) => a - b)
    const mid = column.length >> 1
    out[i] = column.length % 2 === 1 ? column[mid]! : (column[mid - 1]! + column[mid]!) / 2
  }
  return out
}

/** A model large enough (1.2 MB) to need several object-store chunks and exceed NATS' 1 MiB payload. */
const DIMENSION = 300_000
const honestModel = (seed: number) =>
  Float32Array.from({ length: DIMENSION }, (_, i) => Math.sin(i + seed * 1e-3))

let server: NatsServerHandle | undefined
const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await server?.dispose()
  server = undefined
})

describe('checkpoints in the JetStream object store', () => {
  it('survive a SIGKILL and restart of the server, and the agreed one is the median of N−F verified models', async () => {
    server = await startNatsServer({ jetstream: true })
    const cluster = 'ckpt'
    const configHash = 'cfg-7f3a'
    const { log } = captureLogger()
    const conn = connectControl({ servers: server.url, cluster, name: 'writer', log })
    cleanups.push(() => conn.close())
    const store = await createCheckpointStore({ conn })
    expect(store.bucket).toBe('phalanx-ckpt-checkpoints')

    // N = 4 servers, F = 1: a round needs N−F = 3 servers' word.
    const honest = ['s0', 's1', 's2']
    for (const round of [4, 5]) {
      for (const [i, serverId] of honest.entries()) {
        await store.put({ serverId, round, configHash, model: honestModel(round * 10 + i) })
      }
    }
    // The Byzantine s3 stores a validly-digested but wildly wrong model for round 5 …
    const byzantine = honestModel(0).map((v) => v * 1000 + 50)
    await store.put({ serverId: 's3', round: 5, configHash, model: byzantine })
    // … and for round 6 (newer than any honest checkpoint) its own model plus forgeries under honest
    // names whose bytes do not match the digest they claim, and one under a different config.
    await store.put({ serverId: 's3', round: 6, configHash, model: byzantine })
    const nc = await conn.connected()
    const raw = await new Objm(nc).open(store.bucket)
    for (const serverId of ['s0', 's1']) {
      const claimed = encodeModel(honestModel(99))
      await raw.putBlob(
        {
          name: checkpointObjectName(serverId, 6),
          metadata: {
            serverId,
            round: '6',
            configHash,
            sha256: sha256Hex(claimed),
            dimension: String(DIMENSION),
          },
        },
        encodeModel(byzantine),
      )
    }
    await store.put({ serverId: 's2', round: 6, configHash: 'cfg-other', model: honestModel(1) })
    await conn.close()

    // Every put above resolved, i.e. was acknowledged: none may be lost by a hard kill.
    await server.kill('SIGKILL')
    await server.start()

    const reconnected = connectControl({ servers: server.url, cluster, name: 'restarted', log })
    cleanups.push(() => reconnected.close())
    const restartedStore = await createCheckpointStore({ conn: reconnected })
    const listed: CheckpointInfo[] = await restartedStore.list()
    expect(listed.map((c) => `${c.serverId}@${c.round}`).sort()).toEqual(
      ['s0@4', 's0@5', 's0@6', 's1@4', 's1@5', 's1@6', 's2@4', 's2@5', 's2@6', 's3@5', 's3@6'].sort(),
    )

    const { agreed, excluded } = await restartedStore.agreedCheckpoint({
      serverQuorum: 3,
      configHash,
      median: coordinateMedian,
      servers: ['s0', 's1', 's2', 's3'],
    })
    expect(agreed).toBeDefined()
    expect(agreed!.round).toBe(5)
    expect(agreed!.serverIds).toEqual(['s0', 's1', 's2', 's3'])
    expect(excluded.map((e) => [e.serverId, e.round, e.reason]).sort()).toEqual([
      ['s0', 6, 'digest'],
      ['s1', 6, 'digest'],
      ['s2', 6, 'config-hash'],
    ])
    // Never the Byzantine model, and within the honest models' range at every coordinate.
    const honestRound5 = honest.map((_, i) => honestModel(50 + i))
    let outside = 0
    for (let j = 0; j < DIMENSION; j += 1) {
      const values = honestRound5.map((m) => m[j]!)
      const v = agreed!.model[j]!
      if (v < Math.min(...values) - 1e-6 || v > Math.max(...values) + 1e-6) outside += 1
    }
    expect(outside).toBe(0)
    expect(agreed!.model[0]).not.toBeCloseTo(byzantine[0]!, 1)
  })

  it('finds nothing on a fresh bucket, and rejects a quorum below one by name', async () => {
    server = await startNatsServer({ jetstream: true })
    const { log } = captureLogger()
    const conn = connectControl({ servers: server.url, cluster: 'fresh', name: 'n', log })
    cleanups.push(() => conn.close())
    const store = await createCheckpointStore({ conn })
    const median = coordinateMedian
    const servers = ['s0', 's1', 's2', 's3']
    await expect(
      store.agreedCheckpoint({ serverQuorum: 3, configHash: 'c', median, servers }),
    ).resolves.toEqual({
      agreed: undefined,
      excluded: [],
    })
    await expect(
      store.agreedCheckpoint({ serverQuorum: 0, configHash: 'c', median, servers }),
    ).rejects.toMatchObject({
      name: 'CheckpointQuorumError',
    })
    await expect(
      store.put({ serverId: 's0', round: 1, configHash: 'c', model: Float32Array.of(1, Number.NaN) }),
    ).rejects.toMatchObject({ name: 'InvalidCheckpointError', reason: 'non-finite value in the model' })
  })

  it('is readable by a plain client: the object holds the little-endian float32 bytes', async () => {
    server = await startNatsServer({ jetstream: true })
    const { log } = captureLogger()
    const conn = connectControl({ servers: server.url, cluster: 'plain', name: 'n', log })
    cleanups.push(() => conn.close())
    const store = await createCheckpointStore({ conn })
    const plain = await connect({ servers: server.url })
    cleanups.push(() => plain.close())
    const announcement = new Promise<unknown>((resolve) => {
      plain.subscribe('phalanx.plain.checkpoints', { max: 1, callback: (_, msg) => resolve(msg.json()) })
    })
    await plain.flush()
    const model = Float32Array.of(1.5, -2, 3.25)
    const info = await store.put({ serverId: 's0', round: 2, configHash: 'c', model })
    expect(await announcement).toEqual({
      serverId: 's0',
      round: 2,
      configHash: 'c',
      sha256: info.sha256,
      dimension: 3,
      objectName: info.objectName,
    })
    const bytes = await (await new Objm(plain).open(store.bucket)).getBlob(info.objectName)
    expect(bytes).not.toBeNull()
    const view = new DataView(bytes!.buffer, bytes!.byteOffset, bytes!.byteLength)
    expect(bytes!.byteLength).toBe(12)
    expect([0, 1, 2].map((i) => view.getFloat32(i * 4, true))).toEqual([1.5, -2, 3.25])
    expect(info.sha256).toBe(sha256Hex(bytes!))
  })
  it('prune keeps only the newest rounds', async () => {
    server = await startNatsServer({ jetstream: true })
    const { log } = captureLogger()
    const conn = connectControl({ servers: server.url, cluster: 'prune', name: 'n', log })
    cleanups.push(() => conn.close())
    const store = await createCheckpointStore({ conn })
    for (const round of [1, 2, 3]) {
      for (const serverId of ['s0', 's1']) {
        await store.put({ serverId, round, configHash: 'c', model: Float32Array.of(round) })
      }
    }
    expect(await store.prune(2)).toBe(2)
    expect((await store.list()).map((c) => `${c.serverId}@${c.round}`)).toEqual([
      's0@3',
      's1@3',
      's0@2',
      's1@2',
    ])
  })
})

describe('checkpoint agreement among the verified member servers', () => {
  it('three Sybil "servers" outside the member set, signing a far-future round, are never agreed on', async () => {
    server = await startNatsServer({ jetstream: true })
    const work = mkdtempSync(join(tmpdir(), 'phalanx-sybil-ckpt-'))
    cleanups.push(async () => rmSync(work, { recursive: true, force: true }))
    const peers = new Map<string, Awaited<ReturnType<typeof loadOrCreatePeerKey>>['key']>()
    const honestIds = ['server-0', 'server-1', 'server-2', 'server-3']
    const sybilIds = ['sybil-0', 'sybil-1', 'sybil-2']
    for (const id of [...honestIds, ...sybilIds])
      peers.set(id, (await loadOrCreatePeerKey(join(work, id))).key)
    const peerIdOf = (id: string) => peerIdFromPrivateKey(peers.get(id)!).toString()
    const operator = generateOperatorKey()
    const cluster = 'sybil'
    // No member list in the config (the Kubernetes default): the operator admits the servers.
    const config = clusterConfigSchema.parse({
      cluster,
      servers: 4,
      byzantineServers: 1,
      natsUrl: server.url,
      operatorPublicKey: operator.publicKey,
    })
    const { log } = captureLogger()
    const admin = connectControl({ servers: server.url, cluster, name: 'operator', log })
    cleanups.push(() => admin.close())
    const members = await createMembershipStore({ conn: admin })
    for (const [i, id] of honestIds.entries()) {
      const member = { peerId: peerIdOf(id), nodeId: `server-${i}`, role: 'server' as const, multiaddrs: [] }
      await members.putRecord(signAdmitRecord(operator, { cluster, member }))
    }
    // The attacker writes its Sybils into the members bucket, as bare Member JSON and with a key of its own …
    const outsider = connectControl({ servers: server.url, cluster, name: 'outsider', log })
    cleanups.push(() => outsider.close())
    const kv = await new Kvm(await outsider.connected()).open(members.bucket)
    const stranger = generateOperatorKey()
    for (const [i, id] of sybilIds.entries()) {
      const member = {
        peerId: peerIdOf(id),
        nodeId: `server-${10 + i}`,
        role: 'server' as const,
        multiaddrs: [],
      }
      await kv.put(
        member.peerId,
        i === 0
          ? new TextEncoder().encode(JSON.stringify(member))
          : encodeControlRecord(signAdmitRecord(stranger, { cluster, member })),
      )
    }
    // … and each Sybil signs, with its own peer key, a checkpoint of a far-future round under the
    // config hash (computable from the ConfigMap). Three honest servers checkpoint round 10.
    const checkpoints = await createCheckpointStore({ conn: admin })
    const hash = configHash(config)
    const sign = (id: string) => (statement: Uint8Array) =>
      peers.get(id)!.sign(statement) as Promise<Uint8Array>
    for (const [i, id] of honestIds.slice(1).entries()) {
      await checkpoints.put({
        serverId: peerIdOf(id),
        round: 10,
        configHash: hash,
        model: Float32Array.of(1, 2, i),
        sign: sign(id),
      })
    }
    for (const id of sybilIds) {
      await checkpoints.put({
        serverId: peerIdOf(id),
        round: 1_000_000,
        configHash: hash,
        model: Float32Array.of(-9, -9, -9),
        sign: sign(id),
      })
    }

    // What a starting server-0 does: its control plane verifies the members bucket, and its
    // checkpoint lookup counts only the verified member servers.
    const plane = await attachControlPlane({
      config,
      log,
      nodeId: 'server-0',
      role: 'server',
      onChaos: () => {},
    })
    cleanups.push(() => plane.close())
    const node = createNodeCheckpoints({
      config,
      conn: plane.connection!,
      log,
      peerId: peerIdOf('server-0'),
      sign: sign('server-0'),
      memberServers: () => plane.memberServers(),
      dimension: 3,
    })
    expect([...(await plane.memberServers())].sort()).toEqual(honestIds.map(peerIdOf).sort())
    const agreed = await node.agreed()
    expect(agreed?.round).toBe(10)
    expect(agreed?.serverIds).toEqual(honestIds.slice(1).map(peerIdOf).sort())
    expect(Array.from(agreed!.model)).toEqual([1, 2, 1])
  })
})
