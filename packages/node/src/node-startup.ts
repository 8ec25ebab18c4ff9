/**
 * A node process's start-up phase: the config checked, the model built (its layout and initial
 * parameters: no tensor code yet), the data plane listening (subscribed as its replication mode
 * says), then the tensor backend and the dataset loading in the background, the control plane,
 * checkpoints and, for a server that keeps state, its state store and signing guard. What it
 * returns is everything the later phases (where to start, the server or worker loop) use.
 *
 * Why the data plane comes before TensorFlow.js: `phalanx local` starts the servers one after
 * another, each once the one before listens, so whatever a server does before listening is paid
 * N times in a row; and the backend and dataset load while the node listens for a running
 * cluster (`joinListenMs`), which it does anyway. The start-up still fails on a backend that
 * cannot start: `startingPoint` awaits them before the node reports `started` and runs a round.
 */

import type { ChaosCommand } from '@phalanx/control'
import {
  type BackendInfo,
  createModel,
  type Dataset,
  initBackend,
  loadDataset,
  type Model,
} from '@phalanx/model'
import { createMembership, createNetNode, type NetNode } from '@phalanx/net'
import type { Logger } from 'pino'
import { type ChaosActions, createChaosActions } from './chaos-actions.js'
import { configHash, createNodeCheckpoints, type NodeCheckpoints } from './checkpointing.js'
import { checkClusterBounds } from './cluster-bounds.js'
import type { ClusterConfig } from './config.js'
import { attachControlPlane, type ControlPlane, configuredMembers, roleOfNodeId } from './control-plane.js'
import { ConfigError } from './errors.js'
import { type Failpoints, parseFailpoints } from './failpoints.js'
import { createHealth, withHeartbeat } from './health.js'
import { netTransport } from './net-transport.js'
import type { NodeReport } from './node-report.js'
import type { RoundEvent } from './protocol.js'
import type { ReplicationMode } from './replication/mode.js'
import { replicationMode } from './replication/registry.js'
import { forgedCheckpoints, isByzantine, nodeIndex, serverQuorum } from './roles.js'
import {
  createServerStateStore,
  createSigningGuard,
  guardModelPublish,
  type ServerStateStore,
  type SigningGuard,
} from './server-state.js'
import type { RoundTransport } from './transport.js'

export interface NodeProcessInit {
  config: ClusterConfig
  log: Logger
  /**
   * Where the node's reports go (the `phalanx local` parent, over IPC). It may return a promise
   * that settles once the message is on its way: a chaos kill waits for it before it ends the
   * process.
   */
  report?: (message: NodeReport) => void | Promise<void>
  signal: AbortSignal
}

/** A started node: what the later phases run on. `close` stops everything it started. */
export interface StartedNode {
  config: ClusterConfig
  nodeId: string
  role: 'server' | 'worker'
  /** Its index among the nodes of its role (`nodeIndex`). */
  index: number
  byzantine: boolean
  mode: ReplicationMode
  log: Logger
  signal: AbortSignal
  /** Layout, dimension, initial parameters; its tensor functions need `tensors()` first. */
  model: Model
  /**
   * Whether it runs tensor code at all: a Byzantine server does not (it never evaluates, and its
   * attacks are arithmetic on the models it receives), so it never loads TensorFlow.js or data.
   */
  computes: boolean
  /** The tensor backend and the dataset, loaded once per process (from when a node that computes listens). */
  tensors: () => Promise<NodeTensors>
  chaos: ChaosActions
  node: NetNode
  /** The data plane as the round protocol sees it; its calls beat the liveness probe. */
  transport: RoundTransport
  /** `transport`, with a server's model publishes guarded by its signing watermark (if it keeps one). */
  serverTransport: RoundTransport
  checkpoints: NodeCheckpoints | undefined
  stateStore: ServerStateStore | undefined
  signing: SigningGuard | undefined
  failpoints: Failpoints
  /** Sends a report to the parent, the probes and the control plane. */
  report(message: NodeReport): void
  /** What every role records of a completed round; servers add evaluation, distances, drift. */
  roundRecord(event: RoundEvent): Extract<NodeReport, { type: 'round' }>
  close(): Promise<void>
}

