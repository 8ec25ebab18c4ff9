/**
 * A server's wiring, whatever its replication mode: the rule, the learning rate, its (Byzantine
 * or chaos-wrapped) behaviour, and what it does after every round — evaluate, save its state,
 * report (with its distances to the models it received), store a checkpoint, announce its round.
 * The loop itself is the mode's (`ReplicationMode.runServer`).
 */
import { l2Distance } from '@phalanx/aggregation'
import type { RoundRecord } from '@phalanx/control'
import type { NetNode } from '@phalanx/net'
import type { ClusterConfig } from './config.js'
import { configuredMembers } from './control-plane.js'
import { modelSha256 } from './model-hash.js'
import type { StartedNode } from './node-startup.js'
import { honestServer, type RoundEvent } from './protocol.js'
import type { NodeStart } from './replication/mode.js'
import { createAggregator, gradientQuorum, nodeIndex, serverBehaviour } from './roles.js'
import { driftOf, farFromMedian } from './round-record.js'
import type { ServerState } from './server-state.js'

export async function runServerRole(started: StartedNode, start: NodeStart): Promise<void> {
  const { config, node, byzantine, chaos, signal, stateStore, checkpoints, model } = started
  // Ready since `started` was reported; a Byzantine server has none and never evaluates.
  const tensors = started.computes ? await started.tensors() : undefined
  let lastEvaluation: { accuracy?: number | undefined; loss?: number | undefined } = {}
  const onRound = (event: RoundEvent, next: Float32Array) => {
    const last = event.round === config.rounds - 1
    let evaluation: { accuracy?: number | undefined; loss?: number | undefined } = {}
    if (tensors !== undefined && ((event.round + 1) % config.evalEvery === 0 || last)) {
      const { accuracy, loss } = model.evaluate(next, tensors.data.test)
      evaluation = { accuracy, loss }
      lastEvaluation = evaluation
    }
    const published = node.received('model', event.round).find((v) => v.self)?.vector
    // Before anything else and before `next` is published (at the start of the next round).
    stateStore?.save(savedState(event.round, next, published))
    started.report({
      ...started.roundRecord(event),
      ...evaluation,
      ...(published && !byzantine ? spreadOf(published, node, event.round) : {}),
    })
    if (checkpoints !== undefined && (event.round + 1) % config.checkpointEvery === 0) {
      checkpoints.save(event.round + 1, next)
    }
    void node.announce().catch(() => {})
    return chaos.betweenRounds(signal)
  }
  const result = await started.mode.runServer({
    config,
    nodeId: started.nodeId,
    node,
    transport: started.serverTransport,
    log: started.log,
    signal,
    initial: model.parameters(),
    start,
    gradientQuorum: gradientQuorum(config),
    aggregate: createAggregator(config),
    senderRank: workerRank(config),
    learningRate: () => config.learningRate,
    behaviour: chaos.serverBehaviour(byzantine ? serverBehaviour(config, started.index) : honestServer),
    onRound,
  })
  started.report({
    type: 'done',
    nodeId: started.nodeId,
    round: result.round,
    ...lastEvaluation,
    modelSha256: modelSha256(result.model),
  })
}

/**
 * A worker's rank in the servers' aggregation order (`aggregationOrder`): its index, as in the
 * single-process reference; senders outside the configured members (admitted at run time) after
 * every configured worker.
 */
function workerRank(config: ClusterConfig): (sender: string) => number {
  const ranks = new Map(
    configuredMembers(config)
      .filter((member) => member.role === 'worker')
      .map((member) => [member.peerId, nodeIndex(member.nodeId, config.workers)] as const),
  )
  return (sender) => ranks.get(sender) ?? Number.MAX_SAFE_INTEGER
}

/**
 * How far a server's published model of `round` is from the other servers' models of it: the
 * distance to each (by sender), their lower median (`drift`), the suspicions it raises, and the
 * model's norm (the scale of `phalanx_model_drift_ratio`).
 */
function spreadOf(
  own: Float32Array,
  node: NetNode,
  round: number,
): Pick<RoundRecord, 'modelDistances' | 'drift' | 'suspicions' | 'modelNorm'> {
  const distances: Record<string, number> = {}
  for (const received of node.received('model', round)) {
    if (received.self) continue
    distances[received.sender] = l2Distance(own, received.vector)
  }
  let norm = 0
  for (let i = 0; i < own.length; i++) norm += own[i]! * own[i]!
  const drift = driftOf(distances)
  return {
    modelDistances: distances,
    ...(drift === undefined ? {} : { drift }),
    suspicions: farFromMedian(round, distances, drift),
    modelNorm: Math.sqrt(norm),
  }
}

function savedState(round: number, next: Float32Array, published: Float32Array | undefined): ServerState {
  return {
    next: { round: round + 1, model: next },
    ...(published === undefined ? {} : { published: { round, model: published } }),
  }
}
