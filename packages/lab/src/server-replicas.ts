/**
 * N parameter servers in one process, as the cluster runs them (the brief's protocol, ByzSGD):
 * each server s holds its own model θ_s; at round r every server publishes θ_s (a Byzantine one
 * what its attack makes of it), each worker computes its gradient at the coordinate-wise median
 * of the N−F models it takes, every server aggregates the round's gradients, and an honest server
 * steps from the median of the N−F models it took (anti-drift; every `exchangeEvery` rounds) or
 * from its own model:
 *
 *   θ_s(r+1) = med(θ_q(r) : q ∈ Q_s(r)) − η_r · GAR(g_1(r) … g_n(r)),   |Q_s(r)| = N − F
 *
 * Which N−F models a receiver takes is the one scheduling choice the network makes in the
 * cluster (the first N−F to arrive). Here it is the adversary's best schedule, deterministic for
 * a seed: every model a Byzantine server published is taken, then the receiver's own (a server
 * counts itself, as in the cluster), then honest ones in a seeded order.
 *
 * A Byzantine server runs the honest update on what it receives, as a Byzantine node of the
 * cluster does (`runServer` with a behaviour), and publishes through the same registry entry
 * (`@phalanx/node`'s byzantine.ts), with the same 8 rounds of history.
 */
import { createRandom, l2Distance, sgdStep, shuffledIndices } from '@phalanx/aggregation'
import type { Dataset, Evaluation, Model } from '@phalanx/model'
import type { ServerBehaviour } from '@phalanx/node'

export interface ServerReplicasInit {
  /** N. */
  readonly count: number
  /** F: servers 0 … F−1 are Byzantine, as the cluster's default (server-0 …). */
  readonly byzantine: number
  /** What a Byzantine server publishes (the config's `serverAttack`, from node's registry). */
  readonly behaviour: ServerBehaviour
  /** Step from the median of the N−F models taken (false: the no-anti-drift baseline). */
  readonly antiDrift: boolean
  /** The median exchange every T rounds (ByzSGD's scatter/gather); models are taken every round by workers. */
  readonly exchangeEvery: number
  /**
   * n−f: the gradients each server aggregates, as the cluster's first n−f to arrive; here every
   * finite Byzantine one, then honest ones in a seeded order, handed to the rule by worker index
   * (`aggregationOrder`). Servers taking different n−f is what makes honest models drift apart.
   */
  readonly gradientQuorum: number
  /** The model median (`@phalanx/node`'s `modelMedian`). */
  readonly median: (models: readonly Float32Array[]) => Float32Array
  /** Seeds the schedule of honest models each receiver takes. */
  readonly seed: number
}

/** Rounds of its own models a Byzantine server keeps for its attack (`runServer` keeps 8). */
const historyLength = 8

export interface ServerReplicas {
  /**
   * Publishes round `round`'s models and fixes what each receiver takes; returns the largest
   * distance between two honest servers' models (undefined with one honest server: unmeasured).
   */
  publish(round: number): number | undefined
  /** The parameters worker `worker` computes its gradient at this round. */
  workerParameters(worker: number): Float32Array
  /**
   * The worker indices whose gradients server `server` aggregates this round, ascending: from
   * `finite` (the workers whose vector passed validation), Byzantine workers (index ≥
   * `firstByzantine`) first.
   */
  gradientsFor(server: number, finite: readonly number[], firstByzantine: number): number[]
  /** Every server steps with its aggregate; false when an honest model is no longer finite. */
  step(round: number, aggregateFor: (server: number) => Float32Array, rate: number): boolean
  /** The honest servers' models. */
  honest(): Float32Array[]
  /** Each honest server's evaluation (server F first) and their mean. */
  evaluate(model: Model, test: Dataset): Evaluation & { byServer: Evaluation[] }
}

export function createServerReplicas(
  init: ServerReplicasInit,
  initial: Float32Array,
  workers: number,
): ServerReplicas {
  const { count, byzantine } = init
  const quorum = count - byzantine
  const models: Float32Array[] = Array.from({ length: count }, () => initial.slice())
  const histories: Float32Array[][] = Array.from({ length: count }, () => [])
  // Per receiver (servers 0…N−1, then workers): the models it took this round.
  let taken: Float32Array[][] = []
  let random = createRandom(init.seed)

  const isByzantine = (server: number) => server < byzantine

  return {
    publish(round) {
      random = createRandom(init.seed * 1_000_003 + round)
      const receivers = count + workers
      // What each server sent to each receiver; undefined: nothing (a crash).
      const sent: ((receiver: number) => Float32Array | undefined)[] = models.map((model, server) => {
        if (!isByzantine(server)) return () => model
        const history = histories[server]!
        const perReceiver = init.behaviour.perReceiver?.(round, model)
        if (perReceiver !== undefined) return (receiver) => perReceiver(`receiver-${receiver}`, receiver)
        const published = init.behaviour.publishModel(round, model, history)
        return () => published
      })
      for (let server = 0; server < count; server++) {
        const history = histories[server]!
        history.push(models[server]!)
        if (history.length > historyLength) history.shift()
      }
      taken = Array.from({ length: receivers }, (_, receiver) => {
        const chosen: Float32Array[] = []
        for (let server = 0; server < byzantine; server++) {
          const model = sent[server]!(receiver)
          if (model !== undefined) chosen.push(model)
        }
        if (receiver < count && !isByzantine(receiver)) chosen.push(models[receiver]!)
        for (const index of shuffledIndices(count - byzantine, random)) {
          const server = byzantine + index
          if (chosen.length >= quorum) break
          if (server !== receiver) chosen.push(models[server]!)
        }
        return chosen.slice(0, quorum)
      })
      if (count - byzantine < 2) return undefined
      let drift = 0
      for (let a = byzantine; a < count; a++) {
        for (let b = a + 1; b < count; b++) drift = Math.max(drift, l2Distance(models[a]!, models[b]!))
      }
      return drift
    },
    workerParameters(worker) {
      return init.median(taken[count + worker]!)
    },
    gradientsFor(_server, finite, firstByzantine) {
      const byzantineWorkers = finite.filter((worker) => worker >= firstByzantine)
      const honestWorkers = finite.filter((worker) => worker < firstByzantine)
      const chosen = [...byzantineWorkers]
      for (const index of shuffledIndices(honestWorkers.length, random)) {
        if (chosen.length >= init.gradientQuorum) break
        chosen.push(honestWorkers[index]!)
      }
      return chosen.slice(0, init.gradientQuorum).sort((a, b) => a - b)
    },
    step(round, aggregateFor, rate) {
      const exchange = init.antiDrift && round % init.exchangeEvery === 0
      let finite = true
      for (let server = 0; server < count; server++) {
        const base = exchange ? init.median(taken[server]!) : models[server]!
        models[server] = sgdStep(base, aggregateFor(server), rate)
        if (!isByzantine(server) && !models[server]!.every(Number.isFinite)) finite = false
      }
      return finite
    },
    honest() {
      return models.slice(byzantine)
    },
    evaluate(model, test) {
      const evaluations = models.slice(byzantine).map((parameters) => model.evaluate(parameters, test))
      const loss = evaluations.reduce((sum, e) => sum + e.loss, 0) / evaluations.length
      const accuracies = evaluations.map((e) => e.accuracy).filter((a): a is number => a !== undefined)
      return accuracies.length === evaluations.length
        ? {
            loss,
            accuracy: accuracies.reduce((sum, a) => sum + a, 0) / accuracies.length,
            byServer: evaluations,
          }
        : { loss, accuracy: undefined, byServer: evaluations }
    },
  }
}
