/**
 * A whole cluster of real `phalanx server|worker` processes (4 servers of which server-0 is
 * Byzantine, 2 workers, libp2p on loopback) checkpoints into the object store of a nats-server this
 * test owns. Every process and then nats-server itself are SIGKILLed; after everything is started
 * again with the same config, every node resumes from the newest round N−F servers signed a
 * checkpoint for — not from the far newer round the Byzantine server stored under every server's
 * name, nor from its forged model — and training goes on from there. Needs the built CLI
 * (`npx tsc -b`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type CheckpointInfo,
  type CheckpointStore,
  type ControlConnection,
  checkpointStatement,
  connectControl,
  createCheckpointStore,
  decodeModel,
  encodeModel,
  sha256Hex,
} from '@phalanx/control'
import { verifyPeerSignature } from '@phalanx/net'
import { modelMedian } from '@phalanx/node'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type NatsServerHandle, startNatsServer, waitForJetStream } from './support/nats.js'
import { forkNode, logEntries, logUntil } from './support/node-cluster.js'
import { type NodeHandle, peerIdsOf } from './support/node-process.js'

const CLUSTER = 'ckpt-resume'
const servers = ['server-0', 'server-1', 'server-2', 'server-3']
const honestServers = servers.slice(1)
const BYZANTINE = 'server-0'
const workers = ['worker-0', 'worker-1']
/** N − F with N = 4, F = 1. */
const SERVER_QUORUM = 3
const CHECKPOINT_EVERY = 5
/** Checkpoints the first life must have acknowledged before the kill (rounds 5 and 10). */
const CHECKPOINTS_BEFORE_KILL = 2
/** `forgedCheckpointLead` in roles.ts: the Byzantine server claims round r + this. */
const FORGED_LEAD = 1_000_000

type RoundReport = Extract<NodeHandle['reports'][number], { type: 'round' }>
type StartedReport = Extract<NodeHandle['reports'][number], { type: 'started' }>

