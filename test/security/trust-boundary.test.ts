/**
 * Issue #12's promise tried as an attacker would, against real node processes and a real
 * nats-server with one user per role (the permissions of `@phalanx/control` permissions.ts, the
 * same ones the Kubernetes manifests render). Two attackers:
 * - an outsider: throw-away libp2p keys, no NATS account;
 * - a Byzantine insider: `worker-4`, a member listed in every node's config, whose peer key and
 *   NATS worker credentials the test holds (no process runs for it: it is the f = 1 Byzantine
 *   worker, silent for training, busy attacking).
 * A stolen operator NATS account (but not the operator key) and one server's NATS account (a
 * Byzantine server, F = 1) stand in for the defence in depth behind the permissions.
 *
 * Each attempt must leave training going (honest accuracy within a margin of an unattacked run of
 * the same seed), apply nothing, and be counted by reason on a node's `/metrics` (or by the
 * watcher, for telemetry); the worker's credentials must get a NATS permissions violation on every
 * write they have no right to.
 *
 * Needs the built CLI (`npx tsc -b`).
 */
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kvm } from '@nats-io/kv'
import { connect, type NatsConnection, type Status } from '@nats-io/transport-node'
import {
  type ControlConnection,
  connectControl,
  createCheckpointStore,
  createMembershipStore,
  generateOperatorKey,
  type NatsUser,
  renderNatsServerConfig,
  sendChaosCommand,
  signControlRecord,
  type TelemetryEvent,
  watchTelemetry,
} from '@phalanx/control'
import { verifyPeerSignature } from '@phalanx/net'
import { configFromEnv, configHash, resolveConfig } from '@phalanx/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../support/cli.js'
import { captureLogger } from '../support/log.js'
import { type NatsServerHandle, startNatsServer } from '../support/nats.js'
import { logEntries } from '../support/node-cluster.js'
import { type Rogue, startRogue, throwawayKey } from './attacker.js'
import { SecureCluster } from './harness.js'

const SERVERS = 4
const WORKERS = 5
const INSIDER = 'worker-4'
/** Rounds each phase lets pass before it judges progress. */
const PHASE_ROUNDS = 4
/**
 * Honest accuracy of the attacked run may sit this far under the unattacked run's at the same
 * round. Source: rounds are not bit-reproducible across runs (which n−f gradients a server takes
 * first differs with timing), and the attacked run went through a full restart from a checkpoint
 * (up to `checkpointEvery` rounds of training redone). Measured on this machine on 2026-12-01:
 * attacked 88.9 %, unattacked 88.1 % at round 211 (the comparison lands past round 200 because
 * the phases let the cluster run); logistic regression on MNIST moves by tenths of a point per ten
 * rounds there. 5 points leaves room for that noise; an attack that worked (a stall from a window
 * at 2⁵⁰, a Sybil model resumed, a killed majority) costs far more or never reaches the round.
 */
const ACCURACY_MARGIN = 0.05
const FORGED_ROUND = 2 ** 50
/**
 * The encrypter the nodes prefer: theirs by default, or `PHALANX_ENCRYPTER` (the nodes inherit
 * this process's environment). The rogues prefer it too, or their connections would negotiate
 * their own preference and the other encrypter would go untried.
 */
const ENCRYPTER = resolveConfig(configFromEnv(process.env)).encrypter
const encryptionOf = { tls: '/tls/1.0.0', noise: '/noise' } as const

const trainingEnv = {
  PHALANX_LOG_LEVEL: 'info',
  PHALANX_MODEL: 'logistic',
  PHALANX_BACKEND: 'wasm',
  PHALANX_RULE: 'median',
  PHALANX_LEARNING_RATE: '0.5',
  PHALANX_MOMENTUM: '0',
  PHALANX_SEED: '11',
  PHALANX_EVAL_EVERY: '2',
  PHALANX_CHECKPOINT_EVERY: '5',
  PHALANX_ROUNDS: '100000',
  PHALANX_LISTEN: '/ip4/127.0.0.1/tcp/0',
  // The insider is the one Byzantine member: every process the test runs is honest.
  PHALANX_BYZANTINE_NODE_IDS: INSIDER,
} as const

const nodeIds = [
  ...Array.from({ length: SERVERS }, (_, i) => `server-${i}`),
  ...Array.from({ length: WORKERS }, (_, i) => `worker-${i}`),
]

