/**
 * The cluster the trust-boundary tests attack: real `phalanx server|worker` processes (forked from
 * the built CLI with `PHALANX_*` variables, libp2p over TCP on loopback), a nats-server of the
 * test's own with one user per role, every node pinned to the test's operator key and serving
 * `/metrics` on a port of its own. Member ids that are listed but never started are the insiders:
 * the test holds their peer keys and NATS credentials and plays them. Progress comes from the nodes'
 * IPC round reports, never from sleeping.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateOperatorKey, type OperatorKey, writeOperatorKey } from '@phalanx/control'
import { freePorts } from '../support/nats.js'
import { forkNodeProcess, keyFileOf, type NodeHandle, peerIdsOf, Waiters } from '../support/node-process.js'
import { type MetricFamily, parsePrometheusText } from '../support/prometheus.js'

export interface SecureClusterInit {
  cluster: string
  servers: number
  byzantineServers: number
  workers: number
  byzantineWorkers: number
  /** Member ids that are never started: the insiders the test plays with their keys. */
  idle: readonly string[]
  /** NATS URL (with that role's credentials) a node connects with. */
  natsUrlOf: (nodeId: string) => string
  /** `PHALANX_*` settings every node gets. */
  env: Readonly<Record<string, string>>
  /** Where keys, logs and state live; kept across `restartAll`. Default: a new temp dir. */
  work?: string
}

export interface SecureNode {
  readonly nodeId: string
  readonly peerId: string
  readonly opsPort: number
  handle: NodeHandle | undefined
}

const SECURE_CLUSTER_DEFAULTS = {
  // Two shared cores start ~9 processes in 20–40 s; a wait only ends early on success.
  waitTimeoutMs: 180_000,
} as const

export class SecureCluster {
  readonly nodes = new Map<string, SecureNode>()
  readonly work: string
  readonly operatorKey: OperatorKey = generateOperatorKey()
  readonly operatorKeyFile: string
  readonly #init: SecureClusterInit
  readonly #waiters = new Waiters()
  readonly #ownsWork: boolean

  private constructor(init: SecureClusterInit) {
    this.#init = init
    this.#ownsWork = init.work === undefined
    this.work = init.work ?? mkdtempSync(join(tmpdir(), 'phalanx-security-'))
    this.operatorKeyFile = join(this.work, 'operator.pem')
  }

  static async start(init: SecureClusterInit, extraEnv: Record<string, string> = {}): Promise<SecureCluster> {
    const cluster = new SecureCluster(init)
    try {
      await writeOperatorKey(cluster.operatorKeyFile, cluster.operatorKey)
      const serverIds = Array.from({ length: init.servers }, (_, i) => `server-${i}`)
      const workerIds = Array.from({ length: init.workers }, (_, i) => `worker-${i}`)
      const ids = [...serverIds, ...workerIds]
      const peerIds = await peerIdsOf(cluster.work, ids)
      const ports = await freePorts(ids.length)
      for (const [i, nodeId] of ids.entries()) {
        cluster.nodes.set(nodeId, {
          nodeId,
          peerId: peerIds.get(nodeId)!,
          opsPort: ports[i]!,
          handle: undefined,
        })
      }
      await cluster.#startAll(extraEnv)
    } catch (error) {
      await cluster.stop()
      throw error
    }
    return cluster
  }

  get members(): string {
    return [...this.nodes.values()].map((node) => `${node.nodeId}:${node.peerId}`).join(',')
  }

  keyFile(nodeId: string): string {
    return keyFileOf(this.work, nodeId)
  }

  node(nodeId: string): SecureNode {
    const node = this.nodes.get(nodeId)
    if (node === undefined) throw new Error(`no node ${nodeId}`)
    return node
  }

