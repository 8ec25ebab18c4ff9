/**
 * One server or worker as a long-running process (what `phalanx server` / `phalanx worker`
 * and a container run): data plane up, model and data loaded, then the round protocol until
 * the configured number of rounds. Progress goes to the logger and, when the process was
 * started by `phalanx local`, to the parent over IPC.
 */

import { isPhalanxError } from '@phalanx/errors'
import {
  type ClassificationDataset,
  createModel,
  type Dataset,
  flipLabels,
  initBackend,
  loadDataset,
  partition,
} from '@phalanx/model'
import { createMembership, createNetNode, type NetNode } from '@phalanx/net'
import type { Logger } from 'pino'
import { createChaosActions } from './chaos-actions.js'
import { configHash, createNodeCheckpoints, describeAgreed } from './checkpointing.js'
import type { ClusterConfig } from './config.js'
import { attachControlPlane, type ControlPlane, configuredMembers, roleOfNodeId } from './control-plane.js'
import { ConfigError } from './errors.js'
import { parseFailpoints } from './failpoints.js'
import { createHealth, withHeartbeat } from './health.js'
import { netTransport } from './net-transport.js'
import {
  catchUpCheckEveryMs,
  honestServer,
  honestWorker,
  type RoundEvent,
  retransmitEveryMs,
  runServer,
  runWorker,
} from './protocol.js'
import {
  checkClusterBounds,
  createAggregator,
  forgedCheckpoints,
  gradientQuorum,
  isByzantine,
  modelMedian,
  serverBehaviour,
  serverQuorum,
  workerBehaviour,
  workerGradient,
} from './roles.js'
import {
  createServerStateStore,
  createSigningGuard,
  guardModelPublish,
  type ServerState,
} from './server-state.js'
import { runSmrServer, runSmrWorker, smrReplicaOrder } from './smr.js'
import type { RoundVector } from './transport.js'

/** Messages a node sends to the `phalanx local` parent (and logs, in any case). */
export type NodeReport =
  | { type: 'listening'; nodeId: string; peerId: string; multiaddrs: string[] }
  | { type: 'started'; nodeId: string; round: number; backend: string }
  | {
      type: 'round'
      nodeId: string
      round: number
      roundSeconds: number
      quorumWaitSeconds: number
      /**
       * CPU (user + system, every thread of the process) used since the node's previous round
       * report: what the node would need of a machine of its own, whatever else shares this one.
       */
      cpuSeconds: number
      accuracy?: number | undefined
      loss?: number | undefined
      /** ℓ2 distance from this server's published model of the round to each received one, by peer id. */
      distances?: Record<string, number>
      /** Peers whose gradients this server aggregated in the round (servers only). */
      gradientSenders?: string[]
      rejected: Record<string, number>
    }
  | { type: 'done'; nodeId: string; round: number; accuracy?: number | undefined; loss?: number | undefined }

export interface NodeProcessInit {
  config: ClusterConfig
  log: Logger
  report?: (message: NodeReport) => void
  signal: AbortSignal
}

/** A node's role is its id's prefix (one definition, in control-plane.ts, where members are parsed). */
export const roleOf = roleOfNodeId

/** The index in `server-<i>` / `worker-<i>`, or a stable hash of a Deployment pod's suffix. */
export function nodeIndex(nodeId: string, count: number): number {
  const suffix = nodeId.slice(nodeId.indexOf('-') + 1)
  if (/^\d+$/.test(suffix)) return Number(suffix)
  let hash = 2166136261
  for (const char of suffix) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0
  return hash % count
}

/** Distances from `own` to each received model, by sender. */
function distancesTo(own: Float32Array, node: NetNode, round: number): Record<string, number> {
  const distances: Record<string, number> = {}
  for (const received of node.received('model', round)) {
    if (received.self) continue
    let sum = 0
    for (let i = 0; i < own.length; i++) {
      const delta = own[i]! - received.vector[i]!
      sum += delta * delta
    }
    distances[received.sender] = Math.sqrt(sum)
  }
  return distances
}