/** One user per node with its role's permissions, plus the operator's and an observer's. */
function usersFor(): (NatsUser & { user: string; password: string })[] {
  return [
    { role: 'operator', user: 'operator', password: `op-${randomUUID()}` },
    { role: 'observer', user: 'observer', password: `obs-${randomUUID()}` },
    ...nodeIds.map((nodeId) => ({
      role: nodeId.startsWith('server') ? ('server' as const) : ('worker' as const),
      nodeId,
      user: nodeId,
      password: `${nodeId}-${randomUUID()}`,
    })),
  ]
}

interface Plane {
  nats: NatsServerHandle
  dir: string
  /** `nats://user:password@…` of a user (a node id, `operator` or `observer`). */
  urlOf(user: string): string
  /** The raw NATS client of a user, for writes the control package would never attempt. */
  rawClient(user: string): Promise<NatsConnection>
  dispose(): Promise<void>
}

async function startPlane(cluster: string): Promise<Plane> {
  const dir = await mkdtemp(join(tmpdir(), 'phalanx-sec-nats-'))
  const users = usersFor()
  const configFile = join(dir, 'nats.conf')
  await writeFile(configFile, renderNatsServerConfig({ cluster, users }))
  const nats = await startNatsServer({ jetstream: true, extraArgs: ['-c', configFile] })
  const userOf = (name: string) => {
    const user = users.find((u) => u.user === name)
    if (user === undefined) throw new Error(`no NATS user ${name}`)
    return user
  }
  const urlOf = (name: string) => {
    const user = userOf(name)
    return `nats://${user.user}:${user.password}@127.0.0.1:${nats.port}`
  }
  return {
    nats,
    dir,
    urlOf,
    rawClient: (name) => {
      const user = userOf(name)
      return connect({ servers: `127.0.0.1:${nats.port}`, user: user.user, pass: user.password })
    },
    async dispose() {
      await nats.dispose()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** The cluster under test (and its unattacked twin): N = 4, F = 1, n = 5 with the insider idle. */
function startCluster(cluster: string, plane: Plane): Promise<SecureCluster> {
  return SecureCluster.start({
    cluster,
    servers: SERVERS,
    byzantineServers: 1,
    workers: WORKERS,
    byzantineWorkers: 1,
    idle: [INSIDER],
    natsUrlOf: (nodeId) => plane.urlOf(nodeId),
    env: trainingEnv,
  })
}

/** The permissions violation the server reports for `subject` on `nc`. */
function violation(nc: NatsConnection, subject: string): Promise<string> {
  return (async () => {
    for await (const status of nc.status() as AsyncIterable<Status>) {
      if (status.type !== 'error') continue
      const error = status.error as Error & { subject?: string }
      if (error.name === 'PermissionViolationError' && error.subject === subject) return error.name
    }
    throw new Error('connection closed before the violation')
  })()
}

/** Sums a counter's samples whose labels match, over the given nodes. */
async function sumOver(
  cluster: SecureCluster,
  ids: readonly string[],
  read: (c: SecureCluster, id: string) => Promise<Record<string, number>>,
  key: string,
): Promise<number> {
  let total = 0
  for (const id of ids) total += (await read(cluster, id))[key] ?? 0
  return total
}

const messagesRejected = (c: SecureCluster, id: string) => c.rejectedMessages(id)
const connectionsRefused = async (c: SecureCluster, id: string) => ({ total: await c.connectionsRefused(id) })

describe('the trust boundary under attack (real processes, per-role NATS users)', () => {
  const CLUSTER = `sec${randomUUID().slice(0, 6)}`
  let plane: Plane
  let cluster: SecureCluster
  let insiderNats: NatsConnection
  const conns: ControlConnection[] = []
  const rogues: Rogue[] = []
  let captured: ReturnType<Rogue['capture']> = []
  const log = captureLogger('silent').log

  const control = (user: string): ControlConnection => {
    const conn = connectControl({ servers: plane.urlOf(user), cluster: CLUSTER, name: `test-${user}`, log })
    conns.push(conn)
    return conn
  }
  const members = () =>
    [...cluster.nodes.values()].map(
      (node) => [node.peerId, node.nodeId.startsWith('server') ? 'server' : 'worker'] as const,
    )
  const bootstrapOf = async () =>
    (await Promise.all(cluster.running.map((node) => node.handle!.listening))).flat()
  /** Nodes the operator killed on purpose (until the full restart brings them back). */
  const killed = new Set<string>()
  const alive = () => cluster.running.map((n) => n.nodeId).filter((id) => !killed.has(id))
  /** Resolves once every live server has gone `rounds` past the newest round any had reported. */
  const progress = async (rounds = PHASE_ROUNDS) => {
    const from = Math.max(...alive().map((id) => cluster.serverRound(id)))
    await cluster.untilRound(from + rounds, { only: alive() })
  }

  beforeAll(async () => {
    plane = await startPlane(CLUSTER)
    cluster = await startCluster(CLUSTER, plane)
    insiderNats = await plane.rawClient(INSIDER)
    await cluster.untilRound(2)
  })

  afterAll(async () => {
    for (const rogue of rogues.splice(0)) await rogue.stop().catch(() => undefined)
    await insiderNats?.close().catch(() => undefined)
    for (const conn of conns.splice(0)) await conn.close()
    await cluster?.stop()
    await plane?.dispose()
  })

  it('forged round announcements: refused from an outsider and from a relaying member, windows do not move', async () => {
    const before = await sumOver(cluster, alive(), messagesRejected, 'unknown_sender')
    const dimension = 7850
    const bootstrap = await bootstrapOf()
    // The outsider dials every node directly: each refuses the connection in its gater, after the
    // handshake and before any stream, so nothing the outsider could send is ever read; counted.
    const outsider = await startRogue({
      cluster: CLUSTER,
      dimension,
      bootstrap: [],
      members: members(),
      encrypter: ENCRYPTER,
    })
    rogues.push(outsider)
    const refusedBefore = await sumOver(cluster, alive(), connectionsRefused, 'total')
    await outsider.dialEach(bootstrap)
    // Nodes copy their connection counters into /metrics at every round.
    await progress(1)
    expect(await sumOver(cluster, alive(), connectionsRefused, 'total')).toBeGreaterThanOrEqual(
      refusedBefore + alive().length,
    )
    // The insider is a member: it is let in, and hands on N announcements signed by throw-away keys
    // (and one of its own claiming the server role) to every honest peer it holds.
    const insider = await startRogue({
      cluster: CLUSTER,
      dimension,
      bootstrap,
      members: members(),
      keyFile: cluster.keyFile(INSIDER),
      role: 'server',
      encrypter: ENCRYPTER,
    })
    rogues.push(insider)
    captured = insider.capture()
    // Every honest node it dialled must be able to receive the forgeries: awaited by event (the
    // peer's subscription, the rogue's outbound gossip stream), not by rounds, since TLS's dearer
    // connection set-up can leave the streams unopened for longer than a round.
    await insider.ready(alive().length)
    for (const connection of insider.node.libp2p.getConnections()) {
      expect(connection.encryption).toBe(encryptionOf[ENCRYPTER])
    }
    const handed = await insider.forgeAnnouncements({ signers: SERVERS, round: FORGED_ROUND, role: 'server' })
    expect(handed).toBeGreaterThanOrEqual(SERVERS)
    await insider.announceAs(FORGED_ROUND)
    await progress()
    // No honest window moved to 2⁵⁰: every server still completes rounds near where it was.
    for (const server of cluster.servers) expect(cluster.serverRound(server.nodeId)).toBeLessThan(10_000)
    const after = await sumOver(cluster, alive(), messagesRejected, 'unknown_sender')
    expect(after - before).toBeGreaterThanOrEqual(SERVERS)
    const wrongRole = await sumOver(cluster, alive(), messagesRejected, 'wrong_role')
    expect(wrongRole).toBeGreaterThan(0)
  })

  it('Sybil servers and an eviction through the members bucket: a worker cannot write it, nothing unsigned is applied', async () => {
    const honestServer = cluster.node('server-1').peerId
    const sybils = await Promise.all([0, 1, 2].map(async () => (await throwawayKey()).peerId))
    const bucket = `phalanx-${CLUSTER}-members`
    // The outsider has no NATS account: there is no anonymous user, nor a guessable one.
    for (const credentials of [{}, { user: 'worker-0', pass: 'guess' }]) {
      await expect(
        connect({ servers: `127.0.0.1:${plane.nats.port}`, reconnect: false, ...credentials }),
      ).rejects.toMatchObject({ message: expect.stringMatching(/Authorization Violation/i) })
    }
    // The insider's worker credentials: a permissions violation on the members bucket.
    const refusedWrite = violation(insiderNats, `$KV.${bucket}.${sybils[0]}`)
    const kv = await new Kvm(insiderNats).open(bucket)
    await kv
      .put(
        sybils[0]!,
        JSON.stringify({ peerId: sybils[0], nodeId: 'server-9', role: 'server', multiaddrs: [] }),
      )
      .catch(() => undefined)
    expect(await refusedWrite).toBe('PermissionViolationError')

    // With the operator's NATS account but not the operator key: bare records, a stranger's
    // signature and a bare delete reach the bucket, and every node refuses them.
    const operatorConn = control('operator')
    const stranger = generateOperatorKey()
    const store = await createMembershipStore({ conn: operatorConn })
    const opKv = await new Kvm(await operatorConn.connected()).open(bucket)
    for (const [i, peerId] of sybils.entries()) {
      await opKv.put(
        peerId,
        JSON.stringify({ peerId, nodeId: `server-${7 + i}`, role: 'server', multiaddrs: [] }),
      )
    }
    await store.putRecord(
      signControlRecord(stranger, {
        cluster: CLUSTER,
        action: {
          kind: 'admit',
          member: { peerId: sybils[0]!, nodeId: 'server-7', role: 'server', multiaddrs: [] },
        },
      }),
    )
    await store.putRecord(
      signControlRecord(stranger, { cluster: CLUSTER, action: { kind: 'evict', peerId: honestServer } }),
    )
    await opKv.delete(honestServer)
    await progress()
    const running = alive()
    for (const id of running) {
      const refused = await cluster.controlRejected(id)
      expect(refused['unknown/malformed'] ?? 0, id).toBeGreaterThanOrEqual(3)
      expect(refused['admit/bad_signature'] ?? 0, id).toBeGreaterThanOrEqual(1)
      expect(refused['evict/bad_signature'] ?? 0, id).toBeGreaterThanOrEqual(1)
    }
    // Nothing applied: no node changed its member set, and server-1 still contributes.
    for (const id of running) {
      expect(
        logEntries(cluster.work, id).filter((line) => line.msg === 'membership change applied'),
        id,
      ).toEqual([])
    }
    await progress()
  })

  it('chaos kill and corrupt without the operator key: refused and counted; with it, kill kills', async () => {
    // The insider's credentials cannot even publish on a chaos subject.
    const subject = `phalanx.${CLUSTER}.chaos.server-1`
    const refusedPublish = violation(insiderNats, subject)
    insiderNats.publish(subject, new TextEncoder().encode('{"kind":"kill"}'))
    expect(await refusedPublish).toBe('PermissionViolationError')

    const operatorConn = control('operator')
    const stranger = generateOperatorKey()
    for (const command of [
      { kind: 'kill' },
      { kind: 'corrupt', attack: 'sign-flip', options: {} },
    ] as const) {
      await expect(
        sendChaosCommand({ conn: operatorConn, nodeId: 'server-1', command, operatorKey: stranger }),
      ).rejects.toMatchObject({ name: 'ChaosRefusedError', remoteName: 'ControlRecordRejectedError' })
    }
    expect((await cluster.controlRejected('server-1'))['chaos/bad_signature']).toBe(2)
    expect(cluster.node('server-1').handle!.running()).toBe(true)
    await progress()

    // The operator's real command, through the CLI an operator runs.
    const result = await runCli(
      ['chaos', 'kill', 'server-3', '--nats-url', plane.urlOf('operator'), '--cluster', CLUSTER],
      { timeoutMs: 60_000, env: { PHALANX_OPERATOR_KEY: cluster.operatorKeyFile } },
    )
    expect(result.stdout).toContain('server-3 acknowledged kill')
    killed.add('server-3')
    await cluster.node('server-3').handle!.exited
    // N−F = 3 servers remain: training goes on without it.
    await progress(2)
  })

  it('forged telemetry: not on another node’s subject, not shown under another node id', async () => {
    const subject = `phalanx.${CLUSTER}.telemetry.server-0`
    const refusedPublish = violation(insiderNats, subject)
    const forged: TelemetryEvent = {
      nodeId: 'server-0',
      role: 'server',
      round: 2 ** 40,
      timestampMs: Date.now(),
      quorumWaitSeconds: 0,
      rejected: {},
      suspicions: [],
    }
    insiderNats.publish(subject, new TextEncoder().encode(JSON.stringify(forged)))
    expect(await refusedPublish).toBe('PermissionViolationError')

    const observer = control('observer')
    const shown: TelemetryEvent[] = []
    const watch = await watchTelemetry({
      conn: observer,
      verifyPeer: verifyPeerSignature,
      expectedPeerId: (nodeId) => cluster.nodes.get(nodeId)?.peerId,
      onEvent: (event) => shown.push(event),
    })
    try {
      // On its own subject the insider can publish: a forgery in server-0's name, unsigned and
      // signed by the insider's key, is refused; server-0's own reports are shown.
      const own = `phalanx.${CLUSTER}.telemetry.${INSIDER}`
      insiderNats.publish(own, new TextEncoder().encode(JSON.stringify(forged)))
      insiderNats.publish(own, new TextEncoder().encode(JSON.stringify({ ...forged, nodeId: INSIDER })))
      await insiderNats.flush()
      await progress(2)
      expect(shown.some((event) => event.nodeId === 'server-0')).toBe(true)
      expect(shown.every((event) => event.round < 2 ** 40)).toBe(true)
      const refused = watch.refused()
      expect(refused.wrong_subject + refused.unsigned).toBeGreaterThanOrEqual(2)
    } finally {
      watch.stop()
    }
  })

  it('Sybil checkpoints and last run’s messages after a full restart: resumed from the honest checkpoint, replays refused', async () => {
    // The insider's worker credentials cannot write the checkpoint store at all.
    const chunkSubject = `$O.phalanx-${CLUSTER}-checkpoints.C.sybil`
    const refusedChunk = violation(insiderNats, chunkSubject)
    insiderNats.publish(chunkSubject, new Uint8Array(16))
    expect(await refusedChunk).toBe('PermissionViolationError')
    // A Byzantine server (server-3's account, F = 1) stores far-future checkpoints under three
    // Sybil server ids, each signed by its own key.
    const byzantine = control('server-3')
    const checkpoints = await createCheckpointStore({ conn: byzantine })
    // The config hash is no secret: anyone who reads the ConfigMap computes it.
    const hash = configHash(
      resolveConfig(
        configFromEnv({
          ...trainingEnv,
          PHALANX_CLUSTER: CLUSTER,
          PHALANX_SERVERS: String(SERVERS),
          PHALANX_BYZANTINE_SERVERS: '1',
          PHALANX_WORKERS: String(WORKERS),
          PHALANX_BYZANTINE_WORKERS: '1',
        }),
      ),
    )
    for (let i = 0; i < 3; i++) {
      const { key, peerId: serverId } = await throwawayKey()
      const model = new Float32Array(7850).fill(100 + i)
      await checkpoints.put({
        serverId,
        round: 1_000_000,
        configHash: hash,
        model,
        sign: async (statement) => key.sign(statement),
      })
    }
    const replayable = captured.length
    expect(replayable).toBeGreaterThan(0)

    // Full restart under a new epoch: the last run's signed messages can no longer frame anyone.
    for (const rogue of rogues.splice(0)) await rogue.stop()
    const honestServers = alive()
    const lastRounds = await cluster.restartAll({ PHALANX_EPOCH: '1' })
    const honestRound = Math.max(...honestServers.map((id) => lastRounds.get(id) ?? -1))
    killed.clear()
    await cluster.untilRound(0)
    for (const server of cluster.servers) {
      const resumed = logEntries(cluster.work, server.nodeId).filter(
        (line) => line.msg === 'resuming from the agreed checkpoint',
      )
      const last = resumed[resumed.length - 1]
      expect(last, server.nodeId).toBeDefined()
      expect(last!.round as number).toBeLessThanOrEqual(honestRound + 1)
    }

    const replayer = await startRogue({
      cluster: CLUSTER,
      dimension: 7850,
      bootstrap: await bootstrapOf(),
      members: members(),
      keyFile: cluster.keyFile(INSIDER),
      epoch: 1,
      encrypter: ENCRYPTER,
    })
    rogues.push(replayer)
    await replayer.ready(alive().length)
    expect(replayer.replay(captured)).toBeGreaterThan(0)
    await progress()
    const honestIds = alive()
    expect(await sumOver(cluster, honestIds, messagesRejected, 'wrong_epoch')).toBeGreaterThan(0)
    expect(await sumOver(cluster, honestIds, messagesRejected, 'equivocation')).toBe(0)
  })

  it('keeps training: honest accuracy within the margin of the unattacked run of the same seed', async ({
    task,
  }) => {
    await progress(PHASE_ROUNDS)
    const attacked = cluster.accuracyByRound()
    const round = Math.max(...attacked.keys())
    // The unattacked run, after the attacked one (so neither slows the other), to the same round.
    for (const rogue of rogues.splice(0)) await rogue.stop()
    await cluster.stop()
    await plane.dispose()
    const baselinePlane = await startPlane(CLUSTER)
    const baseline = await startCluster(CLUSTER, baselinePlane)
    try {
      await baseline.untilRound(round)
      const unattacked = baseline.accuracyByRound().get(round)
      // In the JSON report (`--reporter=json`): how the margin was measured.
      Object.assign(task.meta, { round, attacked: attacked.get(round), unattacked })
      expect(unattacked, `baseline accuracy at round ${round}`).toBeGreaterThan(0.5)
      expect(attacked.get(round)!, `round ${round}`).toBeGreaterThan(unattacked! - ACCURACY_MARGIN)
    } finally {
      await baseline.stop()
      await baselinePlane.dispose()
    }
  })
})
