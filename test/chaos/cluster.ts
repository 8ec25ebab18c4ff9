/**
 * A real Phalanx cluster for the chaos suite: one `phalanx server|worker` process per node, forked
 * from the built CLI with `PHALANX_*` variables, libp2p over TCP on loopback, chaos commands and
 * telemetry over a nats-server the suite owns. Every node listens on a fixed port so a restarted
 * node keeps its address (as a StatefulSet pod keeps its name), and every peer key is generated up
 * front so the member set is closed and known to all, late joiners included. Progress comes from
 * the nodes' IPC reports (the same ones `phalanx local` reads), never from sleeping.
 */

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  type ChaosCommand,
  type ControlConnection,
  connectControl,
  generateOperatorKey,
  type OperatorKey,
  sendChaosCommand,
  type TelemetryEvent,
  type TelemetryWatch,
  watchTelemetry,
} from '@phalanx/control'
import { PhalanxError } from '@phalanx/errors'
import pino from 'pino'
import { freePorts, type NatsServerHandle, startNatsServer } from '../support/nats.js'
import {
  forkNodeProcess,
  keyFileOf,
  logFileOf,
  type NodeHandle,
  peerIdsOf,
  Waiters,
} from '../support/node-process.js'
import { type FlipProxy, startFlipProxy } from './flip-proxy.js'

export type { RoundReport } from '../support/node-process.js'

export interface ChaosClusterInit {
  cluster: string
  servers: number
  byzantineServers: number
  workers: number
  byzantineWorkers: number
  /** Workers that are members from the start but only started by `startLate` (a join burst). */
  lateWorkers: number
  seed: number
  /** Extra `PHALANX_*` settings every node gets (model, rule, timeouts …). */
  env: Record<string, string>
  /** Settings of one node on top of `env` (its ops port, say), every time it starts. */
  envOf?: (nodeId: string) => Record<string, string>
  /**
   * One link to run through a byte-flipping proxy: `from` dials `to` through it (every start of
   * `from`), so the proxy sits on the connection between the two.
   */
  proxied?: { from: string; to: string }
  /** Where a failed wait points to; also the tests' temporary directory. */
  work?: string
}

/** One incarnation of a node process: its reports, in order, and how it ended. */
export interface Incarnation extends NodeHandle {
  startedAt: number
}

export interface ChaosNode {
  nodeId: string
  role: 'server' | 'worker'
  peerId: string
  port: number
  keyFile: string
  logFile: string
  incarnations: Incarnation[]
}

export class ChaosWaitError extends PhalanxError<
  'chaos_wait_timeout',
  { what: string; timeoutMs: number; work: string }
> {
  override readonly name = 'ChaosWaitError'
  readonly values: { what: string; timeoutMs: number; work: string }
  constructor(message: string, values: { what: string; timeoutMs: number; work: string }) {
    super('chaos_wait_timeout', values, {
      message: `${message} (waited ${values.timeoutMs} ms for ${values.what}; node logs in ${values.work})`,
    })
    this.values = values
  }
}

const CHAOS_CLUSTER_DEFAULTS = {
  // Generous: four other engineers share the two cores; a wait only ends early on success.
  waitTimeoutMs: 180_000,
} as const

export class ChaosCluster {
  readonly nodes = new Map<string, ChaosNode>()
  readonly telemetry: TelemetryEvent[] = []
  readonly work: string
  readonly #init: ChaosClusterInit
  readonly #waiters = new Waiters()
  #nats: NatsServerHandle | undefined
  #proxy: FlipProxy | undefined
  #observer: ControlConnection | undefined
  /** The operator of this cluster: every node is pinned to it, and it signs the suite's commands. */
  readonly operatorKey: OperatorKey = generateOperatorKey()
  #watch: TelemetryWatch | undefined
  #ownsWork: boolean

  private constructor(init: ChaosClusterInit, work: string, ownsWork: boolean) {
    this.#init = init
    this.work = work
    this.#ownsWork = ownsWork
  }

  static async start(init: ChaosClusterInit): Promise<ChaosCluster> {
    const work = init.work ?? mkdtempSync(join(tmpdir(), 'phalanx-chaos-'))
    const cluster = new ChaosCluster(init, work, init.work === undefined)
    try {
      await cluster.#boot()
    } catch (error) {
      await cluster.dispose()
      throw error
    }
    return cluster
  }