export async function runNodeProcess(init: NodeProcessInit): Promise<void> {
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
  const role = roleOf(nodeId)
  const log = init.log.child({ nodeId, role })
  const byzantine = isByzantine(config, nodeId)
  // SMR baseline (smr.ts): gradients travel through the replicated log, not libp2p.
  const smr = config.replication === 'smr'
  // --- control plane (ops endpoints, NATS telemetry, chaos commands; see control-plane.ts) ---
  let control: ControlPlane | undefined
  const chaos = createChaosActions({
    config,
    log,
    role,
    index: nodeIndex(nodeId, role === 'server' ? config.servers : config.workers),
    readsGradients: role === 'worker' && byzantine,
  })
  // What the probes answer (health.ts): readiness follows completed rounds, liveness the loop's beats.
  const health = createHealth({
    quorumTimeoutMs: config.quorumTimeoutMs,
    heartbeat: !smr,
    paused: () => chaos.paused(),
  })
  const report = (message: NodeReport) => {
    init.report?.(message)
    if (message.type === 'round') health.roundCompleted(message.round)
    else if (message.type === 'started') health.started()
    else if (message.type === 'done') health.finished()
    if (message.type === 'round') control?.roundCompleted(message)
  }
  // --- end control plane ---

  const backend = await initBackend({ backend: config.backend, logger: log })
  const data = await loadDataset(config.dataset, {
    ...(config.datasetPath === undefined ? {} : { fashionMnistDir: config.datasetPath }),
    seed: config.seed,
    dimension: config.dimension,
  })
  const model = createModel(config.model, { seed: config.seed, dimension: config.dimension })

  const membership = chaos.membership(
    createMembership({
      members: configuredMembers(config).map((member) => [member.peerId, member.role] as const),
      closed: config.members.length > 0,
    }),
  )
  const node = await createNetNode({
    cluster: config.cluster,
    role,
    dimension: model.dimension,
    membership,
    logger: log,
    listen: config.listen,
    bootstrap: config.bootstrap,
    ...(config.keyFile === undefined ? {} : { keyFile: config.keyFile }),
    roundWindowAhead: config.roundWindow,
    epoch: config.epoch,
    // Colluding Byzantine workers read the honest gradients of the round before they send.
    ...(role === 'worker' && byzantine ? { subscribe: ['model', 'gradient'] as const } : {}),
    // SMR replicas receive nothing over libp2p: they only publish their model to the workers.
    ...(role === 'server' && smr ? { subscribe: [] } : {}),
  })
  await node.start()
  chaos.attach(node)
  report({ type: 'listening', nodeId, peerId: node.peerId, multiaddrs: node.multiaddrs() })
  log.info(
    { peerId: node.peerId, multiaddrs: node.multiaddrs(), byzantine, backend: backend.name },
    'node started',
  )
  const transport = withHeartbeat(netTransport(node, { serverQuorum: serverQuorum(config) }), () =>
    health.beat(),
  )
  /** What every role reports of a completed round; servers add evaluation, distances, senders. */
  let cpuAtLastReport = process.cpuUsage()
  const roundReport = (event: RoundEvent) => {
    // One reading per report, so no CPU falls between two of them.
    const cpu = process.cpuUsage()
    const used = { user: cpu.user - cpuAtLastReport.user, system: cpu.system - cpuAtLastReport.system }
    cpuAtLastReport = cpu
    return {
      type: 'round' as const,
      nodeId,
      round: event.round,
      roundSeconds: event.roundSeconds,
      quorumWaitSeconds: event.quorumWaitSeconds,
      cpuSeconds: (used.user + used.system) / 1e6,
      rejected: transport.rejected(),
    }
  }
  const onAbort = () => void node.stop()
  signal.addEventListener('abort', onAbort, { once: true })

  // The state store and signing guard exist only once the control plane is attached; until then
  // nothing was refused.
  let stateRefusals = (): Record<string, number> => ({})
  try {
    control = await attachControlPlane({
      config,
      log,
      nodeId,
      role,
      onChaos: (command) => chaos.execute(command),
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
      role === 'server' && !smr && config.stateDir !== undefined
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
    // Its own state first: a restarted server goes on from where it stopped, whether or not N−F
    // others are there to join from (catching up from their median if the cluster moved on).
    const saved = stateStore?.load()
    const start = saved
      ? { round: saved.next.round, model: saved.next.model, publishFirst: true }
      : await joinOrResume(
          node,
          transport,
          config,
          log,
          signal,
          smr,
          checkpoints,
          signing?.highestSigned,
          role,
        )
    signing?.started({
      ...start,
      resumedFromState: saved !== undefined,
      heardRound: node.clusterRound(config.byzantineServers + 1) ?? start.round,
    })
    if (saved) {
      log.info(
        { round: saved.next.round, published: saved.published?.round, path: stateStore?.path },
        "resuming from this server's saved state",
      )
    }
    // A server back from its saved state rejoins a running cluster (or one whose servers all
    // restart): its peers redial it at their own pace, and what they miss of its first publish
    // they get from its re-announcements and pulls. Waiting for a full set of subscribers here hung
    // a restarted server for good in the chaos suite.
    if (start.publishFirst && !smr && !saved) {
      // Everyone the quorums need must hear the first round: wait until enough peers subscribe before
      // the first publish (gossip has no history).
      const peersNeeded = role === 'server' ? serverQuorum(config) - 1 + gradientQuorum(config) : 1
      await node.waitForSubscribers(role === 'server' ? 'model' : 'gradient', Math.max(1, peersNeeded), {
        signal,
      })
    }
    // Announced again so that peers one round behind, which may lack it, can finish that round.
    if (saved?.published) await serverTransport.publish('model', saved.published.round, saved.published.model)
    report({ type: 'started', nodeId, round: start.round, backend: backend.name })

    if (role === 'server') {
      const index = nodeIndex(nodeId, config.servers)
      const evaluate = (params: Float32Array) => model.evaluate(params, data.test)
      let lastEvaluation: { accuracy?: number | undefined; loss?: number | undefined } = {}
      const shared = {
        log,
        gradientQuorum: gradientQuorum(config),
        aggregate: createAggregator(config),
        learningRate: () => config.learningRate,
        behaviour: chaos.serverBehaviour(byzantine ? serverBehaviour(config, index) : honestServer),
        onRound: (event: RoundEvent, next: Float32Array) => {
          const last = event.round === config.rounds - 1
          let evaluation: { accuracy?: number | undefined; loss?: number | undefined } = {}
          if (!byzantine && ((event.round + 1) % config.evalEvery === 0 || last)) {
            const { accuracy, loss } = evaluate(next)
            evaluation = { accuracy, loss }
            lastEvaluation = evaluation
          }
          const published = node.received('model', event.round).find((v) => v.self)?.vector
          // Before anything else and before `next` is published (at the start of the next round).
          stateStore?.save(savedState(event.round, next, published))
          report({
            ...roundReport(event),
            ...evaluation,
            ...(published && !byzantine ? { distances: distancesTo(published, node, event.round) } : {}),
            ...(event.gradientSenders === undefined ? {} : { gradientSenders: event.gradientSenders }),
          })
          if (checkpoints !== undefined && (event.round + 1) % config.checkpointEvery === 0) {
            checkpoints.save(event.round + 1, next)
          }
          void node.announce().catch(() => {})
          return chaos.betweenRounds(signal)
        },
      }
      const result = smr
        ? await runSmrServer({ ...shared, config, nodeId, node }, model.parameters(), config.rounds, signal)
        : await runServer(
            {
              ...shared,
              transport: serverTransport,
              serverQuorum: serverQuorum(config),
              median: modelMedian,
              antiDrift: config.replication === 'median',
              exchangeEvery: config.exchangeEvery,
              quorumTimeoutMs: config.quorumTimeoutMs,
            },
            start.model === undefined
              ? { round: 0, model: model.parameters(), publishFirst: true }
              : // Joining a running cluster, it may have published this round before it restarted: a
                // second, different model would be equivocation, so it publishes from the next round on.
                { round: start.round, model: start.model, publishFirst: start.publishFirst },
            config.rounds,
            signal,
          )
      report({ type: 'done', nodeId, round: result.round, ...lastEvaluation })
    } else {
      const index = nodeIndex(nodeId, config.workers)
      const shards = partition(data.train, { scheme: 'iid', workers: config.workers, seed: config.seed })
      let shard: Dataset = shards[index % shards.length]!
      if (byzantine && config.workerAttack === 'label-flip' && shard.task === 'classification') {
        shard = flipLabels(shard as ClassificationDataset, {})
      }
      const gradient = workerGradient(model, shard, {
        batchSize: config.batchSize,
        momentum: config.momentum,
        seed: config.seed * 1_000_003 + index,
      })
      const honestWorkers = config.workers - config.byzantineWorkers
      const shared = {
        log,
        gradient,
        behaviour: chaos.workerBehaviour(byzantine ? workerBehaviour(config, index) : honestWorker),
        onRound: (event: RoundEvent) => {
          report(roundReport(event))
          return chaos.betweenRounds(signal)
        },
      }
      const round = smr
        ? await runSmrWorker(
            { ...shared, config, nodeId, node, replicas: smrReplicaOrder(config, index) },
            config.rounds,
            signal,
          )
        : await runWorker(
            {
              ...shared,
              transport,
              serverQuorum: serverQuorum(config),
              median: modelMedian,
              quorumTimeoutMs: config.quorumTimeoutMs,
              // Colluding attackers read about half the honest gradients: enough for the mean and
              // spread, early enough to land in the servers' first n−f.
              collusionQuorum: Math.max(2, Math.ceil(honestWorkers / 2)),
            },
            start.round,
            config.rounds,
            signal,
          )
      report({ type: 'done', nodeId, round })
    }
    // Peers pull payloads from whoever announced them: a node that left right after its last
    // publish would take its last vector with it. It keeps serving until it is told to stop.
    // It also keeps re-announcing its last two rounds, so a straggler can still finish them.
    log.info({ rounds: config.rounds }, 'training finished; serving until stopped')
    const lastKind = role === 'server' ? 'model' : 'gradient'
    const linger = setInterval(() => {
      for (const round of [config.rounds - 2, config.rounds - 1]) {
        node
          .republish(lastKind, round)
          .catch((error: unknown) => log.debug({ err: error }, 'republish failed'))
      }
    }, retransmitEveryMs)
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve()
      signal.addEventListener('abort', () => resolve(), { once: true })
    })
    clearInterval(linger)
  } finally {
    signal.removeEventListener('abort', onAbort)
    chaos.close()
    await control?.close()
    await node.stop()
  }
}

