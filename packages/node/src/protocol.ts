/**
 * The round protocol of the brief, written once for servers and workers and independent of
 * the network (it speaks to a `RoundTransport`):
 *
 * - server s, round r: publish θ_s(r); wait for n−f gradients of r; aggregate with the GAR;
 *   wait for N−F models of r; θ_s(r+1) = median(models) − η_r · GAR(gradients).
 * - worker, round r: wait for N−F models of r; θ̃ = median; gradient at θ̃ on its shard; publish.
 *
 * A quorum that does not arrive in time is logged ("stalled") and waited for again: a node
 * never goes on with fewer inputs than the bound allows.
 */
import { sgdStep } from '@phalanx/aggregation'
import type { RoundRecord } from '@phalanx/control'
import { isPhalanxError, PhalanxError } from '@phalanx/errors'
import type { Logger } from 'pino'
import type { RoundTransport, RoundVector, VectorKind } from './transport.js'

/**
 * What the round loop knows of a round it completed: the part of the node's `RoundRecord` it
 * fills (timing and senders); the node process adds the rest.
 */
export type RoundEvent = Pick<
  RoundRecord,
  'role' | 'round' | 'quorumWaitSeconds' | 'gradientSenders' | 'modelSenders'
> &
  Required<Pick<RoundRecord, 'roundDurationSeconds' | 'quorumWaitByInputSeconds'>>

/**
 * How often a waiting node announces its own last vector again. Gossip keeps no history: a
 * peer that joined late or lost a frame would otherwise wait forever for a vector that was
 * sent once. Peers that already have it count a harmless duplicate.
 */
export const retransmitEveryMs = 2_000

/**
 * How often a waiting node that can catch up checks whether the cluster has left it behind.
 * It must be well under the time the cluster takes for `roundWindow` (2) rounds: a node only
 * receives rounds inside its window, so one that checked every `retransmitEveryMs` behind a
 * cluster running 5 rounds/s caught up 10–20 rounds, found the gradients of that round already
 * gone, and fell behind again, for good (the chaos suite's partition-heal scenario).
 */
export const catchUpCheckEveryMs = 200

/** How long a colluding Byzantine worker waits to read honest gradients before it sends anyway. */
export const collusionWaitMs = 3_000

/**
 * Waits for a quorum until `signal` aborts: every `retransmitEveryMs` it calls `retransmit`,
 * every `timeoutMs` without the quorum it logs a stall. It never returns fewer than `quorum`.
 */
export async function collectPatiently(
  transport: RoundTransport,
  kind: VectorKind,
  round: number,
  quorum: number,
  timeoutMs: number,
  log: Logger,
  signal: AbortSignal,
  retransmit?: () => Promise<void>,
  catchUp?: () => { round: number; vectors: RoundVector[] } | undefined,
): Promise<RoundVector[]> {
  let waited = 0
  let lastStallLog = 0
  let lastRetransmit = 0
  const every = catchUp ? catchUpCheckEveryMs : retransmit ? retransmitEveryMs : timeoutMs
  const slice = Math.min(every, timeoutMs)
  for (;;) {
    signal.throwIfAborted()
    try {
      return await transport.collect(kind, round, { quorum, timeoutMs: slice, signal })
    } catch (error) {
      if (!isPhalanxError(error, 'quorum_timeout')) throw error
      waited += slice
      if (waited - lastStallLog >= timeoutMs) {
        lastStallLog = waited
        log.warn(
          { round, kind, quorum, waitedMs: waited, err: error },
          'stalled: quorum not reached, waiting again (never proceeding with fewer inputs)',
        )
      }
      if (waited - lastRetransmit >= Math.min(retransmitEveryMs, timeoutMs)) {
        lastRetransmit = waited
        await retransmit?.().catch((cause: unknown) => log.debug({ err: cause }, 'retransmit failed'))
      }
      const ahead = catchUp?.()
      if (ahead !== undefined) throw new BehindError(round, ahead.round, ahead.vectors)
    }
  }
}

