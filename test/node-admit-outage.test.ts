/**
 * A running cluster of real `phalanx server|worker` processes (3 servers, 2 workers, a closed member
 * set from the config, libp2p on loopback) on a nats-server this test owns:
 * - nats-server is SIGKILLed for several seconds: training goes on (seen on each node's `/metrics`,
 *   not through NATS), each node logs the outage once, and after nats-server restarts on the same
 *   port and store dir every node's telemetry arrives again, the rounds of the outage included;
 * - `phalanx admit --operator-key` (the key every node is pinned to) lets a new worker join: the
 *   servers apply the signed change at a round boundary, accept
 *   its connection and messages, and aggregate its gradients — with one original worker killed,
 *   the cluster goes on only because of it.
 * Needs the built CLI (`npx tsc -b`).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ConsumerMessages, DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { generateOperatorKey, type TelemetryEvent, writeOperatorKey } from '@phalanx/control'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './support/cli.js'
import { freePorts, type NatsServerHandle, startNatsServer, waitForJetStream } from './support/nats.js'
import { forkNode, logEntries, logUntil } from './support/node-cluster.js'
import { type NodeHandle, peerIdsOf } from './support/node-process.js'
import { parsePrometheusText } from './support/prometheus.js'

const CLUSTER = 'admit-outage'
const servers = ['server-0', 'server-1', 'server-2']
const workers = ['worker-0', 'worker-1']
const NEWCOMER = 'worker-2'
const everyone = [...servers, ...workers]
/** Rounds of the outage's edges a node may lose: core NATS drops what was in the socket at the kill. */
const IN_FLIGHT_SLACK = 10

type RoundReport = Extract<NodeHandle['reports'][number], { type: 'round' }>