  get nats(): NatsServerHandle {
    if (this.#nats === undefined) throw new Error('cluster not started')
    return this.#nats
  }

  get proxy(): FlipProxy {
    if (this.#proxy === undefined) throw new Error('cluster has no proxied link')
    return this.#proxy
  }

  get serverIds(): string[] {
    return [...this.nodes.values()].filter((n) => n.role === 'server').map((n) => n.nodeId)
  }

  get workerIds(): string[] {
    return Array.from({ length: this.#init.workers }, (_, i) => `worker-${i}`)
  }

  get lateWorkerIds(): string[] {
    return Array.from({ length: this.#init.lateWorkers }, (_, i) => `worker-${this.#init.workers + i}`)
  }

  node(nodeId: string): ChaosNode {
    const node = this.nodes.get(nodeId)
    if (node === undefined) throw new Error(`no node ${nodeId}`)
    return node
  }

  current(nodeId: string): Incarnation | undefined {
    return this.node(nodeId).incarnations.at(-1)
  }

  running(nodeId: string): boolean {
    return this.current(nodeId)?.running() ?? false
  }

  /** The newest round `nodeId` reported complete (any incarnation), −1 before its first. */
  latestRound(nodeId: string): number {
    let latest = -1
    for (const incarnation of this.node(nodeId).incarnations) {
      const last = incarnation.rounds.at(-1)
      if (last !== undefined) latest = Math.max(latest, last.round)
    }
    return latest
  }

  /** Where `from` dials `nodeId`: its fixed port, or the proxy's on the proxied link. */
  address(nodeId: string, from?: string): string {
    const node = this.node(nodeId)
    const { proxied } = this.#init
    const port =
      proxied !== undefined && proxied.from === from && proxied.to === nodeId ? this.proxy.port : node.port
    return `/ip4/127.0.0.1/tcp/${port}/p2p/${node.peerId}`
  }

  /** Resolves once `predicate` holds (re-checked on every report and telemetry event). */
  until(what: string, predicate: () => boolean, timeoutMs: number = CHAOS_CLUSTER_DEFAULTS.waitTimeoutMs) {
    return this.#waiters.until(
      predicate,
      timeoutMs,
      () => new ChaosWaitError('condition not met', { what, timeoutMs, work: this.work }),
    )
  }

  /** Resolves once every node in `nodeIds` reported a round ≥ `round`. */
  untilRound(nodeIds: readonly string[], round: number, timeoutMs?: number): Promise<void> {
    return this.until(
      `${nodeIds.join(',')} at round ${round}`,
      () => nodeIds.every((id) => this.latestRound(id) >= round),
      timeoutMs,
    )
  }

  /**
   * Resolves once the node's log holds more than `than` lines matching `pattern` (a stalled node
   * reports no rounds, so its log is the only event; pino writes asynchronously, so it is polled).
   */
  async untilLog(
    nodeId: string,
    pattern: RegExp,
    than = 0,
    timeoutMs: number = CHAOS_CLUSTER_DEFAULTS.waitTimeoutMs,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.countLog(nodeId, pattern) <= than) {
      if (Date.now() > deadline) {
        throw new ChaosWaitError(`no new log line ${pattern} from ${nodeId}`, {
          what: String(pattern),
          timeoutMs,
          work: this.work,
        })
      }
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }

  countLog(nodeId: string, pattern: RegExp): number {
    const text = readFileSync(this.node(nodeId).logFile, 'utf8')
    return text.split('\n').filter((line) => pattern.test(line)).length
  }

  /** Sends a chaos command over NATS and returns once the node acknowledged it. */
  async chaos(nodeId: string, command: ChaosCommand): Promise<void> {
    if (this.#observer === undefined) throw new Error('cluster not started')
    await sendChaosCommand({
      conn: this.#observer,
      nodeId,
      command,
      operatorKey: this.operatorKey,
      timeoutMs: 30_000,
    })
  }

  /** Sends a real signal to the node's current process (by PID) and, for SIGKILL, awaits its exit. */
  async signal(nodeId: string, signal: NodeJS.Signals): Promise<void> {
    const incarnation = this.current(nodeId)
    if (incarnation?.process.pid === undefined) throw new Error(`${nodeId} has no process`)
    process.kill(incarnation.process.pid, signal)
    if (signal === 'SIGKILL') await incarnation.exited
  }

  /** Starts (or restarts) a node; `bootstrap` defaults to every other running server. */
  async startNode(nodeId: string, bootstrap?: readonly string[]): Promise<void> {
    const node = this.node(nodeId)
    const dialList =
      bootstrap ??
      this.serverIds.filter((id) => id !== nodeId && this.running(id)).map((id) => this.address(id, nodeId))
    await this.#spawn(node, dialList)
  }

  /** Starts the late workers together (a burst), each dialling every running server. */
  async startLate(): Promise<void> {
    await Promise.all(this.lateWorkerIds.map((id) => this.startNode(id)))
  }

  /** Stops everything; the node logs stay when `keepLogs` (a failed scenario points at them). */
  async dispose(options: { keepLogs?: boolean } = {}): Promise<void> {
    const incarnations = [...this.nodes.values()].flatMap((node) => node.incarnations)
    // A SIGSTOPped process would keep SIGKILL pending forever only if it were ignored; it is not.
    await Promise.all(incarnations.map((incarnation) => incarnation.kill()))
    this.#watch?.stop()
    await this.#proxy?.close()
    await this.#observer?.close().catch(() => undefined)
    await this.#nats?.dispose()
    if (this.#ownsWork && options.keepLogs !== true) rmSync(this.work, { recursive: true, force: true })
  }

  async #boot(): Promise<void> {
    const init = this.#init
    this.#nats = await startNatsServer()
    this.#observer = connectControl({
      servers: this.#nats.url,
      cluster: init.cluster,
      name: 'chaos-observer',
      log: pino({ level: 'silent' }),
    })
    this.#watch = await watchTelemetry({
      conn: this.#observer,
      onEvent: (event) => {
        this.telemetry.push(event)
        this.#waiters.wake()
      },
    })
    const ids = [
      ...Array.from({ length: init.servers }, (_, i) => `server-${i}`),
      ...this.workerIds,
      ...this.lateWorkerIds,
    ]
    const ports = await freePorts(ids.length)
    const peerIds = await peerIdsOf(this.work, ids)
    for (const [i, nodeId] of ids.entries()) {
      this.nodes.set(nodeId, {
        nodeId,
        role: nodeId.startsWith('server-') ? 'server' : 'worker',
        peerId: peerIds.get(nodeId)!,
        port: ports[i]!,
        keyFile: keyFileOf(this.work, nodeId),
        logFile: logFileOf(this.work, nodeId),
        incarnations: [],
      })
    }
    if (init.proxied !== undefined) {
      this.#proxy = await startFlipProxy({ targetPort: this.node(init.proxied.to).port, seed: init.seed })
      this.#proxy.onChange(() => this.#waiters.wake())
    }
    // Servers one by one, each dialling those before it (as `phalanx local` does), then workers.
    const started: string[] = []
    for (const nodeId of this.serverIds) {
      await this.startNode(
        nodeId,
        started.map((id) => this.address(id, nodeId)),
      )
      started.push(nodeId)
    }
    await Promise.all(this.workerIds.map((id) => this.startNode(id)))
  }

  async #spawn(node: ChaosNode, bootstrap: readonly string[]): Promise<void> {
    const init = this.#init
    const members = [...this.nodes.values()].map((n) => `${n.nodeId}:${n.peerId}`).join(',')
    const incarnation = {
      ...forkNodeProcess({
        work: this.work,
        nodeId: node.nodeId,
        // The suite's own PHALANX_CHAOS_* settings are no node config: a node refuses unknown ones.
        inherited: Object.fromEntries(
          Object.entries(process.env).filter(([name]) => !name.startsWith('PHALANX_')),
        ),
        env: {
          PHALANX_LOG_LEVEL: 'info',
          PHALANX_CLUSTER: init.cluster,
          PHALANX_SERVERS: String(init.servers),
          PHALANX_BYZANTINE_SERVERS: String(init.byzantineServers),
          PHALANX_WORKERS: String(init.workers),
          PHALANX_BYZANTINE_WORKERS: String(init.byzantineWorkers),
          PHALANX_SEED: String(init.seed),
          PHALANX_MEMBERS: members,
          PHALANX_LISTEN: `/ip4/127.0.0.1/tcp/${node.port}`,
          PHALANX_BOOTSTRAP: bootstrap.join(','),
          // What a server pod's volume gives it: its own last models survive a SIGKILL.
          ...(node.role === 'server' ? { PHALANX_STATE_DIR: join(this.work, 'state') } : {}),
          PHALANX_NATS_URL: this.nats.url,
          PHALANX_CHAOS: 'true',
          PHALANX_OPERATOR_PUBLIC_KEY: this.operatorKey.publicKey,
          ...init.env,
          ...init.envOf?.(node.nodeId),
        },
        onChange: () => this.#waiters.wake(),
      }),
      startedAt: Date.now(),
    }
    node.incarnations.push(incarnation)
    await incarnation.listening
  }
}
