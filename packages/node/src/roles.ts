/**
 * From a resolved config to the pieces a server or worker runs: the aggregation rule (bound
 * checked at start-up), the model-exchange median, the Byzantine behaviours, a worker's
 * gradient function over its shard. Nothing here touches the network.
 */
import { compose, median, momentumStep, type PreStep, rules } from '@phalanx/aggregation'
import {
  dropCoordinates,
  modelShift,
  randomModel,
  scaledModel,
  signFlip,
  type VectorAttack,
  type WorkerAttackConfig,
  workerAttacks,
} from '@phalanx/attacks'
import { createBatchSampler, type Dataset, type Model } from '@phalanx/model'
import type { ClusterConfig } from './config.js'
import type { ServerBehaviour, WorkerBehaviour } from './protocol.js'

/** Bucketing's bucket size; buckets of two halve the inputs the rule sees. */
export const bucketSize = 2

/** N−F: how many server models every node waits for. */
export const serverQuorum = (config: ClusterConfig): number => config.servers - config.byzantineServers
/** n−f: how many gradients a server waits for. */
export const gradientQuorum = (config: ClusterConfig): number => config.workers - config.byzantineWorkers

/** The configured rule (with its pre-aggregation) as a function of the gradients alone. */
export function createAggregator(
  config: ClusterConfig,
): (gradients: readonly Float32Array[]) => Float32Array {
  const f = config.byzantineWorkers
  const stepOf: Record<(typeof config.preAggregation)[number], PreStep> = {
    nnm: { name: 'nnm', options: { f } },
    arc: { name: 'arc', options: { f } },
    // Buckets of two halve the inputs the rule sees; the bound is checked on ⌈(n−f)/2⌉.
    bucketing: { name: 'bucketing', options: { bucketSize, seed: config.seed } },
    // Honest MNIST gradients have norms of order 1; 10 only cuts off blatant outliers.
    clip: { name: 'clip', options: { maxNorm: 10 } },
  }
  const steps = config.preAggregation.map((name) => stepOf[name])
  const rule = rules[config.rule].aggregate as (
    inputs: readonly Float32Array[],
    options: { f: number },
  ) => Float32Array
  const aggregate = steps.length > 0 ? compose(steps, rule) : rule
  return (gradients) => aggregate(gradients, { f })
}

/** Coordinate-wise median over models (anti-drift): the Median rule, reused. */
export const modelMedian = (models: readonly Float32Array[]): Float32Array => median(models, { f: 0 })

/** The index in `server-<i>` / `worker-<i>`, or a stable hash of a Deployment pod's suffix. */
export function nodeIndex(nodeId: string, count: number): number {
  const suffix = nodeId.slice(nodeId.indexOf('-') + 1)
  if (/^\d+$/.test(suffix)) return Number(suffix)
  let hash = 2166136261
  for (const char of suffix) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0
  return hash % count
}

/**
 * Which node ids are Byzantine: the configured list, or the first F servers and the first f
 * workers (server-0…, worker-0…).
 */
export function isByzantine(config: ClusterConfig, nodeId: string): boolean {
  if (config.byzantineNodeIds.length > 0) return config.byzantineNodeIds.includes(nodeId)
  const match = /^(server|worker)-(\d+)$/.exec(nodeId)
  if (!match) return false
  const index = Number(match[2])
  return match[1] === 'server' ? index < config.byzantineServers : index < config.byzantineWorkers
}

/**
 * A Byzantine server's behaviour. `random`, `reversed`, `scaled`, `drop-coordinates` transform
 * its own honest model; `shift` moves it ALIE-style against the honest models it has seen;
 * `equivocation` sends each receiver a different model; `stale` replays an old round's model;
 * `crash` stays silent.
 */
export function serverBehaviour(config: ClusterConfig, nodeIndex: number): ServerBehaviour {
  const seed = config.seed * 7919 + nodeIndex
  switch (config.serverAttack) {
    case 'none':
      return { publishModel: (_round, model) => model }
    case 'random':
      return { publishModel: (round, model) => randomModel([model], { seed: seed + round, sigma: 1 }) }
    case 'reversed':
      return { publishModel: (_round, model) => scaledModel([model], { factor: -1 }) }
    case 'scaled':
      return { publishModel: (_round, model) => scaledModel([model], { factor: 100 }) }
    case 'drop-coordinates':
      return {
        publishModel: (round, model) => dropCoordinates([model], { fraction: 0.5, seed: seed + round }),
      }
    case 'shift':
      return {
        publishModel: (_round, model, history) =>
          modelShift(history.length > 1 ? history : [model, model], {
            f: config.byzantineServers,
            n: config.servers,
          }),
      }
    case 'equivocation':
      return {
        publishModel: (_round, model) => model,
        // The second version once per round, not per receiver: the transport groups receivers
        // by the vector object they were handed.
        perReceiver: (_round, model) => {
          const reversed = scaledModel([model], { factor: -1 })
          return (_receiver, index) => (index % 2 === 0 ? model : reversed)
        },
      }
    case 'stale':
      return { publishModel: (_round, model, history) => history[0] ?? model }
    case 'crash':
      return { publishModel: () => undefined }
  }
}

// The two checkpoint types are defined here, beside the forgeries that produce them, rather
// than in checkpointing.ts, which stores them: checkpointing imports this module (the median
// and the server quorum), so the other way round would be an import cycle.
/** A checkpoint a node stores instead of its honest model (a Byzantine server's forgeries). */
export interface StoredCheckpoint {
  round: number
  model: Float32Array
  /** Whose name it is stored under, when not the writer's own (impersonation). */
  serverId?: string
}