function savedState(round: number, next: Float32Array, published: Float32Array | undefined): ServerState {
  return {
    next: { round: round + 1, model: next },
    ...(published === undefined ? {} : { published: { round, model: published } }),
  }
}

/**
 * Where a node without saved state starts: joined to a running cluster from the median of N−F
 * models, else resumed from the checkpoint N−F servers agree on (the whole cluster restarted),
 * else round 0 with its seeded model.
 */
async function joinOrResume(
  node: NetNode,
  transport: ReturnType<typeof netTransport>,
  config: ClusterConfig,
  log: Logger,
  signal: AbortSignal,
  smr: boolean,
  checkpoints: ReturnType<typeof createNodeCheckpoints> | undefined,
  highestSigned: number | undefined,
  role: 'server' | 'worker',
): Promise<{ round: number; model?: Float32Array; publishFirst: boolean }> {
  // Looked up while the node listens for a running cluster.
  const agreed = smr ? undefined : checkpoints?.agreed()
  // An SMR replica replays the log from its start instead of joining from the models' median.
  const clusterRound = smr ? 0 : await announcedClusterRound(node, config, signal)
  // A running cluster past the checkpoint wins (its models are newer). One announcing the
  // checkpoint's round or less is the cluster restarted as a whole, its servers already resumed
  // from it (and announcing while they wait for the rest): the checkpoint is where to start.
  // The one cost: a lone server restarted (without stateDir) right after publishing the model of
  // a checkpoint round that the others still announce publishes the agreed model for that round,
  // not its own, and its peers drop it for that round as an equivocator. Resuming only past the
  // announced round instead would leave servers of a whole-cluster restart that start late (a
  // pod scheduled later) joining without publishing, short of N−F models for good.
  // A worker takes only a round from a checkpoint, and the servers it hears give it one as well
  // (a whole-cluster restart's servers announce the checkpoint's round): it joins them without
  // awaiting the lookup, which lists every checkpoint object of the run, a Byzantine server's
  // forgeries included, and so took longer the longer the run (the soak's flapping worker: 4.5 s
  // at round 60, 39 s at round 1,400).
  if (role === 'worker' && clusterRound > 0)
    return { ...(await joinRunning(transport, config, log, signal, clusterRound)), publishFirst: false }
  const resumed = await agreed
  if (resumed !== undefined && resumed.round >= clusterRound) {
    log.info(describeAgreed(resumed), 'resuming from the agreed checkpoint')
    // No running peer holds a model of this round, so the servers publish it afresh, from the
    // agreed model.
    return { round: resumed.round, model: resumed.model, publishFirst: true }
  }
  // Hearing nobody means a cluster not yet started only for a server that never signed: one whose
  // watermark names a round has been running, its peers are restarting too, and round 0 afresh
  // would be a second model for rounds it signed. It waits for N−F models of a round instead.
  if (clusterRound === 0 && highestSigned === undefined) return { round: 0, publishFirst: true }
  return { ...(await joinRunning(transport, config, log, signal, clusterRound)), publishFirst: false }
}

