/**
 * A cluster of real `phalanx server|worker` processes for system tests: one process per node,
 * libp2p on loopback, a nats-server of its own for telemetry and chaos commands. The harness
 * knows nothing of the protocol; it starts processes with `PHALANX_*` environment (what a
 * container gets), records every telemetry event, and kills everything in `stop()`.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  type ControlConnection,
  connectControl,
  type TelemetryEvent,
  type TelemetryWatch,
  watchTelemetry,
} from '@phalanx/control'
import { loadOrCreatePeerKey } from '@phalanx/net'
import type { NodeReport } from '@phalanx/node'
import pino from 'pino'
import { type CliResult, cliPath, runCli } from './cli.js'
import { type NatsServerHandle, startNatsServer } from './nats.js'

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

export interface RunningNode {
  nodeId: string
  process: ChildProcess
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface TestCluster {
  readonly work: string
  readonly natsUrl: string
  /** Peer id of each node id. */
  readonly peerIds: ReadonlyMap<string, string>
  readonly events: readonly TelemetryEvent[]
  /** Resolves once `predicate` holds over the telemetry so far; fails after `timeoutMs`. */
  until(predicate: (seen: readonly TelemetryEvent[]) => boolean, timeoutMs?: number): Promise<void>
  /** Newest round `nodeId` reported (−1 before its first). */
  latestRound(nodeId: string): number
  /** `phalanx chaos …` against this cluster, as an operator runs it. */
  chaos(...args: string[]): Promise<CliResult>
  /** A node's log once it matches: pino writes asynchronously, so a line may land a moment late. */
  logUntil(nodeId: string, pattern: RegExp, timeoutMs?: number): Promise<string>
  /** The process of a node and how it ended. */
  node(nodeId: string): RunningNode
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
  const nodes = new Map<string, RunningNode>()
  const events: TelemetryEvent[] = []
  const waiters = new Set<() => void>()
  let nats: NatsServerHandle | undefined
  let conn: ControlConnection | undefined
  let watch: TelemetryWatch | undefined

  const stop = async (): Promise<void> => {
    for (const node of nodes.values()) node.process.kill('SIGKILL')
    await Promise.all([...nodes.values()].map((node) => node.exited))
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
        for (const check of [...waiters]) check()
      },
    })

    const serverIds = Array.from({ length: init.servers }, (_, i) => `server-${i}`)
    const workerIds = Array.from({ length: init.workers }, (_, i) => `worker-${i}`)
    const peerIds = new Map<string, string>()
    for (const nodeId of [...serverIds, ...workerIds]) {
      const { key } = await loadOrCreatePeerKey(join(work, `${nodeId}.key`))
      peerIds.set(nodeId, peerIdFromPrivateKey(key).toString())
    }
    const members = [...peerIds].map(([nodeId, peerId]) => `${nodeId}:${peerId}`)

    const start = (nodeId: string, bootstrap: string[]) =>
      new Promise<string[]>((resolve, reject) => {
        const log = openSync(join(work, `${nodeId}.log`), 'a')
        const child = fork(cliPath, [nodeId.split('-')[0]!], {
          stdio: ['ignore', log, log, 'ipc'],
          env: {
            ...process.env,
            PHALANX_LOG_LEVEL: 'info',
            PHALANX_CLUSTER: cluster,
            PHALANX_NODE_ID: nodeId,
            PHALANX_SERVERS: String(init.servers),
            PHALANX_WORKERS: String(init.workers),
            PHALANX_BACKEND: 'wasm',
            PHALANX_MEMBERS: members.join(','),
            PHALANX_LISTEN: '/ip4/127.0.0.1/tcp/0',
            PHALANX_BOOTSTRAP: bootstrap.join(','),
            PHALANX_KEY_FILE: join(work, `${nodeId}.key`),
            PHALANX_NATS_URL: natsUrl,
            PHALANX_OPS_PORT: '0',
            PHALANX_CHAOS: 'true',
            ...init.env,
            ...init.nodeEnv?.[nodeId],
          },
        })
        const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
          child.once('exit', (code, signal) => done({ code, signal })),
        )
        nodes.set(nodeId, { nodeId, process: child, exited })
        child.on('message', (message: NodeReport) => {
          if (message.type !== 'listening') return
          resolve(message.multiaddrs.map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${message.peerId}`)))
        })
        void exited.then(({ code, signal }) =>
          reject(
            new Error(`${nodeId} exited before listening (${code ?? signal}); see ${work}/${nodeId}.log`),
          ),
        )
      })

    const serverAddresses: string[] = []
    for (const nodeId of serverIds) serverAddresses.push(...(await start(nodeId, [...serverAddresses])))
    await Promise.all(workerIds.map((nodeId) => start(nodeId, serverAddresses)))

    const until = (predicate: (seen: readonly TelemetryEvent[]) => boolean, timeoutMs = 120_000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`telemetry condition not met within ${timeoutMs} ms (${events.length} events)`))
        }, timeoutMs)
        const check = () => {
          if (!predicate(events)) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve()
        }
        waiters.add(check)
        check()
      })
    await until(
      (seen) => serverIds.every((id) => seen.some((e) => e.nodeId === id)),
      harnessDefaults.startTimeoutMs,
    )

    return {
      work,
      natsUrl,
      peerIds,
      events,
      until,
      latestRound: (nodeId) =>
        Math.max(-1, ...events.filter((event) => event.nodeId === nodeId).map((event) => event.round)),
      chaos: (...args) =>
        runCli(['chaos', ...args, '--nats-url', natsUrl, '--cluster', cluster], { timeoutMs: 60_000 }),
      logUntil: async (nodeId, pattern, timeoutMs = 20_000) => {
        const deadline = Date.now() + timeoutMs
        for (;;) {
          const log = readFileSync(join(work, `${nodeId}.log`), 'utf8')
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
