/**
 * A cluster of real `phalanx server|worker` processes for system tests: one process per node,
 * libp2p on loopback, a nats-server of its own for telemetry and chaos commands. The harness
 * knows nothing of the protocol; it starts processes with `PHALANX_*` environment (what a
 * container gets), records every telemetry event, and kills everything in `stop()`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type ControlConnection,
  connectControl,
  generateOperatorKey,
  type OperatorKey,
  type TelemetryEvent,
  type TelemetryWatch,
  watchTelemetry,
  writeOperatorKey,
} from '@phalanx/control'
import pino from 'pino'
import { type CliResult, runCli } from './cli.js'
import { type NatsServerHandle, startNatsServer } from './nats.js'
import { forkNodeProcess, logFileOf, type NodeHandle, peerIdsOf, Waiters } from './node-process.js'

export interface TestClusterInit {
  servers: number
  workers: number
  /** `PHALANX_*` values every node gets (config names as env, e.g. `PHALANX_RULE`). */
  env: Record<string, string>
  /** Extra environment per node id (e.g. a different attack for one node). */
  nodeEnv?: Record<string, Record<string, string>>
  cluster?: string
  /** Start the suite's nats-server with a user and password (nodes get them in the URL). */
  natsCredentials?: { user: string; password: string }
}

export interface TestCluster {
  readonly work: string
  readonly natsUrl: string
  /** The cluster's own nats-server (kill and start it for an outage). */
  readonly natsServer: NatsServerHandle
  /** The operator key every node is pinned to (`operatorKeyFile` holds it for the CLI). */
  readonly operatorKey: OperatorKey
  readonly operatorKeyFile: string
  /** Peer id of each node id. */
  readonly peerIds: ReadonlyMap<string, string>
  readonly events: readonly TelemetryEvent[]
  /** Resolves once `predicate` holds over the telemetry so far; fails after `timeoutMs`. */
  until(predicate: (seen: readonly TelemetryEvent[]) => boolean, timeoutMs?: number): Promise<void>
  /** Newest round `nodeId` reported (−1 before its first). */
  latestRound(nodeId: string): number
  /** `phalanx chaos …` against this cluster, as an operator runs it (with the operator key). */
  chaos(...args: string[]): Promise<CliResult>
  /** A node's log once it matches: pino writes asynchronously, so a line may land a moment late. */
  logUntil(nodeId: string, pattern: RegExp, timeoutMs?: number): Promise<string>
  /** The process of a node and how it ended. */
  node(nodeId: string): NodeHandle
  stop(): Promise<void>
}

const harnessDefaults = {
  cluster: 'test-cluster',
  // A cluster of ~10 processes needs ~20 s of CPU to start on two shared cores.
  startTimeoutMs: 120_000,
} as const