describe('a cluster restarted as a whole resumes from the agreed checkpoint', () => {
  let work: string
  let nats: NatsServerHandle
  let observer: ControlConnection | undefined
  let env: Record<string, string>
  let peerIds: Map<string, string>
  const alive: NodeHandle[] = []

  /** Servers one by one (each bootstraps from those before it), then the workers. */
  const startCluster = async (): Promise<Map<string, NodeHandle>> => {
    const started = new Map<string, NodeHandle>()
    const addresses: string[] = []
    for (const nodeId of servers) {
      const node = forkNode({ work, nodeId, env: { ...env, PHALANX_BOOTSTRAP: addresses.join(',') } })
      alive.push(node)
      started.set(nodeId, node)
      addresses.push(...(await node.listening))
    }
    for (const nodeId of workers) {
      const node = forkNode({ work, nodeId, env: { ...env, PHALANX_BOOTSTRAP: addresses.join(',') } })
      alive.push(node)
      started.set(nodeId, node)
    }
    await Promise.all([...started.values()].map((node) => node.listening))
    return started
  }

  const killAll = async (): Promise<void> => {
    await Promise.all(alive.splice(0).map((node) => node.kill()))
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'phalanx-ckpt-resume-'))
    nats = await startNatsServer()
    peerIds = await peerIdsOf(work, [...servers, ...workers])
    env = {
      PHALANX_CLUSTER: CLUSTER,
      PHALANX_SERVERS: String(servers.length),
      PHALANX_BYZANTINE_SERVERS: '1',
      // server-0 publishes its model reversed and stores forged checkpoints.
      PHALANX_SERVER_ATTACK: 'reversed',
      PHALANX_WORKERS: String(workers.length),
      PHALANX_BYZANTINE_WORKERS: '0',
      PHALANX_CHECKPOINT_EVERY: String(CHECKPOINT_EVERY),
      PHALANX_MEMBERS: [...peerIds].map(([nodeId, peerId]) => `${nodeId}:${peerId}`).join(','),
      PHALANX_NATS_URL: nats.url,
    }
  }, 60_000)

  afterAll(async () => {
    await killAll()
    await observer?.close()
    await nats?.dispose()
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  it('finds every acknowledged checkpoint after SIGKILLs, resumes at the newest agreed round, and trains on', async () => {
    // --- first life: train until every honest server has acknowledged two checkpoints ---
    await startCluster()
    const minimumRound = CHECKPOINT_EVERY * CHECKPOINTS_BEFORE_KILL
    await Promise.all(
      honestServers.map((nodeId) =>
        logUntil(work, nodeId, 'checkpoint stored', (entries) =>
          entries.some((entry) => Number(entry.round) >= minimumRound),
        ),
      ),
    )
    // … and the Byzantine one has stored a forged future round under all four names.
    await logUntil(work, BYZANTINE, 'checkpoint stored', (entries) => {
      const names = new Map<number, Set<string>>()
      for (const { round, serverId } of entries) {
        if (Number(round) < FORGED_LEAD) continue
        names.set(Number(round), (names.get(Number(round)) ?? new Set()).add(String(serverId)))
      }
      return [...names.values()].some((ids) => ids.size === servers.length)
    })
    await killAll()
    // `checkpoint stored` is logged once JetStream acknowledged every chunk and the metadata.
    const acknowledged = servers.flatMap((nodeId) =>
      logEntries(work, nodeId)
        .filter((entry) => entry.msg === 'checkpoint stored')
        .map((entry) => ({
          serverId: String(entry.serverId),
          round: Number(entry.round),
          configHash: String(entry.configHash),
        })),
    )
    const configHashes = new Set(acknowledged.map((entry) => entry.configHash))
    expect(configHashes.size).toBe(1)
    const [configHash] = configHashes

    // --- nats-server dies too, and comes back on the same port and store dir ---
    await nats.kill('SIGKILL')
    await nats.start()
    await waitForJetStream([nats.url])
    observer = connectControl({
      servers: nats.url,
      cluster: CLUSTER,
      name: 'test-observer',
      log: pino({ level: 'silent' }),
    })
    const store: CheckpointStore = await createCheckpointStore({ conn: observer })
    const stored = await store.list()
    const key = (entry: { serverId: string; round: number }) => `${entry.serverId}@${entry.round}`
    const storedKeys = new Set(stored.map(key))
    // Nothing acknowledged is lost.
    expect(acknowledged.filter((entry) => !storedKeys.has(key(entry)))).toEqual([])

    // The newest round N−F member servers signed a checkpoint for, under this config: what every
    // node must resume at.
    const serverPeerIds = new Set(servers.map((id) => peerIds.get(id)!))
    const signedByItsServer = async (info: CheckpointInfo) =>
      serverPeerIds.has(info.serverId) &&
      info.signature !== undefined &&
      (await verifyPeerSignature(
        info.serverId,
        checkpointStatement(info),
        Buffer.from(info.signature, 'base64'),
      ))
    const serversByRound = new Map<number, Set<string>>()
    for (const info of stored) {
      if (info.configHash !== configHash || !(await signedByItsServer(info))) continue
      serversByRound.set(info.round, (serversByRound.get(info.round) ?? new Set()).add(info.serverId))
    }
    const agreedRound = Math.max(
      ...[...serversByRound].filter(([, ids]) => ids.size >= SERVER_QUORUM).map(([round]) => round),
    )
    expect(agreedRound).toBeGreaterThanOrEqual(minimumRound)
    // The Byzantine server stored a far newer round under every server's name: enough names to
    // look agreed, but only its own signature holds.
    const byzantinePeerId = peerIds.get(BYZANTINE)!
    const forged = stored.filter((info) => info.round >= FORGED_LEAD)
    const namesAt = (round: number) => new Set(forged.filter((i) => i.round === round).map((i) => i.serverId))
    const forgedRound = Math.max(
      ...forged.map((info) => info.round).filter((round) => namesAt(round).size === servers.length),
    )
    expect(namesAt(forgedRound)).toEqual(serverPeerIds)
    const validForged = new Set<string>()
    for (const info of forged) if (await signedByItsServer(info)) validForged.add(info.serverId)
    expect(validForged).toEqual(new Set([byzantinePeerId]))

    // The model to resume from: the median of the round's verified checkpoints (server-0's forged
    // one among them when it stored the round before the kill). N−F of them with at most F
    // Byzantine: at least two honest servers vouch for the round.
    const atRound = []
    for (const info of stored) {
      if (info.round === agreedRound && (await signedByItsServer(info))) atRound.push(info)
    }
    const honestPeerIds = new Set(honestServers.map((id) => peerIds.get(id)!))
    const honestAtRound = atRound.filter((info) => honestPeerIds.has(info.serverId))
    expect(honestAtRound.length).toBeGreaterThanOrEqual(SERVER_QUORUM - 1)
    const models = new Map<string, Float32Array>()
    for (const info of atRound) models.set(info.serverId, await readModel(store, info))
    const expectedModel = modelMedian([...models.values()])
    const expectedSha256 = sha256Hex(encodeModel(expectedModel))
    const forgedSha256s = new Set(
      stored.filter((info) => info.serverId === byzantinePeerId).map((i) => i.sha256),
    )
    expect(forgedSha256s.has(expectedSha256)).toBe(false)
    // Every coordinate stays within the honest servers' checkpoints (the forged one is far outside).
    const honestModels = honestAtRound.map((info) => models.get(info.serverId)!)
    const outside = expectedModel.findIndex((value, i) => {
      const column = honestModels.map((model) => model[i]!)
      return value < Math.min(...column) - 1e-6 || value > Math.max(...column) + 1e-6
    })
    expect(outside).toBe(-1)

    // --- second life: the same config, the same keys ---
    const restarted = await startCluster()
    for (const [nodeId, node] of restarted) {
      const started = await node.reportUntil((report): report is StartedReport => report.type === 'started')
      expect({ nodeId, round: started.round }).toEqual({ nodeId, round: agreedRound })
    }
    // A worker that hears the resumed servers announce joins them at their round without awaiting
    // the lookup (it takes nothing else from a checkpoint): the same round, from the servers' models.
    for (const nodeId of workers) {
      const [how] = await logUntil(work, nodeId, [
        'joined a running cluster from the median of N−F models',
        'resuming from the agreed checkpoint',
      ])
      expect(how).toMatchObject({ round: agreedRound })
      if (how!.msg === 'resuming from the agreed checkpoint')
        expect(how).toMatchObject({ sha256: expectedSha256 })
    }
    for (const nodeId of honestServers) {
      const [resumed] = await logUntil(work, nodeId, 'resuming from the agreed checkpoint')
      expect(resumed).toMatchObject({ round: agreedRound, configHash, sha256: expectedSha256 })
      expect(forgedSha256s.has(String(resumed!.sha256))).toBe(false)
      // The impersonations were read and refused for their signature.
      const refused = logEntries(work, nodeId).filter(
        (entry) => entry.msg === 'checkpoint excluded from agreement' && entry.reason === 'signature',
      )
      expect(refused.map((entry) => entry.round)).toContain(forgedRound)
    }
    // Training continues past the checkpoint, from it: the first round after the restart is R.
    for (const nodeId of honestServers) {
      const node = restarted.get(nodeId)!
      await node.reportUntil(
        (report): report is RoundReport => report.type === 'round' && report.round >= agreedRound + 3,
      )
      expect(node.rounds[0]!.round).toBe(agreedRound)
    }
  })
})

async function readModel(store: CheckpointStore, info: CheckpointInfo): Promise<Float32Array> {
  const bytes = await store.read(info.objectName)
  if (bytes === null) throw new Error(`${info.objectName} vanished`)
  return decodeModel(bytes)
}