  /** The nodes this cluster runs (every member but the idle insiders). */
  get running(): SecureNode[] {
    return [...this.nodes.values()].filter((node) => !this.#init.idle.includes(node.nodeId))
  }

  get servers(): SecureNode[] {
    return this.running.filter((node) => node.nodeId.startsWith('server-'))
  }

  async #startAll(extraEnv: Record<string, string>): Promise<void> {
    const addresses: string[] = []
    const start = (node: SecureNode, bootstrap: readonly string[]) => {
      node.handle = forkNodeProcess({
        work: this.work,
        nodeId: node.nodeId,
        onChange: () => this.#waiters.wake(),
        env: {
          PHALANX_CLUSTER: this.#init.cluster,
          PHALANX_SERVERS: String(this.#init.servers),
          PHALANX_BYZANTINE_SERVERS: String(this.#init.byzantineServers),
          PHALANX_WORKERS: String(this.#init.workers),
          PHALANX_BYZANTINE_WORKERS: String(this.#init.byzantineWorkers),
          PHALANX_MEMBERS: this.members,
          PHALANX_BOOTSTRAP: bootstrap.join(','),
          PHALANX_NATS_URL: this.#init.natsUrlOf(node.nodeId),
          PHALANX_OPS_PORT: String(node.opsPort),
          PHALANX_OPS_HOST: '127.0.0.1',
          PHALANX_CHAOS: 'true',
          PHALANX_OPERATOR_PUBLIC_KEY: this.operatorKey.publicKey,
          ...this.#init.env,
          ...extraEnv,
        },
      })
      return node.handle.listening
    }
    for (const server of this.servers) addresses.push(...(await start(server, addresses)))
    await Promise.all(
      this.running.filter((n) => n.nodeId.startsWith('worker-')).map((n) => start(n, addresses)),
    )
  }

  /** Every running node SIGKILLed, then all started again on the same keys (a full restart). */
  /**
   * Stops every running node and starts it again; resolves with the newest round each server
   * reported in the incarnation it stopped, read once that incarnation has exited (the nodes run
   * on until they are stopped, so a round read earlier may already be behind their checkpoints).
   */
  async restartAll(extraEnv: Record<string, string> = {}): Promise<Map<string, number>> {
    await Promise.all(this.running.map((node) => node.handle?.kill()))
    const lastRounds = new Map(this.servers.map((server) => [server.nodeId, this.serverRound(server.nodeId)]))
    await this.#startAll(extraEnv)
    return lastRounds
  }

  /** The newest round every honest running server reported in its current incarnation. */
  serverRound(nodeId: string): number {
    const rounds = this.node(nodeId).handle?.rounds ?? []
    return rounds.length === 0 ? -1 : rounds[rounds.length - 1]!.round
  }

  /**
   * Resolves once every running server (or every one of `only`) reported round `round` or later;
   * fails at once if one of the nodes it waits on exits.
   */
  async untilRound(
    round: number,
    options: { only?: readonly string[]; timeoutMs?: number } = {},
  ): Promise<void> {
    const timeoutMs = options.timeoutMs ?? SECURE_CLUSTER_DEFAULTS.waitTimeoutMs
    const waitedOn = this.running.filter((node) => options.only?.includes(node.nodeId) ?? true)
    await this.#waiters.until(
      () => {
        for (const node of waitedOn) {
          if (node.handle !== undefined && !node.handle.running()) {
            throw new Error(`${node.nodeId} exited; logs in ${this.work}`)
          }
        }
        return waitedOn
          .filter((node) => node.nodeId.startsWith('server-'))
          .every((server) => this.serverRound(server.nodeId) >= round)
      },
      timeoutMs,
      () =>
        new Error(
          `servers did not reach round ${round} in ${timeoutMs} ms (at ${this.servers
            .map((s) => `${s.nodeId}:${this.serverRound(s.nodeId)}`)
            .join(', ')}); logs in ${this.work}`,
        ),
    )
  }

  /** Mean accuracy of the running servers per evaluated round (their current incarnations). */
  accuracyByRound(): Map<number, number> {
    const byRound = new Map<number, number[]>()
    for (const server of this.servers) {
      for (const report of server.handle?.rounds ?? []) {
        if (report.accuracy === undefined) continue
        byRound.set(report.round, [...(byRound.get(report.round) ?? []), report.accuracy])
      }
    }
    return new Map([...byRound].map(([round, values]) => [round, meanOf(values)]))
  }

  async metrics(nodeId: string): Promise<Map<string, MetricFamily>> {
    const response = await fetch(`http://127.0.0.1:${this.node(nodeId).opsPort}/metrics`)
    return parsePrometheusText(await response.text())
  }

  /** `phalanx_control_rejected_total` of a node, as `kind/reason` → count. */
  async controlRejected(nodeId: string): Promise<Record<string, number>> {
    return labelledCounts(await this.metrics(nodeId), 'phalanx_control_rejected_total', ['kind', 'reason'])
  }

  /** `phalanx_connections_refused_total` of a node. */
  async connectionsRefused(nodeId: string): Promise<number> {
    return labelledCounts(await this.metrics(nodeId), 'phalanx_connections_refused_total', [])[''] ?? 0
  }

  /** `phalanx_rejected_messages_total` of a node, by reason. */
  async rejectedMessages(nodeId: string): Promise<Record<string, number>> {
    return labelledCounts(await this.metrics(nodeId), 'phalanx_rejected_messages_total', ['reason'])
  }

  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((node) => node.handle?.kill()))
    if (this.#ownsWork) rmSync(this.work, { recursive: true, force: true })
  }
}

export function labelledCounts(
  families: Map<string, MetricFamily>,
  family: string,
  labels: readonly string[],
): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const sample of families.get(family)?.samples ?? []) {
    counts[labels.map((label) => sample.labels[label]).join('/')] = sample.value
  }
  return counts
}

/** Mean of the values of a map (the honest servers' accuracies). */
export function meanOf(values: Iterable<number>): number {
  const list = [...values]
  return list.reduce((a, b) => a + b, 0) / list.length
}