describe('node processes across a NATS outage, and a worker admitted at run time', () => {
  let work: string
  let nats: NatsServerHandle
  let reader: NatsConnection | undefined
  let telemetryStream: ConsumerMessages | undefined
  let env: Record<string, string>
  let peerIds: Map<string, string>
  let serverAddresses: string[]
  let operatorKeyFile: string
  const nodes = new Map<string, NodeHandle>()
  const opsPorts = new Map<string, number>()
  /** Every telemetry event NATS recorded, by node (read from a JetStream stream, so none is missed). */
  const telemetry = new Map<string, TelemetryEvent[]>()
  const telemetryWaiters = new Set<() => void>()

  const telemetryUntil = (predicate: () => boolean, timeoutMs = 120_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        telemetryWaiters.delete(check)
        reject(new Error(`telemetry condition not met within ${timeoutMs} ms`))
      }, timeoutMs)
      function check() {
        if (!predicate()) return
        telemetryWaiters.delete(check)
        clearTimeout(timer)
        resolve()
      }
      telemetryWaiters.add(check)
      check()
    })

  const roundsTotal = async (nodeId: string): Promise<number> => {
    const response = await fetch(`http://127.0.0.1:${opsPorts.get(nodeId)}/metrics`)
    const families = parsePrometheusText(await response.text())
    return families.get('phalanx_rounds_total')?.samples[0]?.value ?? 0
  }
  const metricOf = async (nodeId: string, name: string): Promise<number | undefined> => {
    const response = await fetch(`http://127.0.0.1:${opsPorts.get(nodeId)}/metrics`)
    return parsePrometheusText(await response.text()).get(name)?.samples[0]?.value
  }
  /** Polls each node's `/metrics` (the only view of progress while NATS is down). */
  const roundsUntil = async (targets: Map<string, number>, timeoutMs = 120_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const behind: string[] = []
      for (const [nodeId, target] of targets) if ((await roundsTotal(nodeId)) < target) behind.push(nodeId)
      if (behind.length === 0) return
      if (Date.now() > deadline) throw new Error(`no progress within ${timeoutMs} ms on ${behind.join(', ')}`)
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  const start = (nodeId: string, extra: Record<string, string> = {}): NodeHandle => {
    const node = forkNode({
      work,
      nodeId,
      env: {
        ...env,
        PHALANX_BOOTSTRAP: serverAddresses.join(','),
        PHALANX_OPS_PORT: String(opsPorts.get(nodeId) ?? 0),
        ...extra,
      },
    })
    nodes.set(nodeId, node)
    return node
  }

  /**
   * Records telemetry from a file-backed stream: it survives the nats-server kill, and keeps what the
   * nodes flush after the restart even before this reader is back. Each call reads on from the last
   * message seen (a consumer does not outlive the server).
   */
  const telemetryStreamName = `TELEMETRY_${CLUSTER.replace(/-/g, '_')}`
  let lastSequence = 0
  const recordTelemetry = async (): Promise<void> => {
    reader = await connect({ servers: nats.url, name: 'test-reader' })
    if (lastSequence === 0) {
      await (await jetstreamManager(reader)).streams.add({
        name: telemetryStreamName,
        subjects: [`phalanx.${CLUSTER}.telemetry.>`],
      })
    }
    const consumer = await jetstream(reader).consumers.get(
      telemetryStreamName,
      lastSequence === 0
        ? {}
        : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSequence + 1 },
    )
    const messages = await consumer.consume()
    telemetryStream = messages
    void (async () => {
      for await (const message of messages) {
        lastSequence = message.seq
        const event = message.json<TelemetryEvent>()
        telemetry.set(event.nodeId, [...(telemetry.get(event.nodeId) ?? []), event])
        for (const wake of [...telemetryWaiters]) wake()
      }
    })()
  }
  const stopRecording = async (): Promise<void> => {
    telemetryStream?.stop()
    await reader?.close()
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'phalanx-admit-outage-'))
    nats = await startNatsServer()
    const operatorKey = generateOperatorKey()
    operatorKeyFile = join(work, 'operator.pem')
    await writeOperatorKey(operatorKeyFile, operatorKey)
    await recordTelemetry()
    peerIds = await peerIdsOf(work, [...everyone, NEWCOMER])
    const ports = await freePorts(everyone.length + 1)
    for (const [i, nodeId] of [...everyone, NEWCOMER].entries()) opsPorts.set(nodeId, ports[i]!)
    const member = (nodeId: string) => `${nodeId}:${peerIds.get(nodeId)}`
    env = {
      PHALANX_CLUSTER: CLUSTER,
      PHALANX_SERVERS: String(servers.length),
      PHALANX_BYZANTINE_SERVERS: '0',
      PHALANX_WORKERS: String(workers.length),
      PHALANX_BYZANTINE_WORKERS: '0',
      // The newcomer is not in the original member set: only `phalanx admit` lets it in.
      PHALANX_MEMBERS: everyone.map(member).join(','),
      PHALANX_NATS_URL: nats.url,
      PHALANX_OPS_HOST: '127.0.0.1',
      // Nodes apply only membership records this key signed.
      PHALANX_OPERATOR_PUBLIC_KEY: operatorKey.publicKey,
    }
    serverAddresses = []
    for (const nodeId of servers) serverAddresses.push(...(await start(nodeId).listening))
    await Promise.all(workers.map((nodeId) => start(nodeId).listening))
    await telemetryUntil(() => everyone.every((id) => (telemetry.get(id)?.length ?? 0) >= 3))
  }, 240_000)

  afterAll(async () => {
    await Promise.all([...nodes.values()].map((node) => node.kill()))
    await stopRecording()
    await nats?.dispose()
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  it('trains on through a NATS outage of several seconds, logs it once per node, and its telemetry resumes', async () => {
    const outageMs = 6_000
    await stopRecording()
    const killedAt = Date.now()
    await nats.kill('SIGKILL')
    const atKill = new Map<string, number>()
    for (const nodeId of everyone) atKill.set(nodeId, await roundsTotal(nodeId))
    // Every node notices, and goes on training without NATS.
    await Promise.all(
      everyone.map((nodeId) => logUntil(work, nodeId, 'NATS disconnected; reconnecting in the background')),
    )
    await roundsUntil(new Map([...atKill].map(([nodeId, rounds]) => [nodeId, rounds + 20])))
    // The outage has a length, not an event to wait for: keep NATS down for its remainder.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + outageMs - Date.now())))
    const atRestart = new Map<string, number>()
    for (const nodeId of everyone) atRestart.set(nodeId, await roundsTotal(nodeId))
    await nats.start()
    await waitForJetStream([nats.url])
    await recordTelemetry()

    // Every node's telemetry arrives again: the rounds it ran during the outage (buffered, then
    // flushed) and the rounds after it.
    await telemetryUntil(() =>
      everyone.every((nodeId) =>
        (telemetry.get(nodeId) ?? []).some((event) => event.round >= atRestart.get(nodeId)! + 2),
      ),
    )
    for (const nodeId of everyone) {
      const rounds = new Set(telemetry.get(nodeId)!.map((event) => event.round))
      const first = atKill.get(nodeId)! + IN_FLIGHT_SLACK
      const missing = Array.from({ length: atRestart.get(nodeId)! - first }, (_, i) => first + i).filter(
        (round) => !rounds.has(round),
      )
      expect({ nodeId, missing }).toEqual({ nodeId, missing: [] })
    }
    // One warning per outage, however many events it dropped or buffered.
    for (const nodeId of everyone) {
      const entries = logEntries(work, nodeId)
      const count = (msg: string) => entries.filter((entry) => entry.msg === msg).length
      expect({
        nodeId,
        disconnected: count('NATS disconnected; reconnecting in the background'),
        buffering: count(
          'NATS unavailable: buffering telemetry (oldest dropped beyond the limit); training continues',
        ),
      }).toEqual({ nodeId, disconnected: 1, buffering: 1 })
      await logUntil(work, nodeId, 'NATS back: telemetry buffer flushed')
      expect(await metricOf(nodeId, 'phalanx_nats_disconnects_total')).toBe(1)
    }
  })

  it('`phalanx admit` lets a new worker join the running cluster, and the servers aggregate its gradients', async () => {
    const newcomerPeerId = peerIds.get(NEWCOMER)!
    const admitted = await runCli(
      [
        'admit',
        NEWCOMER,
        newcomerPeerId,
        '--role',
        'worker',
        '--nats-url',
        nats.url,
        '--cluster',
        CLUSTER,
        '--operator-key',
        operatorKeyFile,
      ],
      { timeoutMs: 60_000 },
    )
    expect(admitted.stderr).toBe('')
    expect(admitted.stdout).toMatch(new RegExp(`^admitted ${NEWCOMER} \\(${newcomerPeerId}\\) as worker`))
    // Servers apply the change at their next round boundary.
    await Promise.all(
      servers.map((nodeId) =>
        logUntil(work, nodeId, 'membership change applied', (entries) =>
          entries.some((entry) => entry.change === 'admit' && entry.peerId === newcomerPeerId),
        ),
      ),
    )
    // It knows the original members and itself; the others know it only from the admission.
    const newcomer = start(NEWCOMER, {
      PHALANX_MEMBERS: `${env.PHALANX_MEMBERS},${NEWCOMER}:${newcomerPeerId}`,
    })
    await newcomer.listening
    const joined = await newcomer.reportUntil((report): report is RoundReport => report.type === 'round')

    // Without worker-1 the servers' quorum of n − f = 2 gradients needs the newcomer's every round.
    await nodes.get('worker-1')!.kill()
    const killedAtRound = Math.max(...servers.map((id) => nodes.get(id)!.rounds.at(-1)!.round))
    // A round report may still be on its way over IPC: worker-1 can have sent gradients for up to
    // two rounds past the newest report seen, so those rounds are left out of the check.
    const firstWithoutWorker1 = killedAtRound + 3
    for (const nodeId of servers) {
      await nodes
        .get(nodeId)!
        .reportUntil(
          (report): report is RoundReport =>
            report.type === 'round' && report.round >= firstWithoutWorker1 + 3,
        )
      const afterKill = nodes.get(nodeId)!.rounds.filter((report) => report.round >= firstWithoutWorker1)
      expect(afterKill.length).toBeGreaterThanOrEqual(3)
      for (const report of afterKill) {
        expect({ round: report.round, used: report.gradientSenders }).toEqual({
          round: report.round,
          used: expect.arrayContaining([newcomerPeerId, peerIds.get('worker-0')]),
        })
      }
    }
    expect(joined.round).toBeGreaterThan(0)
  })
})