/** What a node computes with: the backend started and the dataset loaded. */
export interface NodeTensors {
  backend: BackendInfo
  data: { train: Dataset; test: Dataset }
}

export async function startNode(init: NodeProcessInit): Promise<StartedNode> {
  const { config, signal } = init
  const nodeId = config.nodeId
  if (nodeId === undefined) {
    throw new ConfigError('a node needs its id', {
      field: 'nodeId',
      value: undefined,
      allowed: 'server-<i> or worker-<suffix>',
    })
  }
  checkClusterBounds(config)
  const role = roleOfNodeId(nodeId)
  const log = init.log.child({ nodeId, role })
  const byzantine = isByzantine(config, nodeId)
  const mode = replicationMode(config.replication)
  const index = nodeIndex(nodeId, role === 'server' ? config.servers : config.workers)
  // --- control plane (ops endpoints, NATS telemetry, chaos commands; see control-plane.ts) ---
  let control: ControlPlane | undefined
  const chaos = createChaosActions({
    config,
    log,
    role,
    index,
    readsGradients: role === 'worker' && byzantine,
  })
  // What the probes answer (health.ts): readiness follows completed rounds, liveness the loop's beats.
  const health = createHealth({
    quorumTimeoutMs: config.quorumTimeoutMs,
    heartbeat: mode.heartbeat,
    paused: () => chaos.paused(),
  })
  // The round the node works on, for what it reports outside a round (a chaos command).
  let currentRound = 0
  const report = (message: NodeReport) => {
    if (message.type === 'started') currentRound = message.round
    else if (message.type === 'round') currentRound = message.round + 1
    void init.report?.(message)
    if (message.type === 'round') health.roundCompleted(message.round)
    else if (message.type === 'started') health.started()
    else if (message.type === 'done') health.finished()
    if (message.type === 'round') control?.roundCompleted(message)
    else if (message.type === 'started') control?.started(message.round)
  }
  // --- end control plane ---

  const model = createModel(config.model, { seed: config.seed, dimension: config.dimension })
  const computes = !(role === 'server' && byzantine)
  let loading: Promise<NodeTensors> | undefined
  const tensors = (): Promise<NodeTensors> => {
    loading ??= (async () => ({
      backend: await initBackend({ backend: config.backend, logger: log }),
      data: await loadDataset(config.dataset, {
        ...(config.datasetPath === undefined ? {} : { fashionMnistDir: config.datasetPath }),
        seed: config.seed,
        dimension: config.dimension,
      }),
    }))()
    return loading
  }

  const membership = chaos.membership(
    createMembership({
      members: configuredMembers(config).map((member) => [member.peerId, member.role] as const),
      closed: config.members.length > 0,
    }),
  )
  const subscribe = mode.subscriptions(role, byzantine)
  const node = await createNetNode({
    cluster: config.cluster,
    role,
    dimension: model.dimension,
    membership,
    logger: log,
    listen: config.listen,
    bootstrap: config.bootstrap,
    encrypter: config.encrypter,
    ...(config.keyFile === undefined ? {} : { keyFile: config.keyFile }),
    roundWindowAhead: config.roundWindow,
    epoch: config.epoch,
    payloadPlane: config.payloadPlane,
    payloadListen: { port: config.payloadPort },
    // Byzantine-only publishing for a Byzantine node, and for one chaos may corrupt at run time.
    adversary: byzantine || config.chaos,
    ...(subscribe === undefined ? {} : { subscribe }),
  })
  await node.start()
  chaos.attach(node)
  report({ type: 'listening', nodeId, peerId: node.peerId, multiaddrs: node.multiaddrs() })
  log.info({ peerId: node.peerId, multiaddrs: node.multiaddrs(), byzantine }, 'node started')
  // In the background from here; a failure is thrown where it is awaited (`startingPoint`).
  if (computes) tensors().catch(() => {})
  const transport = withHeartbeat(netTransport(node, { serverQuorum: serverQuorum(config) }), () =>
    health.beat(),
  )
  let cpuAtLastReport = process.cpuUsage()
  // The transport counts rejections since start; a record carries those of its round.
  const rejectedSoFar: Record<string, number> = {}
  const roundRecord = (event: RoundEvent): Extract<NodeReport, { type: 'round' }> => {
    // One reading per record, so no CPU falls between two of them.
    const cpu = process.cpuUsage()
    const used = { user: cpu.user - cpuAtLastReport.user, system: cpu.system - cpuAtLastReport.system }
    cpuAtLastReport = cpu
    const rejectedSinceStart = transport.rejected()
    const rejected: Record<string, number> = {}
    for (const [reason, total] of Object.entries(rejectedSinceStart)) {
      const delta = total - (rejectedSoFar[reason] ?? 0)
      rejectedSoFar[reason] = total
      if (delta > 0) rejected[reason] = delta
    }
    return {
      type: 'round',
      nodeId,
      ...event,
      cpuSeconds: (used.user + used.system) / 1e6,
      rejected,
      rejectedSinceStart,
      suspicions: [],
    }
  }
  const onAbort = () => void node.stop()
  signal.addEventListener('abort', onAbort, { once: true })
  const close = async () => {
    signal.removeEventListener('abort', onAbort)
    chaos.close()
    await control?.close()
    await node.stop()
  }

  try {
    // The state store and signing guard exist only once the control plane is attached; until then
    // nothing was refused.
    let stateRefusals = (): Record<string, number> => ({})
    control = await attachControlPlane({
      config,
      log,
      nodeId,
      role,
      onChaos: async (command) => {
        // Reported before it runs, so the run's report marks it at its round (a kill ends the process).
        await init.report?.({ type: 'chaos', nodeId, round: currentRound, command: chaosLabel(command) })
        return chaos.execute(command)
      },
      membership,
      self: { peerId: node.peerId, multiaddrs: node.multiaddrs(), sign: (statement) => node.sign(statement) },
      netCounters: () => node.counters,
      stateCounters: () => stateRefusals(),
      health,
      takeEvidence: () => node.takeEvidence(),
    })
    const plane = control
    const checkpoints =
      control.connection !== undefined && config.checkpointEvery > 0
        ? createNodeCheckpoints({
            config,
            conn: control.connection,
            log,
            peerId: node.peerId,
            sign: (statement) => node.sign(statement),
            memberServers: () => plane.memberServers(),
            dimension: model.dimension,
            ...(byzantine ? { forge: forgedCheckpoints(config) } : {}),
          })
        : undefined
    // Test-only crash points on the save-then-publish path (failpoints.ts); none when unset.
    const failpoints = parseFailpoints(process.env.PHALANX_FAILPOINTS)
    const stateInit =
      role === 'server' && mode.keepsServerState && config.stateDir !== undefined
        ? {
            dir: config.stateDir,
            cluster: config.cluster,
            nodeId,
            configHash: configHash(config),
            log,
            failpoints,
          }
        : undefined
    const stateStore =
      stateInit && createServerStateStore({ ...stateInit, dimension: model.dimension, rounds: config.rounds })
    // What it signed survives what corrupts the state file; Byzantine servers are left unguarded.
    const signing = stateInit && !byzantine ? createSigningGuard(stateInit) : undefined
    const serverTransport = signing ? guardModelPublish(transport, signing, failpoints) : transport
    stateRefusals = () => ({
      state_file: stateStore?.counters.state_files_refused_total ?? 0,
      watermark_file: signing?.counters.watermark_files_refused_total ?? 0,
      signature: signing?.counters.signatures_refused_total ?? 0,
    })
    return {
      config,
      nodeId,
      role,
      index,
      byzantine,
      mode,
      log,
      signal,
      model,
      computes,
      tensors,
      chaos,
      node,
      transport,
      serverTransport,
      checkpoints,
      stateStore: stateStore || undefined,
      signing,
      failpoints,
      report,
      roundRecord,
      close,
    }
  } catch (error) {
    await close()
    throw error
  }
}

/** A chaos command in one line: its kind, and what it was given (`corrupt reversed`, `partition 5000 ms`). */
function chaosLabel(command: ChaosCommand): string {
  if (command.kind === 'corrupt') return `corrupt ${command.attack}`
  if (command.kind === 'partition') return `partition ${command.durationMs} ms`
  return command.kind
}