/**
 * What a waiting node does every `retransmitEveryMs`:
 * - a server announces its round, so that a restarted server left more than the window behind
 *   learns where the stalled cluster waits (a stalled cluster completes no round that would
 *   announce it otherwise);
 * - it re-announces its own vectors of its last published round and the one before: a peer one
 *   round behind may be missing exactly that one, and with no spare quorum (N−F = N) it could
 *   not catch up from the newer round;
 * - it pulls what its peers hold of the kinds it waits for from its round on: a vector whose
 *   signer is gone (SIGKILLed, or cut off by a partition) is re-announced by no one, yet a
 *   straggler with no spare quorum needs exactly that one (the chaos suite's partition-heal
 *   scenario stalled the whole cluster on it).
 */
async function retransmitAndPull(
  transport: RoundTransport,
  tick: {
    /** Servers only: their announcements are what `announcedRound` trusts. */
    announce: boolean
    own: VectorKind
    lastPublished: number | undefined
    pull: readonly VectorKind[]
    round: number
  },
): Promise<void> {
  if (tick.announce) await transport.announce?.()
  if (tick.lastPublished !== undefined) {
    await transport.republish?.(tick.own, tick.lastPublished - 1)
    await transport.republish?.(tick.own, tick.lastPublished)
  }
  for (const kind of tick.pull) void transport.pull?.(kind, tick.round)
}

/**
 * This node waits for a round the cluster has left behind (it lost a message, or was slow):
 * a quorum of models of a later round exists, so it catches up from their median instead of
 * waiting forever — the brief's state transfer, which needs no log replay.
 */
export class BehindError extends PhalanxError<'behind', { from: number; round: number; models: number }> {
  override readonly name = 'BehindError'
  declare readonly from: number
  declare readonly round: number
  /** The models to catch up from: the state transfer itself, so not a (JSON) detail. */
  readonly vectors: RoundVector[]

  constructor(from: number, round: number, vectors: RoundVector[]) {
    super(
      'behind',
      { from, round, models: vectors.length },
      { message: `stuck at round ${from} while ${vectors.length} models of round ${round} are in` },
    )
    this.vectors = vectors
  }
}

/** How a server turns what it is about to publish into what it really publishes. */
export interface ServerBehaviour {
  /** Returns the model to publish for `round`, or `undefined` to stay silent. */
  publishModel(
    round: number,
    honestModel: Float32Array,
    history: readonly Float32Array[],
  ): Float32Array | undefined
  /** Equivocation: a different model per receiver, when set. */
  perReceiver?(round: number, honestModel: Float32Array): (receiver: string, index: number) => Float32Array
}

export const honestServer: ServerBehaviour = { publishModel: (_round, model) => model }

export interface ServerLoopInit {
  transport: RoundTransport
  log: Logger
  /** N−F: models a server and a worker wait for. */
  serverQuorum: number
  /** n−f: gradients a server waits for. */
  gradientQuorum: number
  aggregate(gradients: readonly Float32Array[]): Float32Array
  /**
   * Where a gradient's sender goes in the order the gradients are handed to the rule: lower
   * first, equal ranks by peer id (the default ranks every sender alike). See `aggregationOrder`.
   */
  senderRank?(sender: string): number
  median(models: readonly Float32Array[]): Float32Array
  learningRate(round: number): number
  /** false = no-anti-drift baseline: a server applies its aggregate to its own model only. */
  antiDrift: boolean
  /** Median exchange every T rounds (ByzSGD scatter/gather); models are still published each round for the workers. */
  exchangeEvery: number
  quorumTimeoutMs: number
  behaviour?: ServerBehaviour
  onRound?(event: RoundEvent, model: Float32Array): void | Promise<void>
}

/**
 * The gradients of a round in the order a server aggregates them: by `rank` of the sender, then
 * by peer id, never in arrival order. A rule's float sums (and Krum's ties) depend on the order
 * of its inputs, so this makes the aggregate a function of the set of gradients alone: the same
 * on every run, and the same as the single-process reference, which hands the rule its workers
 * by index (the cluster ranks senders by their worker index for that reason).
 */
