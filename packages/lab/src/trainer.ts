/**
 * Data-parallel training in one process, no network: n workers each compute a gradient on
 * their own shard, Byzantine workers replace theirs (crafted from the honest vectors, or
 * computed on label-flipped data), a rule of `@phalanx/aggregation` combines the n vectors, and
 * the parameters take an SGD step. It is the reference the distributed cluster is compared
 * with, and a simulator in its own right (like ByzFL's).
 */
import { isRuleName, momentumStep, ruleNames, rules, sgdStep } from '@phalanx/aggregation'
import { byzantineVectors } from '@phalanx/attacks'
import {
  createBatchSampler,
  type Dataset,
  type Evaluation,
  flipLabels,
  InvalidModelOptionError,
  type Model,
  type PartitionInit,
  partition,
} from '@phalanx/model'
import type { ByzantineBehaviour } from '@phalanx/node'
import type { Logger } from 'pino'
import { createServerReplicas, type ServerReplicasInit } from './server-replicas.js'

/** Any rule with `@phalanx/aggregation`'s signature, e.g. `average`, `median`, `multiKrum`. */
export type AggregationRule = (inputs: readonly Float32Array[], options: { f: number }) => Float32Array

/** η_r as a function of the round r (0-based). */
export type LearningRateSchedule =
  | { readonly kind: 'constant'; readonly rate: number }
  /** η_r = rate · factor^⌊r / every⌋ */
  | { readonly kind: 'step'; readonly rate: number; readonly factor: number; readonly every: number }
  /** η_r = rate / (1 + decay · r) */
  | { readonly kind: 'inverse'; readonly rate: number; readonly decay: number }

// The Byzantine workers' behaviour is defined beside the one registry that builds it
// (`@phalanx/node`'s byzantine.ts), so the cluster, simulate and chaos share it.
export type { ByzantineBehaviour } from '@phalanx/node'

/**
 * One round of the single-process reference trainer (its history and `onRound`): not a node's
 * `RoundRecord` (@phalanx/control), which a cluster's nodes report.
 */
export interface TrainingRound {
  readonly round: number
  readonly learningRate: number
  /** Mean loss of the honest workers on their batches of this round, before the step. */
  readonly trainLoss: number
  /** Set on evaluation rounds: the test-set evaluation after this round's step. */
  readonly test: Evaluation | undefined
  /** With `servers`, on evaluation rounds: each honest server's (server F first); `test` is their mean. */
  readonly testByServer?: readonly Evaluation[]
  /** Byzantine vectors with a NaN or ±Inf coordinate, dropped before aggregation. */
  readonly droppedVectors: number
  /** Wall time of this round, evaluation excluded. */
  readonly roundDurationMs: number
  /** With `servers`: the largest distance between two honest servers' models of this round. */
  readonly maxHonestDrift?: number
}

