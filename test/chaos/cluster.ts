/**
 * A real Phalanx cluster for the chaos suite: one `phalanx server|worker` process per node, forked
 * from the built CLI with `PHALANX_*` variables, libp2p over TCP on loopback, chaos commands and
 * telemetry over a nats-server the suite owns. Every node listens on a fixed port so a restarted
 * node keeps its address (as a StatefulSet pod keeps its name), and every peer key is generated up
 * front so the member set is closed and known to all, late joiners included. Progress comes from
 * the nodes' IPC reports (the same ones `phalanx local` reads), never from sleeping.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  type ChaosCommand,
  type ControlConnection,
  connectControl,
  sendChaosCommand,
  type TelemetryEvent,
  type TelemetryWatch,
  watchTelemetry,
} from '@phalanx/control'
import { loadOrCreatePeerKey } from '@phalanx/net'
import type { NodeReport } from '@phalanx/node'
import pino from 'pino'
import { cliPath } from '../support/cli.js'
import { freePorts, type NatsServerHandle, startNatsServer } from '../support/nats.js'
import { type FlipProxy, startFlipProxy } from './flip-proxy.js'

export type RoundReport = Extract<NodeReport, { type: 'round' }>

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
  /**
   * One link to run through a byte-flipping proxy: `from` dials `to` through it (every start of
   * `from`), so the proxy sits on the connection between the two.
   */
  proxied?: { from: string; to: string }
  /** Where a failed wait points to; also the tests' temporary directory. */
  work?: string
}