export function aggregationOrder(
  gradients: readonly RoundVector[],
  rank: (sender: string) => number = () => 0,
): RoundVector[] {
  return gradients
    .map((gradient) => ({ gradient, rank: rank(gradient.sender) }))
    .sort((a, b) => a.rank - b.rank || compareStrings(a.gradient.sender, b.gradient.sender))
    .map(({ gradient }) => gradient)
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Runs a server from `start` (its model θ(start)) until `rounds` is reached or `signal` aborts.
 * Returns the final model and round.
 */
export async function runServer(
  init: ServerLoopInit,
  start: { round: number; model: Float32Array; publishFirst: boolean },
  rounds: number,
  signal: AbortSignal,
): Promise<{ round: number; model: Float32Array }> {
  const { transport, log } = init
  const behaviour = init.behaviour ?? honestServer
  const history: Float32Array[] = []
  let model = start.model
  let round = start.round
  let publish = start.publishFirst
  let lastPublished: number | undefined
  const retransmit = () =>
    retransmitAndPull(transport, {
      announce: true,
      own: 'model',
      lastPublished,
      pull: ['gradient', 'model'],
      round,
    })
  const catchUp = () => transport.ahead?.('model', round, init.serverQuorum)
  let caughtUp = false
  while (round < rounds) {
    signal.throwIfAborted()
    transport.setRound(round)
    if (caughtUp) {
      // A server that caught up holds the models of its new round (they are how it knew) but
      // not always its gradients: those that came while it was more than the window behind were
      // refused as future, and gossip never hands a message over twice. Pulled now, once the
      // window has moved, rather than at the next retransmit tick: a chasing server's collect
      // never lasts a retransmit period (each catch-up check finds the cluster further on), so
      // it never pulled, and chased (a CI chaos run's restarted server-0 contributed again only
      // after 888 rounds of catching up).
      caughtUp = false
      void transport.pull?.('gradient', round)
    }
    const roundStart = performance.now()
    if (publish) {
      if (behaviour.perReceiver && transport.publishPerReceiver) {
        await transport.publishPerReceiver('model', round, behaviour.perReceiver(round, model))
      } else {
        const published = behaviour.publishModel(round, model, history)
        if (published !== undefined) await transport.publish('model', round, published)
      }
      lastPublished = round
    }
    publish = true
    history.push(model)
    if (history.length > 8) history.shift()

    let waited = performance.now()
    let gradients: RoundVector[]
    let models: RoundVector[] | undefined
    let quorumWait = 0
    let modelsWait: number | undefined
    try {
      gradients = await collectPatiently(
        transport,
        'gradient',
        round,
        init.gradientQuorum,
        init.quorumTimeoutMs,
        log,
        signal,
        retransmit,
        catchUp,
      )
      quorumWait = performance.now() - waited
      if (init.antiDrift && round % init.exchangeEvery === 0) {
        waited = performance.now()
        models = await collectPatiently(
          transport,
          'model',
          round,
          init.serverQuorum,
          init.quorumTimeoutMs,
          log,
          signal,
          retransmit,
          catchUp,
        )
        modelsWait = performance.now() - waited
        quorumWait += modelsWait
      }
    } catch (error) {
      if (!(error instanceof BehindError)) throw error
      log.warn(
        { from: error.from, to: error.round },
        'behind the cluster: catching up from the median of N−F models',
      )
      model = init.median(error.vectors.map((v) => v.vector))
      round = error.round
      caughtUp = true
      continue
    }
    const aggregate = init.aggregate(aggregationOrder(gradients, init.senderRank).map((g) => g.vector))

    let base = model
    let modelSenders: string[] | undefined
    if (models !== undefined) {
      base = init.median(models.map((m) => m.vector))
      modelSenders = models.map((m) => m.sender)
    }
    model = sgdStep(base, aggregate, init.learningRate(round))
    round++
    await init.onRound?.(
      {
        role: 'server',
        round: round - 1,
        quorumWaitSeconds: quorumWait / 1000,
        quorumWaitByInputSeconds: {
          gradients: (quorumWait - (modelsWait ?? 0)) / 1000,
          ...(modelsWait === undefined ? {} : { models: modelsWait / 1000 }),
        },
        roundDurationSeconds: (performance.now() - roundStart) / 1000,
        gradientSenders: gradients.map((g) => g.sender),
        ...(modelSenders ? { modelSenders } : {}),
      },
      model,
    )
  }
  return { round, model }
}

/** How a worker turns its honest gradient into what it publishes (Byzantine workers). */
export interface WorkerBehaviour {
  /**
   * Returns the gradient to publish, or `undefined` to stay silent. `honestOfRound` gives
   * the honest gradients of this round seen so far (omniscient, colluding attackers).
   */
  publishGradient(
    round: number,
    ownGradient: Float32Array,
    honestOfRound: () => Promise<Float32Array[]>,
  ): Promise<Float32Array | undefined>
  perReceiver?(
    round: number,
    ownGradient: Float32Array,
    honestOfRound: () => Promise<Float32Array[]>,
  ): Promise<(receiver: string, index: number) => Float32Array>
}

export const honestWorker: WorkerBehaviour = { publishGradient: async (_round, gradient) => gradient }

export interface WorkerLoopInit {
  transport: RoundTransport
  log: Logger
  serverQuorum: number
  median(models: readonly Float32Array[]): Float32Array
  /** The (momentum-averaged) gradient at `params` on this worker's shard for `round`. */
  gradient(params: Float32Array, round: number): Float32Array
  quorumTimeoutMs: number
  /** How many honest gradients a colluding Byzantine worker reads before it sends. */
  collusionQuorum: number
  behaviour?: WorkerBehaviour
  onRound?(event: RoundEvent): void | Promise<void>
}

export async function runWorker(
  init: WorkerLoopInit,
  startRound: number,
  rounds: number,
  signal: AbortSignal,
): Promise<number> {
  const { transport, log } = init
  const behaviour = init.behaviour ?? honestWorker
  let round = startRound
  let lastPublished: number | undefined
  const retransmit = () =>
    retransmitAndPull(transport, { announce: false, own: 'gradient', lastPublished, pull: ['model'], round })
  while (round < rounds) {
    signal.throwIfAborted()
    transport.setRound(round)
    const roundStart = performance.now()
    let models: RoundVector[]
    try {
      models = await collectPatiently(
        transport,
        'model',
        round,
        init.serverQuorum,
        init.quorumTimeoutMs,
        log,
        signal,
        retransmit,
        () => transport.ahead?.('model', round, init.serverQuorum),
      )
    } catch (error) {
      if (!(error instanceof BehindError)) throw error
      log.warn(
        { from: error.from, to: error.round },
        'behind the cluster: skipping to the newest complete round',
      )
      round = error.round
      continue
    }
    const quorumWait = performance.now() - roundStart
    const params = init.median(models.map((m) => m.vector))
    const gradient = init.gradient(params, round)
    const currentRound = round
    // A colluding attacker reads what honest gradients it can get in a bounded time; it does
    // not hold the round up (if none come, it crafts from its own honestly computed one).
    const honestOfRound = async (): Promise<Float32Array[]> => {
      try {
        const seen = await transport.collect('gradient', currentRound, {
          quorum: init.collusionQuorum,
          timeoutMs: Math.min(init.quorumTimeoutMs, collusionWaitMs),
          signal,
        })
        return [gradient, ...seen.map((g) => g.vector)]
      } catch (error) {
        if (isPhalanxError(error, 'quorum_timeout')) return [gradient]
        throw error
      }
    }
    if (behaviour.perReceiver && transport.publishPerReceiver) {
      await transport.publishPerReceiver(
        'gradient',
        round,
        await behaviour.perReceiver(round, gradient, honestOfRound),
      )
    } else {
      const published = await behaviour.publishGradient(round, gradient, honestOfRound)
      if (published !== undefined) await transport.publish('gradient', round, published)
    }
    lastPublished = round
    round++
    await init.onRound?.({
      role: 'worker',
      round: round - 1,
      quorumWaitSeconds: quorumWait / 1000,
      quorumWaitByInputSeconds: { models: quorumWait / 1000 },
      roundDurationSeconds: (performance.now() - roundStart) / 1000,
      modelSenders: models.map((m) => m.sender),
    })
  }
  return round
}