export interface TrainInit {
  readonly model: Model
  /** Training set, split across workers by `partition` (unless `shards` is given). */
  readonly train: Dataset
  readonly test: Dataset
  readonly workers: number
  /** A rule function, or the name of one in `@phalanx/aggregation`'s registry ('median', …). */
  readonly rule: AggregationRule | string
  /** Shown in logs; defaults to the rule's registry name when `rule` is one. */
  readonly ruleName?: string
  /** Byzantine inputs the rule must tolerate; default the number of Byzantine workers. */
  readonly f?: number
  readonly byzantine?: { readonly count: number; readonly behaviour: ByzantineBehaviour }
  /**
   * N replicated servers (some Byzantine) with the median exchange, as the cluster runs them
   * (`server-replicas.ts`); without it, one honest server: the reference. `test` is then the mean
   * of the honest servers' evaluations, `parameters` the first honest server's model.
   */
  readonly servers?: ServerReplicasInit
  readonly rounds: number
  readonly batchSize?: number
  readonly learningRate?: LearningRateSchedule | number
  /** Worker momentum β: each worker sends m ← β·m + (1−β)·g instead of g (0 disables it). */
  readonly momentum?: number
  readonly partition?: Omit<PartitionInit, 'workers' | 'seed'>
  /** Pre-split shards, one per worker (overrides `partition`). */
  readonly shards?: readonly Dataset[]
  /** Seeds the partition and every worker's batch sampler. */
  readonly seed?: number
  /** Evaluate on the test set every this many rounds (and after the last). */
  readonly evaluateEvery?: number
  /** Stop after the first evaluation reaching this test accuracy. */
  readonly targetAccuracy?: number
  /** Starting parameters; default the model's seeded initial ones. */
  readonly initialParameters?: Float32Array
  readonly onRound?: (report: TrainingRound) => void | Promise<void>
  readonly logger?: Logger
  /**
   * Stops training before the next round once aborted (a SIGINT): the result is that of the
   * rounds done, `interrupted` set. With a signal the trainer yields to the event loop after each
   * round, so that a signal handler gets to run at all.
   */
  readonly signal?: AbortSignal
}

export interface TrainResult {
  readonly parameters: Float32Array
  /** With `servers`: every honest server's final model, by server index from F on. */
  readonly honestParameters?: readonly Float32Array[]
  /** Rounds actually run (fewer than asked when the target accuracy was reached). */
  readonly rounds: number
  readonly history: readonly TrainingRound[]
  readonly final: Evaluation
  /** First round whose evaluation reached `targetAccuracy`, if any. */
  readonly reachedTargetAtRound: number | undefined
  /**
   * Round at which training diverged (a non-finite honest gradient or parameter), after which
   * it stopped: the rules reject non-finite inputs, so going on is meaningless.
   */
  readonly divergedAtRound: number | undefined
  /** Stopped by `signal` before all the rounds asked for ran. */
  readonly interrupted: boolean
  readonly durationMs: number
}

export const trainDefaults = {
  // 32 per worker keeps a round of 10 MLP gradients near 56 ms on WASM, an effective batch of 320.
  batchSize: 32,
  // Safe for every model here; the MNIST MLP learns faster at 1.0 (95% at round 290 vs ~90% after
  // 500 rounds at 0.1, measured), which the tests and the benchmark set explicitly.
  learningRate: { kind: 'constant', rate: 0.1 } as LearningRateSchedule,
  momentum: 0,
  partition: { scheme: 'iid' } as Omit<PartitionInit, 'workers' | 'seed'>,
  seed: 1,
  evaluateEvery: 10,
} as const

/** η at round r under a schedule. */
export function learningRateAt(schedule: LearningRateSchedule, round: number): number {
  switch (schedule.kind) {
    case 'constant':
      return schedule.rate
    case 'step':
      return schedule.rate * schedule.factor ** Math.floor(round / schedule.every)
    case 'inverse':
      return schedule.rate / (1 + schedule.decay * round)
  }
}

function requireInteger(option: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new InvalidModelOptionError({ option, value, requirement: `an integer ≥ ${min}` })
  }
}

function resolveRule(rule: AggregationRule | string): AggregationRule {
  if (typeof rule !== 'string') return rule
  if (!isRuleName(rule)) {
    throw new InvalidModelOptionError({
      option: 'rule',
      value: rule,
      requirement: `one of ${ruleNames.join(', ')}`,
    })
  }
  return rules[rule].aggregate as AggregationRule
}