/**
 * How long a starting node listens for servers' announcements of a round already under way.
 * Servers announce after every round (about one a second here), so two seconds hear one.
 */
export const joinListenMs = 2_500

/**
 * The round servers are at, listening `joinListenMs`: the highest round N−F member servers have
 * signed (announced, or published a model of; `NetNode.clusterRound`), which F Byzantine servers
 * or outsiders cannot reach alone; 0 when none is heard (the cluster has not started).
 */
async function announcedClusterRound(
  node: NetNode,
  config: ClusterConfig,
  signal: AbortSignal,
): Promise<number> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, joinListenMs)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
  signal.throwIfAborted()
  return node.clusterRound(serverQuorum(config)) ?? 0
}

/**
 * Joins a cluster running at `clusterRound` (a restart, a late joiner): the newest round with
 * N−F models, starting from their median (the brief's state transfer: no log).
 */
async function joinRunning(
  transport: ReturnType<typeof netTransport>,
  config: ClusterConfig,
  log: Logger,
  signal: AbortSignal,
  clusterRound: number,
): Promise<{ round: number; model: Float32Array }> {
  transport.setRound(clusterRound)
  const { round, vectors } = await newestModels(transport, config, log, signal)
  log.info(
    { clusterRound, round, from: vectors.map((v) => v.sender) },
    'joined a running cluster from the median of N−F models',
  )
  return { round, model: modelMedian(vectors.map((v) => v.vector)) }
}