export async function startTestCluster(init: TestClusterInit): Promise<TestCluster> {
  const cluster = init.cluster ?? harnessDefaults.cluster
  const work = mkdtempSync(join(tmpdir(), 'phalanx-cluster-'))
  const nodes = new Map<string, NodeHandle>()
  const events: TelemetryEvent[] = []
  const telemetryWaiters = new Waiters()
  let nats: NatsServerHandle | undefined
  let conn: ControlConnection | undefined
  let watch: TelemetryWatch | undefined

  const stop = async (): Promise<void> => {
    await Promise.all([...nodes.values()].map((node) => node.kill()))
    watch?.stop()
    await conn?.close()
    await nats?.dispose()
    rmSync(work, { recursive: true, force: true })
  }

  try {
    const credentials = init.natsCredentials
    nats = await startNatsServer(
      credentials === undefined
        ? {}
        : { extraArgs: ['--user', credentials.user, '--pass', credentials.password] },
    )
    const operatorKey = generateOperatorKey()
    const operatorKeyFile = join(work, 'operator.pem')
    await writeOperatorKey(operatorKeyFile, operatorKey)
    const natsUrl = `nats://${credentials === undefined ? '' : `${credentials.user}:${credentials.password}@`}127.0.0.1:${nats.port}`
    conn = connectControl({
      servers: natsUrl,
      cluster,
      name: 'test-observer',
      log: pino({ level: 'silent' }),
    })
    watch = await watchTelemetry({
      conn,
      onEvent: (event) => {
        events.push(event)
        telemetryWaiters.wake()
      },
    })

    const serverIds = Array.from({ length: init.servers }, (_, i) => `server-${i}`)
    const workerIds = Array.from({ length: init.workers }, (_, i) => `worker-${i}`)
    const peerIds = await peerIdsOf(work, [...serverIds, ...workerIds])
    const members = [...peerIds].map(([nodeId, peerId]) => `${nodeId}:${peerId}`)

    const start = (nodeId: string, bootstrap: string[]) => {
      const node = forkNodeProcess({
        work,
        nodeId,
        env: {
          PHALANX_LOG_LEVEL: 'info',
          PHALANX_CLUSTER: cluster,
          PHALANX_SERVERS: String(init.servers),
          PHALANX_WORKERS: String(init.workers),
          PHALANX_BACKEND: 'wasm',
          PHALANX_MEMBERS: members.join(','),
          PHALANX_LISTEN: '/ip4/127.0.0.1/tcp/0',
          PHALANX_BOOTSTRAP: bootstrap.join(','),
          PHALANX_NATS_URL: natsUrl,
          PHALANX_OPS_PORT: '0',
          PHALANX_CHAOS: 'true',
          PHALANX_OPERATOR_PUBLIC_KEY: operatorKey.publicKey,
          ...init.env,
          ...init.nodeEnv?.[nodeId],
        },
      })
      nodes.set(nodeId, node)
      return node.listening
    }

    const serverAddresses: string[] = []
    for (const nodeId of serverIds) serverAddresses.push(...(await start(nodeId, [...serverAddresses])))
    await Promise.all(workerIds.map((nodeId) => start(nodeId, serverAddresses)))

    const until = (predicate: (seen: readonly TelemetryEvent[]) => boolean, timeoutMs = 120_000) =>
      telemetryWaiters.until(
        () => predicate(events),
        timeoutMs,
        () => new Error(`telemetry condition not met within ${timeoutMs} ms (${events.length} events)`),
      )
    await until(
      (seen) => serverIds.every((id) => seen.some((e) => e.nodeId === id)),
      harnessDefaults.startTimeoutMs,
    )

    return {
      work,
      natsUrl,
      natsServer: nats,
      operatorKey,
      operatorKeyFile,
      peerIds,
      events,
      until,
      latestRound: (nodeId) =>
        Math.max(-1, ...events.filter((event) => event.nodeId === nodeId).map((event) => event.round)),
      chaos: (...args) =>
        runCli(
          ['chaos', ...args, '--nats-url', natsUrl, '--cluster', cluster, '--operator-key', operatorKeyFile],
          {
            timeoutMs: 60_000,
          },
        ),
      logUntil: async (nodeId, pattern, timeoutMs = 20_000) => {
        const deadline = Date.now() + timeoutMs
        for (;;) {
          const log = readFileSync(logFileOf(work, nodeId), 'utf8')
          if (pattern.test(log) || Date.now() > deadline) return log
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      },
      node: (nodeId) => {
        const node = nodes.get(nodeId)
        if (node === undefined) throw new Error(`no node ${nodeId} in this cluster`)
        return node
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/** The newest accuracy each of `serverIds` reported at or after `fromRound`. */
export function accuracyAfter(
  events: readonly TelemetryEvent[],
  serverIds: readonly string[],
  fromRound: number,
): Map<string, number> {
  const found = new Map<string, number>()
  for (const event of events) {
    if (!serverIds.includes(event.nodeId) || event.round < fromRound || event.accuracy === undefined) continue
    found.set(event.nodeId, event.accuracy)
  }
  return found
}