export async function train(init: TrainInit): Promise<TrainResult> {
  const { model, workers, rounds } = init
  const rule = resolveRule(init.rule)
  const ruleName = init.ruleName ?? (typeof init.rule === 'string' ? init.rule : undefined)
  const batchSize = init.batchSize ?? trainDefaults.batchSize
  const schedule: LearningRateSchedule =
    typeof init.learningRate === 'number'
      ? { kind: 'constant', rate: init.learningRate }
      : (init.learningRate ?? trainDefaults.learningRate)
  const momentum = init.momentum ?? trainDefaults.momentum
  const seed = init.seed ?? trainDefaults.seed
  const evaluateEvery = init.evaluateEvery ?? trainDefaults.evaluateEvery
  const byzantineCount = init.byzantine?.count ?? 0
  const f = init.f ?? byzantineCount
  requireInteger('workers', workers, 1)
  requireInteger('rounds', rounds, 0)
  requireInteger('evaluateEvery', evaluateEvery, 1)
  requireInteger('byzantine.count', byzantineCount, 0)
  if (byzantineCount >= workers) {
    throw new InvalidModelOptionError({
      option: 'byzantine.count',
      value: byzantineCount,
      requirement: `fewer than the ${workers} workers (at least one must be honest)`,
    })
  }
  if (!(momentum >= 0 && momentum < 1)) {
    throw new InvalidModelOptionError({ option: 'momentum', value: momentum, requirement: 'in [0, 1)' })
  }
  if (init.byzantine?.behaviour.kind === 'label-flip' && init.train.task !== 'classification') {
    throw new InvalidModelOptionError({
      option: 'byzantine.behaviour',
      value: 'label-flip',
      requirement: `a classification dataset (${init.train.name} is ${init.train.task})`,
    })
  }
  const logger = init.logger?.child({ component: 'trainer' })

  const shards =
    init.shards ??
    partition(init.train, { ...(init.partition ?? trainDefaults.partition), workers, seed } as PartitionInit)
  if (shards.length !== workers) {
    throw new InvalidModelOptionError({
      option: 'shards.length',
      value: shards.length,
      requirement: `one shard per worker (${workers})`,
    })
  }
  const honestCount = workers - byzantineCount
  const behaviour = init.byzantine?.behaviour
  // Workers 0..honestCount−1 are honest, the last byzantineCount are Byzantine.
  const computing = behaviour?.kind === 'label-flip' ? workers : honestCount
  const samplers = shards.slice(0, computing).map((shard, worker) => {
    const data =
      worker >= honestCount && behaviour?.kind === 'label-flip'
        ? flipLabels(shard as Extract<Dataset, { task: 'classification' }>, behaviour)
        : shard
    return createBatchSampler(data, { batchSize, seed: seed * 1_000_003 + worker })
  })
  const momenta: (Float32Array | undefined)[] = new Array(computing).fill(undefined)

  let params = init.initialParameters?.slice() ?? model.parameters()
  const replicas =
    init.servers === undefined ? undefined : createServerReplicas(init.servers, params, workers)
  const history: TrainingRound[] = []
  let reachedTargetAtRound: number | undefined
  let divergedAtRound: number | undefined
  let last: Evaluation | undefined
  const started = performance.now()
  logger?.info(
    {
      model: model.name,
      dimension: model.dimension,
      workers,
      byzantine: byzantineCount,
      f,
      rule: ruleName,
      batchSize,
      momentum,
    },
    'training started',
  )
  const evaluateNow = (parameters: Float32Array): Evaluation & { byServer?: Evaluation[] } =>
    replicas === undefined ? model.evaluate(parameters, init.test) : replicas.evaluate(model, init.test)
  let round = 0
  let interrupted = false
  for (; round < rounds; round++) {
    if (init.signal?.aborted) {
      interrupted = true
      logger?.warn({ round }, 'training interrupted')
      break
    }
    const roundStart = performance.now()
    const maxHonestDrift = replicas?.publish(round)
    const sent: Float32Array[] = []
    let lossSum = 0
    for (let worker = 0; worker < computing; worker++) {
      const at = replicas === undefined ? params : replicas.workerParameters(worker)
      const { loss, gradient } = model.lossAndGradient(at, samplers[worker]!.next())
      if (worker < honestCount) lossSum += loss
      if (momentum > 0) {
        const updated = momentumStep(momenta[worker], gradient, momentum)
        momenta[worker] = updated
        // A copy is sent: the worker's momentum is its own state.
        sent.push(updated.slice())
      } else {
        sent.push(gradient)
      }
    }
    if (!sent.every(allFinite)) {
      divergedAtRound = round
      logger?.warn({ round }, 'training diverged: non-finite honest gradient')
      last = undefined
      round++
      break
    }
    if (behaviour?.kind === 'vector') {
      sent.push(...byzantineVectors(behaviour.attack, sent, byzantineCount))
    } else if (behaviour?.kind === 'custom') {
      sent.push(...behaviour.craft(sent.slice(0, honestCount), { round, count: byzantineCount }))
    }
    // The cluster's validation pipeline drops non-finite vectors before any rule sees them
    // (the rules reject such inputs); the reference does the same so the two stay comparable.
    const valid = sent.filter(allFinite)
    const rate = learningRateAt(schedule, round)
    let finite: boolean
    if (replicas === undefined) {
      params = sgdStep(params, rule(valid, { f }), rate)
      finite = allFinite(params)
    } else {
      const finiteWorkers = sent.flatMap((vector, worker) => (allFinite(vector) ? [worker] : []))
      finite = replicas.step(
        round,
        (server) =>
          rule(
            replicas.gradientsFor(server, finiteWorkers, honestCount).map((w) => sent[w]!),
            { f },
          ),
        rate,
      )
      params = replicas.honest()[0]!
    }
    if (!finite) {
      divergedAtRound = round
      logger?.warn({ round, rule: ruleName }, 'training diverged: non-finite parameters')
      last = undefined
      round++
      break
    }
    const roundDurationMs = performance.now() - roundStart
    const evaluate = (round + 1) % evaluateEvery === 0 || round === rounds - 1
    const evaluation = evaluate ? evaluateNow(params) : undefined
    const test: Evaluation | undefined =
      evaluation === undefined ? undefined : { loss: evaluation.loss, accuracy: evaluation.accuracy }
    if (test !== undefined) last = test
    const report: TrainingRound = {
      round,
      learningRate: rate,
      trainLoss: lossSum / honestCount,
      test,
      ...(evaluation?.byServer === undefined ? {} : { testByServer: evaluation.byServer }),
      droppedVectors: sent.length - valid.length,
      roundDurationMs,
      ...(maxHonestDrift === undefined ? {} : { maxHonestDrift }),
    }
    history.push(report)
    if (test !== undefined) {
      logger?.debug(
        { round, trainLoss: report.trainLoss, testLoss: test.loss, testAccuracy: test.accuracy },
        'evaluated',
      )
    }
    await init.onRound?.(report)
    if (init.signal !== undefined) await new Promise((resolve) => setImmediate(resolve))
    if (
      init.targetAccuracy !== undefined &&
      test?.accuracy !== undefined &&
      test.accuracy >= init.targetAccuracy &&
      reachedTargetAtRound === undefined
    ) {
      reachedTargetAtRound = round
      round++
      break
    }
  }
  // Interrupted, the model is the one the last round done left (past the last evaluation).
  const final =
    (interrupted ? undefined : last) ??
    (({ loss, accuracy }: Evaluation): Evaluation => ({ loss, accuracy }))(evaluateNow(params))
  const durationMs = performance.now() - started
  logger?.info(
    { rounds: round, testLoss: final.loss, testAccuracy: final.accuracy, durationMs },
    'training finished',
  )
  return {
    parameters: params,
    ...(replicas === undefined ? {} : { honestParameters: replicas.honest() }),
    rounds: round,
    history,
    final,
    reachedTargetAtRound,
    divergedAtRound,
    interrupted,
    durationMs,
  }
}

function allFinite(vector: Float32Array): boolean {
  for (const value of vector) if (!Number.isFinite(value)) return false
  return true
}