/** One incarnation of a node process: its reports, in order, and how it ended. */
export interface Incarnation {
  process: ChildProcess
  rounds: RoundReport[]
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
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

export class ChaosWaitError extends Error {
  override readonly name = 'ChaosWaitError'
  constructor(
    message: string,
    readonly values: { what: string; timeoutMs: number; work: string },
  ) {
    super(`${message} (waited ${values.timeoutMs} ms for ${values.what}; node logs in ${values.work})`)
  }
}

export class NodeStartError extends Error {
  override readonly name = 'NodeStartError'
  constructor(
    readonly nodeId: string,
    readonly exit: { code: number | null; signal: NodeJS.Signals | null },
    readonly logFile: string,
  ) {
    super(`${nodeId} exited before listening (${exit.code ?? exit.signal}); see ${logFile}`)
  }
}

const CHAOS_CLUSTER_DEFAULTS = {
  // Wasm and data loading take several seconds per node on a loaded 2-core machine, and a
  // joining node listens 2.5 s for announcements before it asks for models.
  startTimeoutMs: 120_000,
  // Generous: four other engineers share the two cores; a wait only ends early on success.
  waitTimeoutMs: 180_000,
} as const

export class ChaosCluster {
  readonly nodes = new Map<string, ChaosNode>()
  readonly telemetry: TelemetryEvent[] = []
  readonly work: string
  readonly #init: ChaosClusterInit
  readonly #waiters = new Set<() => void>()
  #nats: NatsServerHandle | undefined
  #proxy: FlipProxy | undefined
  #observer: ControlConnection | undefined
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
    const process = this.current(nodeId)?.process
    return process !== undefined && process.exitCode === null && process.signalCode === null
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
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(check)
        reject(new ChaosWaitError('condition not met', { what, timeoutMs, work: this.work }))
      }, timeoutMs)
      const check = () => {
        if (!predicate()) return
        this.#waiters.delete(check)
        clearTimeout(timer)
        resolve()
      }
      this.#waiters.add(check)
      check()
    })
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
    await sendChaosCommand({ conn: this.#observer, nodeId, command, timeoutMs: 30_000 })
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
    const running = [...this.nodes.values()].flatMap((node) => node.incarnations)
    for (const incarnation of running) {
      const { process } = incarnation
      if (process.exitCode !== null || process.signalCode !== null) continue
      // A SIGSTOPped process would keep SIGKILL pending forever only if it were ignored; it is not.
      process.kill('SIGKILL')
    }
    await Promise.all(running.map((incarnation) => incarnation.exited))
    this.#watch?.stop()
    await this.#proxy?.close()
    await this.#observer?.close().catch(() => undefined)
    await this.#nats?.dispose()
    if (this.#ownsWork && options.keepLogs !== true) rmSync(this.work, { recursive: true, force: true })
  }

  #notify(): void {
    for (const check of [...this.#waiters]) check()
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
        this.#notify()
      },
    })
    const ids = [
      ...Array.from({ length: init.servers }, (_, i) => `server-${i}`),
      ...this.workerIds,
      ...this.lateWorkerIds,
    ]
    const ports = await freePorts(ids.length)
    for (const [i, nodeId] of ids.entries()) {
      const keyFile = join(this.work, `${nodeId}.key`)
      const { key } = await loadOrCreatePeerKey(keyFile)
      this.nodes.set(nodeId, {
        nodeId,
        role: nodeId.startsWith('server-') ? 'server' : 'worker',
        peerId: peerIdFromPrivateKey(key).toString(),
        port: ports[i]!,
        keyFile,
        logFile: join(this.work, `${nodeId}.log`),
        incarnations: [],
      })
    }
    if (init.proxied !== undefined) {
      this.#proxy = await startFlipProxy({ targetPort: this.node(init.proxied.to).port, seed: init.seed })
      this.#proxy.onChange(() => this.#notify())
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

  #env(node: ChaosNode, bootstrap: readonly string[]): NodeJS.ProcessEnv {
    const init = this.#init
    const members = [...this.nodes.values()].map((n) => `${n.nodeId}:${n.peerId}`).join(',')
    // The suite's own PHALANX_CHAOS_* settings are no node config: a node refuses unknown ones.
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !name.startsWith('PHALANX_')),
    )
    return {
      ...inherited,
      PHALANX_LOG_LEVEL: 'info',
      PHALANX_CLUSTER: init.cluster,
      PHALANX_NODE_ID: node.nodeId,
      PHALANX_SERVERS: String(init.servers),
      PHALANX_BYZANTINE_SERVERS: String(init.byzantineServers),
      PHALANX_WORKERS: String(init.workers),
      PHALANX_BYZANTINE_WORKERS: String(init.byzantineWorkers),
      PHALANX_SEED: String(init.seed),
      PHALANX_MEMBERS: members,
      PHALANX_LISTEN: `/ip4/127.0.0.1/tcp/${node.port}`,
      PHALANX_BOOTSTRAP: bootstrap.join(','),
      PHALANX_KEY_FILE: node.keyFile,
      // What a server pod's volume gives it: its own last models survive a SIGKILL.
      ...(node.role === 'server' ? { PHALANX_STATE_DIR: join(this.work, 'state') } : {}),
      PHALANX_NATS_URL: this.nats.url,
      PHALANX_CHAOS: 'true',
      ...init.env,
    }
  }

  #spawn(node: ChaosNode, bootstrap: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const log = openSync(node.logFile, 'a')
      const child = fork(cliPath, [node.role], {
        stdio: ['ignore', log, log, 'ipc'],
        env: this.#env(node, bootstrap),
      })
      closeSync(log)
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
        child.once('exit', (code, signal) => {
          done({ code, signal })
          this.#notify()
        }),
      )
      const incarnation: Incarnation = { process: child, rounds: [], exited, startedAt: Date.now() }
      node.incarnations.push(incarnation)
      let listening = false
      const timer = setTimeout(() => {
        if (!listening) reject(new NodeStartError(node.nodeId, { code: null, signal: null }, node.logFile))
      }, CHAOS_CLUSTER_DEFAULTS.startTimeoutMs)
      child.on('message', (message: NodeReport) => {
        if (message.type === 'listening') {
          listening = true
          clearTimeout(timer)
          resolve()
        } else if (message.type === 'round') {
          incarnation.rounds.push(message)
        }
        this.#notify()
      })
      void exited.then((exit) => {
        clearTimeout(timer)
        if (!listening) reject(new NodeStartError(node.nodeId, exit, node.logFile))
      })
    })
  }
}