/**
 * N−F models of the newest round this node can get, waiting as long as it takes (a node never
 * starts from fewer). A cluster running faster than `roundWindow` rounds per check leaves the
 * window behind: the chaos suite saw a restarted server find 2 of 3 models, give up after one
 * quorum timeout and exit. Each check moves the window to where N−F member servers signed they are.
 */
async function newestModels(
  transport: ReturnType<typeof netTransport>,
  config: ClusterConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<{ round: number; vectors: RoundVector[] }> {
  const quorum = serverQuorum(config)
  let waited = 0
  for (;;) {
    try {
      return await transport.newest('model', { quorum, timeoutMs: catchUpCheckEveryMs, signal })
    } catch (error) {
      if (!isPhalanxError(error, 'quorum_timeout')) throw error
    }
    const ahead = transport.ahead?.('model', -1, quorum)
    if (ahead !== undefined) return ahead
    waited += catchUpCheckEveryMs
    // A model whose signer is gone may still be held by the peers (see `pull`).
    if (waited % retransmitEveryMs < catchUpCheckEveryMs) await transport.pull?.('model', -1)
    if (waited % config.quorumTimeoutMs < catchUpCheckEveryMs) {
      log.warn({ quorum, waitedMs: waited }, 'stalled: no round with N−F models to join from yet')
    }
  }
}
