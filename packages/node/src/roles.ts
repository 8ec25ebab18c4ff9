/**
 * From a resolved config to the pieces a server or worker runs: the aggregation rule (bound
 * checked at start-up), the model-exchange median, the Byzantine behaviours, a worker's
 * gradient function over its shard. Nothing here touches the network.
 */
import {
  type Aggregate,
  average,
  compose,
  median,
  momentumStep,
  type PreAggregatorName,
  type PreAggregatorSetting,
  type PreStep,
  preAggregatorSettings,
  type RuleEntry,
  type RuleName,
  rules,
} from '@phalanx/aggregation'
import type { AggregationRule, WorkerAttackConfig } from '@phalanx/attacks'
import { createBatchSampler, type Dataset, type Model } from '@phalanx/model'
import { type ByzantineBehaviour, serverBehaviours, workerBehaviours } from './byzantine.js'
import type { ClusterConfig } from './config.js'
import type { ServerBehaviour, WorkerBehaviour } from './protocol.js'

/** N−F: how many server models every node waits for. */
export const serverQuorum = (config: ClusterConfig): number => config.servers - config.byzantineServers
/** n−f: how many gradients a server waits for. */
export const gradientQuorum = (config: ClusterConfig): number => config.workers - config.byzantineWorkers

/** The configured pre-aggregation steps, with the options the registry gives a server. */
function preSteps(config: ClusterConfig, f: number): { step: PreStep; outputs: (n: number) => number }[] {
  return config.preAggregation.map((name) => {
    const setting = preAggregatorSettings[name] as PreAggregatorSetting<PreAggregatorName>
    const options = setting.options({ f, seed: config.seed })
    return { step: { name, options } as PreStep, outputs: (n) => setting.outputs(n, options) }
  })
}

/** How many vectors the rule sees of `inputs` gradients (bucketing averages them in pairs). */
export const ruleInputs = (config: ClusterConfig, inputs: number): number =>
  preSteps(config, config.byzantineWorkers).reduce((n, { outputs }) => outputs(n), inputs)

/** The configured rule (with its pre-aggregation) as a function of the gradients alone. */
export function createAggregator(
  config: ClusterConfig,
): (gradients: readonly Float32Array[]) => Float32Array {
  const f = config.byzantineWorkers
  const steps = preSteps(config, f).map(({ step }) => step)
  const entry = rules[config.rule] as RuleEntry<RuleName>
  const rule = entry.aggregate as Aggregate<unknown>
  const aggregate = steps.length > 0 ? compose(steps, rule) : rule
  const options = entry.options({ f })
  return (gradients) => aggregate(gradients, options)
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
 * The servers' aggregation as a colluding worker tunes an attack against it (the optimal
 * attacks). A worker reads only part of a round's honest gradients (`collusionQuorum`), so a
 * trial round of what it read plus f copies of its vector may hold fewer inputs than the rule's
 * bound needs with f Byzantine among them: it is then evaluated with the largest f the bound
 * allows on that many, down to 0. With too few for the rule even at f = 0 (Krum needs 3), the
 * worker takes the server's output to be their mean: a worse guess, but a Byzantine worker that
 * crashed on it would be a silent one instead of the attack asked for.
 */
export function attackedRule(config: ClusterConfig): AggregationRule {
  const byF = new Map<number, (inputs: readonly Float32Array[]) => Float32Array>()
  const bound = (inputs: number, f: number) => rules[config.rule].bound(ruleInputs(config, inputs), f)
  return (inputs, options) => {
    let f = options.f
    while (f > 0 && !bound(inputs.length, f)) f--
    if (!bound(inputs.length, f)) return average(inputs, { f: 0 })
    let aggregate = byF.get(f)
    if (aggregate === undefined) {
      aggregate = createAggregator({ ...config, byzantineWorkers: f })
      byF.set(f, aggregate)
    }
    return aggregate(inputs)
  }
}

/** A Byzantine server's behaviour: its config's `serverAttack`, from the registry (byzantine.ts). */
export function serverBehaviour(config: ClusterConfig, nodeIndex: number): ServerBehaviour {
  return serverBehaviours[config.serverAttack].cluster(config, { seed: config.seed * 7919 + nodeIndex })
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
  const stores = serverBehaviours[config.serverAttack].checkpoints
  if (stores === 'honest') return (honest) => [honest]
  if (stores === 'none') return () => []
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
 * A Byzantine worker's behaviour: its config's `workerAttack`, from the registry (byzantine.ts).
 * Vector attacks read the honest gradients of the round (omniscient, colluding: they wait for
 * `collusionQuorum` honest gradients first); `label-flip` is data poisoning and is applied to
 * the shard instead (see `workerShard`).
 */
export function workerBehaviour(config: ClusterConfig, nodeIndex: number): WorkerBehaviour {
  return workerBehaviours[config.workerAttack].cluster(config, {
    seed: config.seed * 104729 + nodeIndex,
    rule: attackedRule(config),
  })
}

/**
 * The vector attack a config's `workerAttack` names, with its parameters, in one place for the
 * cluster and the single-process reference; `undefined` for the protocol behaviours (none,
 * silence, label-flip, equivocation).
 */
export function vectorAttack(config: ClusterConfig, seed: number): WorkerAttackConfig | undefined {
  return workerBehaviours[config.workerAttack].vectorAttack?.(config, { seed, rule: attackedRule(config) })
}

/**
 * What the Byzantine workers of the single-process reference do for a config's `workerAttack`;
 * `undefined` when they are honest.
 */
export function simulatedBehaviour(config: ClusterConfig, seed: number): ByzantineBehaviour | undefined {
  return workerBehaviours[config.workerAttack].simulate(config, { seed, rule: attackedRule(config) })
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