/** What a server stores for its honest `{ round, model }`, knowing the member servers' ids. */
export type CheckpointForgery = (
  honest: { round: number; model: Float32Array },
  serverIds: readonly string[],
) => StoredCheckpoint[]

/** How far ahead of the real round a Byzantine server claims its forged checkpoint is. */
export const forgedCheckpointLead = 1_000_000
/** How far a forged checkpoint moves every coordinate (honest coordinates are of order 1). */
export const forgedCheckpointShift = 1_000

/**
 * What a Byzantine server stores when an honest one would store `model` for `round`: under its
 * own name, a model far from the honest ones (to drag the agreed median); under every member
 * server's name, that model for a far newer round (enough names to look agreed, but signed with
 * its own key).
 */
export function forgedCheckpoints(config: ClusterConfig): CheckpointForgery {
  // `none` is a Byzantine server behaving honestly (a baseline); `crash` stays silent here too.
  if (config.serverAttack === 'none') return (honest) => [honest]
  if (config.serverAttack === 'crash') return () => []
  return ({ round, model }, serverIds) => {
    // Shifted, not scaled: a scaling leaves coordinates near its fixed point (0) where they were.
    const forged = model.map((value) => value + forgedCheckpointShift)
    return [
      { round, model: forged },
      ...serverIds.map((serverId) => ({ serverId, round: round + forgedCheckpointLead, model: forged })),
    ]
  }
}

/**
 * A Byzantine worker's behaviour. Vector attacks read the honest gradients of the round
 * (omniscient, colluding: they wait for `collusionQuorum` honest gradients first); `silence`
 * sends nothing; `equivocation` sends different gradients to different servers;
 * `label-flip` is data poisoning and is applied to the shard instead (see `workerShard`).
 */
export function workerBehaviour(config: ClusterConfig, nodeIndex: number): WorkerBehaviour {
  const seed = config.seed * 104729 + nodeIndex
  const fromHonest =
    (
      craft: (honest: Float32Array[], own: Float32Array, round: number) => Float32Array,
    ): WorkerBehaviour['publishGradient'] =>
    async (round, own, honestOfRound) => {
      const honest = await honestOfRound()
      return craft(honest.length > 0 ? honest : [own], own, round)
    }
  switch (config.workerAttack) {
    case 'none':
    case 'label-flip':
      return { publishGradient: async (_round, gradient) => gradient }
    case 'silence':
      return { publishGradient: async () => undefined }
    case 'equivocation':
      return {
        publishGradient: async (_round, gradient) => gradient,
        perReceiver: async (_round, own) => {
          const flipped = signFlip([own], { scale: 10 })
          return (_receiver, index) => (index % 2 === 0 ? own : flipped)
        },
      }
    default:
      return {
        publishGradient: fromHonest((honest, _own, round) => {
          const attack = vectorAttack(config, seed + round)!
          // `honest` starts with the attacker's own gradient: a mimic copies someone else's
          // whenever it read one, or it would only be an honest worker.
          const read = attack.name === 'mimic' && honest.length > 1 ? honest.slice(1) : honest
          return (workerAttacks[attack.name] as VectorAttack<unknown>)(read, attack.options)
        }),
      }
  }
}

/**
 * The vector attack a config's `workerAttack` names, with its parameters, in one place for the
 * cluster and the single-process reference; `undefined` for the protocol behaviours (none,
 * silence, label-flip, equivocation).
 */
export function vectorAttack(config: ClusterConfig, seed: number): WorkerAttackConfig | undefined {
  switch (config.workerAttack) {
    case 'sign-flip':
      return { name: 'sign-flip', options: { scale: config.signFlipScale } }
    case 'gaussian':
      return { name: 'gaussian', options: { sigma: config.gaussianSigma, seed } }
    case 'ipm':
      return { name: 'ipm', options: { epsilon: config.ipmEpsilon } }
    case 'alie':
      return {
        name: 'alie',
        options: {
          f: config.byzantineWorkers,
          n: config.workers,
          ...(config.alieZ === undefined ? {} : { z: config.alieZ }),
        },
      }
    case 'mimic':
      return { name: 'mimic', options: { target: 0 } }
    case 'non-finite':
      return { name: 'non-finite', options: { kind: 'nan' } }
    case 'hidden-shift':
      return {
        name: 'hidden-shift',
        options: {
          scale: config.hiddenShiftScale,
          ...(config.hiddenShiftSign === 'against-mean'
            ? {}
            : { sign: config.hiddenShiftSign === 'negative' ? -1 : 1 }),
        },
      }
    default:
      return undefined
  }
}

/**
 * A worker's gradient function: batches from its shard (seeded per worker), optionally
 * averaged with momentum m ← β·m + (1−β)·g before it is sent.
 */
export function workerGradient(
  model: Model,
  shard: Dataset,
  init: { batchSize: number; momentum: number; seed: number },
): (params: Float32Array, round: number) => Float32Array {
  const sampler = createBatchSampler(shard, {
    batchSize: Math.min(init.batchSize, shard.size),
    seed: init.seed,
  })
  let momentum: Float32Array | undefined
  return (params) => {
    const gradient = model.gradient(params, sampler.next())
    if (init.momentum === 0) return gradient
    momentum = momentumStep(momentum, gradient, init.momentum)
    // A copy is sent: the worker's momentum is its own state.
    return momentum.slice()
  }
}
