/**
 * The state-machine-replication baseline (`replication: smr`), the design Phalanx argues is
 * overkill, in the same code so that the claim is measured:
 *
 * - a worker computes its gradient at the model of round r read from ONE server replica (over
 *   libp2p, as in the median protocol) and appends it to a JetStream stream replicated
 *   `smrReplicas` times (Raft underneath) — the total order;
 * - every server replica follows that stream from its first entry and applies the same
 *   deterministic transition: the first n−f valid gradients of round r from distinct workers, in
 *   stream order, aggregated with the GAR, θ(r+1) = θ(r) − η·GAR. Replicas therefore hold
 *   bit-identical models and never exchange them; a restarted replica replays the log.
 *
 * The log tolerates crashed NATS servers (Raft majority), not Byzantine replicas: a Byzantine
 * replica keeps the true state but serves a corrupted model (its `serverAttack`) to the workers
 * that read from it, whose gradients then enter the log like anyone's.
 */
import { sgdStep } from '@phalanx/aggregation'
import {
  type ControlConnection,
  connectControl,
  createReplicatedLog,
  decodeModel,
  encodeModel,
  type LogEntry,
  type LogFollower,
  type ReplicatedLog,
} from '@phalanx/control'
import type { DeliveredVector, NetNode } from '@phalanx/net'
import type { Logger } from 'pino'
import type { ClusterConfig } from './config.js'
import { SmrLogError } from './errors.js'
import { modelSha256 } from './model-hash.js'
import {
  honestServer,
  honestWorker,
  type RoundEvent,
  retransmitEveryMs,
  type ServerBehaviour,
  type WorkerBehaviour,
} from './protocol.js'

/** Name of the gradient log: the stream is `phalanx-<cluster>-gradients`. */
export const smrLogName = 'gradients'

/**
 * How long a worker waits for its replica's model before it reads from the next replica. A
 * waiting replica re-announces its model every `retransmitEveryMs`, so three missed
 * re-announcements mean it is gone (or lying by silence), not slow.
 */
export const smrFailoverMs = 3 * retransmitEveryMs

/** Why the state machine did not use a log entry (each is deterministic: a function of the log). */
export type SmrSkipReason =
  | 'unknown_sender'
  | 'malformed'
  | 'wrong_dimension'
  | 'non_finite'
  | 'stale_round'
  | 'future_round'
  | 'duplicate'

export interface SmrGradient {
  worker: string
  round: number
  gradient: Float32Array
}

export interface SmrStateMachineInit {
  model: Float32Array
  /** n−f: gradients that complete a round. */
  gradientQuorum: number
  /** Node ids whose gradients count. */
  workers: ReadonlySet<string>
  /** Rounds ahead of the current one an entry may be for (W); later ones are skipped. */
  roundWindow: number
  aggregate(gradients: readonly Float32Array[]): Float32Array
  learningRate(round: number): number
}

export interface SmrRoundApplied {
  round: number
  /** θ(round + 1). */
  model: Float32Array
  gradientSenders: string[]
}

export interface SmrStateMachine {
  /** The round whose gradients are being gathered; the model is θ(round). */
  readonly round: number
  readonly model: Float32Array
  /** Applies one gradient in log order: the rounds it completes (usually none or one), or why it was skipped. */
  apply(entry: SmrGradient): { applied: SmrRoundApplied[] } | { skipped: SmrSkipReason }
}

/**
 * The replicated state machine. Everything it decides is a function of the sequence of entries
 * it is given (never of time), so every replica fed the same log holds the same model.
 */
export function createSmrStateMachine(init: SmrStateMachineInit): SmrStateMachine {
  let round = 0
  let model = init.model
  const dimension = init.model.length
  // Per round, the accepted gradients in log order (a Map keeps insertion order).
  const pending = new Map<number, Map<string, Float32Array>>()
  return {
    get round() {
      return round
    },
    get model() {
      return model
    },
    apply(entry) {
      if (!init.workers.has(entry.worker)) return { skipped: 'unknown_sender' }
      if (!Number.isInteger(entry.round) || entry.round < 0) return { skipped: 'malformed' }
      if (entry.gradient.length !== dimension) return { skipped: 'wrong_dimension' }
      if (!entry.gradient.every(Number.isFinite)) return { skipped: 'non_finite' }
      if (entry.round < round) return { skipped: 'stale_round' }
      if (entry.round > round + init.roundWindow) return { skipped: 'future_round' }
      const ofRound = pending.get(entry.round) ?? new Map<string, Float32Array>()
      // The first entry of a worker for a round is the one that counts (a second is equivocation
      // or a retry; either way every replica keeps the same one).
      if (ofRound.has(entry.worker)) return { skipped: 'duplicate' }
      ofRound.set(entry.worker, entry.gradient)
      pending.set(entry.round, ofRound)
      const applied: SmrRoundApplied[] = []
      for (;;) {
        const current = pending.get(round)
        if (current === undefined || current.size < init.gradientQuorum) break
        const chosen = [...current].slice(0, init.gradientQuorum)
        const aggregate = init.aggregate(chosen.map(([, gradient]) => gradient))
        const next = sgdStep(model, aggregate, init.learningRate(round))
        pending.delete(round)
        applied.push({ round, model: next, gradientSenders: chosen.map(([worker]) => worker) })
        model = next
        round++
      }
      return { applied }
    },
  }
}

/** The node ids whose gradients a replica accepts: the configured workers. */
export function smrWorkerIds(config: ClusterConfig): Set<string> {
  const fromMembers = config.members
    .map((entry) => entry.slice(0, entry.indexOf(':')))
    .filter((nodeId) => nodeId.startsWith('worker-'))
  if (fromMembers.length > 0) return new Set(fromMembers)
  return new Set(Array.from({ length: config.workers }, (_, i) => `worker-${i}`))
}

/**
 * The server replicas' peer ids (from `members`) in the order worker `workerIndex` reads from
 * them: its own replica (index mod N) first, so readers spread evenly over the replicas. Empty
 * when the member set comes from the control plane: the worker then takes the first model of the
 * round from any replica.
 */
export function smrReplicaOrder(config: ClusterConfig, workerIndex: number): string[] {
  const servers = config.members
    .filter((entry) => entry.startsWith('server-'))
    .map((entry) => entry.slice(entry.indexOf(':') + 1))
  if (servers.length === 0) return []
  const first = workerIndex % servers.length
  return [...servers.slice(first), ...servers.slice(0, first)]
}

/** Entry → gradient; a malformed entry still yields something the state machine skips. */
function gradientOfEntry(entry: LogEntry): SmrGradient {
  const round = Number(entry.meta.round)
  const worker = entry.meta.worker ?? ''
  if (entry.data.byteLength % 4 !== 0) return { worker, round: Number.NaN, gradient: new Float32Array(0) }
  return { worker, round, gradient: decodeModel(entry.data) }
}

interface SmrConnectionInit {
  config: ClusterConfig
  nodeId: string
  log: Logger
}

async function openGradientLog(
  init: SmrConnectionInit,
): Promise<{ conn: ControlConnection; gradients: ReplicatedLog }> {
  const { config } = init
  const stream = `phalanx-${config.cluster}-${smrLogName}`
  if (config.smrNatsUrl === undefined) {
    throw new SmrLogError('replication smr needs smrNatsUrl', { stream })
  }
  const conn = connectControl({
    servers: config.smrNatsUrl,
    cluster: config.cluster,
    name: `phalanx-${config.cluster}-${init.nodeId}-smr`,
    log: init.log,
  })
  try {
    const gradients = await createReplicatedLog({ conn, name: smrLogName, replicas: config.smrReplicas })
    return { conn, gradients }
  } catch (cause) {
    await conn.close()
    throw new SmrLogError(`cannot open the SMR gradient log ${stream}`, { stream, cause })
  }
}

/**
 * Deletes the cluster's gradient log if a previous run left one: replicas replay the log from
 * its first entry, so a stale log would replay another run's gradients. `phalanx local` calls it
 * before starting the nodes; a deployment uses a fresh `cluster` id per run instead.
 */
export async function resetSmrLog(init: SmrConnectionInit): Promise<void> {
  const { conn, gradients } = await openGradientLog(init)
  try {
    await gradients.destroy()
  } finally {
    await conn.close()
  }
}

export interface SmrServerInit {
  config: ClusterConfig
  nodeId: string
  node: NetNode
  log: Logger
  gradientQuorum: number
  aggregate(gradients: readonly Float32Array[]): Float32Array
  learningRate(round: number): number
  behaviour?: ServerBehaviour
  onRound?(event: RoundEvent, model: Float32Array): void | Promise<void>
}

/**
 * One server replica: publishes θ(r) to the workers, applies the gradient log in order until
 * `rounds` rounds are applied (or `signal` aborts). Returns the final round and model.
 */
export async function runSmrServer(
  init: SmrServerInit,
  start: Float32Array,
  rounds: number,
  signal: AbortSignal,
): Promise<{ round: number; model: Float32Array }> {
  const { config, node, log } = init
  const behaviour = init.behaviour ?? honestServer
  const history: Float32Array[] = []
  const machine = createSmrStateMachine({
    model: start,
    gradientQuorum: init.gradientQuorum,
    workers: smrWorkerIds(config),
    roundWindow: config.roundWindow,
    aggregate: init.aggregate,
    learningRate: init.learningRate,
  })
  const skipped: Partial<Record<SmrSkipReason, number>> = {}
  const publish = async (round: number, model: Float32Array) => {
    node.setRound(round)
    const published = behaviour.publishModel(round, model, history)
    history.push(model)
    if (history.length > 8) history.shift()
    if (published !== undefined) await node.publish('model', round, published)
  }

  const { conn, gradients } = await openGradientLog(init)
  let follower: LogFollower | undefined
  let retransmit: NodeJS.Timeout | undefined
  try {
    // Workers must hear θ(0); gossip keeps no history. One reader is enough to start: the
    // re-announcement below reaches the others.
    await node.waitForSubscribers('model', 1, { signal })
    log.info({ stream: gradients.stream }, 'smr replica publishing θ(0) and following the gradient log')
    let roundStart = performance.now()
    let lastProgress = performance.now()
    await publish(0, start)
    let finish = () => {}
    const finished = new Promise<void>((resolve) => {
      finish = resolve
    })
    follower = await gradients.follow({
      onEntry: async (entry) => {
        if (machine.round >= rounds) return
        const outcome = machine.apply(gradientOfEntry(entry))
        if ('skipped' in outcome) {
          skipped[outcome.skipped] = (skipped[outcome.skipped] ?? 0) + 1
          log.debug(
            { seq: entry.seq, worker: entry.meta.worker, reason: outcome.skipped },
            'log entry skipped',
          )
          return
        }
        for (const applied of outcome.applied) {
          const roundSeconds = (performance.now() - roundStart) / 1000
          log.info(
            {
              round: applied.round,
              seq: entry.seq,
              gradientSenders: applied.gradientSenders,
              modelSha256: modelSha256(applied.model),
            },
            'smr round applied',
          )
          await init.onRound?.(
            {
              role: 'server',
              round: applied.round,
              quorumWaitSeconds: roundSeconds,
              // What a replica waits for is the log's next n−f gradients.
              quorumWaitByInputSeconds: { gradients: roundSeconds },
              roundDurationSeconds: roundSeconds,
              gradientSenders: applied.gradientSenders,
            },
            applied.model,
          )
          roundStart = performance.now()
          lastProgress = roundStart
          if (applied.round + 1 >= rounds) {
            finish()
            return
          }
          await publish(applied.round + 1, applied.model)
        }
      },
    })
    retransmit = setInterval(() => {
      // A worker that joined late or lost the announcement would otherwise wait for a model sent once.
      void node
        .republish('model', machine.round)
        .catch((error: unknown) => log.debug({ err: error }, 'republish failed'))
      if (performance.now() - lastProgress > config.quorumTimeoutMs) {
        lastProgress = performance.now()
        log.warn(
          { round: machine.round, quorum: init.gradientQuorum, lastSeq: follower?.lastSeq(), skipped },
          'stalled: the log holds fewer than n−f gradients of this round, waiting',
        )
      }
    }, retransmitEveryMs)
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = () => reject(signal.reason)
      if (signal.aborted) onAbort()
      signal.addEventListener('abort', onAbort, { once: true })
    })
    await Promise.race([finished, follower.done, aborted])
    log.info({ round: machine.round, skipped }, 'smr replica applied every round')
    return { round: machine.round, model: machine.model }
  } finally {
    clearInterval(retransmit)
    await follower?.stop()
    await conn.close()
  }
}

export interface SmrWorkerInit {
  config: ClusterConfig
  nodeId: string
  node: NetNode
  log: Logger
  /** Peer ids of the server replicas, in the order this worker tries them (its own first). */
  replicas: readonly string[]
  gradient(params: Float32Array, round: number): Float32Array
  behaviour?: WorkerBehaviour
  onRound?(event: RoundEvent): void | Promise<void>
}

/**
 * The newest model of round `round` or later (up to `window` ahead) published by `sender`, or
 * `undefined` after `timeoutMs`. Later rounds count: the replicas need only n−f gradients, so
 * a slow worker's replica may have moved on, and the worker follows it rather than stall.
 */
function modelFrom(
  node: NetNode,
  sender: string | undefined,
  round: number,
  window: number,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<DeliveredVector | undefined> {
  const matches = (v: DeliveredVector) =>
    v.kind === 'model' && v.round >= round && (sender === undefined || v.sender === sender)
  for (let ahead = round + window; ahead >= round; ahead--) {
    const already = node.received('model', ahead).find(matches)
    if (already !== undefined) return Promise.resolve(already)
  }
  return new Promise((resolve, reject) => {
    const stop = node.on('vector', (vector) => {
      if (!matches(vector)) return
      cleanup()
      resolve(vector)
    })
    const timer = setTimeout(() => {
      cleanup()
      resolve(undefined)
    }, timeoutMs)
    const onAbort = () => {
      cleanup()
      reject(signal.reason)
    }
    const cleanup = () => {
      stop()
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * One worker: model of round r from its replica (the next one after `smrFailoverMs` of
 * silence), gradient, append to the log. A Byzantine worker in SMR mode crafts from its own
 * gradient only (it does not read the log for honest ones).
 */
export async function runSmrWorker(
  init: SmrWorkerInit,
  rounds: number,
  signal: AbortSignal,
): Promise<number> {
  const { node, log, config } = init
  const behaviour = init.behaviour ?? honestWorker
  const { conn, gradients } = await openGradientLog(init)
  log.info({ stream: gradients.stream, replicas: init.replicas }, 'smr worker appending to the gradient log')
  let replica = 0
  let round = 0
  // Replicas announce their round after each one: a worker left more than the round window
  // behind would reject its replica's models as future ones, so it moves its window there.
  const announced = new Map<string, number>()
  const stopListening = node.on('member', (member) => {
    if (member.role === 'server') announced.set(member.peerId, member.round)
  })
  try {
    while (round < rounds) {
      signal.throwIfAborted()
      const from = init.replicas.length === 0 ? undefined : init.replicas[replica % init.replicas.length]
      const replicaRound = from === undefined ? undefined : announced.get(from)
      if (replicaRound !== undefined && replicaRound > round + config.roundWindow) round = replicaRound
      node.setRound(round)
      const roundStart = performance.now()
      const model = await modelFrom(node, from, round, config.roundWindow, smrFailoverMs, signal)
      if (model === undefined) {
        replica++
        log.warn(
          { round, silent: from, next: init.replicas[replica % init.replicas.length] },
          'replica silent: reading the model from the next replica',
        )
        continue
      }
      const quorumWait = performance.now() - roundStart
      round = model.round
      const gradient = init.gradient(model.vector, round)
      const published = await behaviour.publishGradient(round, gradient, async () => [gradient])
      if (published !== undefined) {
        await gradients.append(encodeModel(published), { worker: init.nodeId, round: String(round) })
      }
      round++
      await init.onRound?.({
        role: 'worker',
        round: round - 1,
        quorumWaitSeconds: quorumWait / 1000,
        quorumWaitByInputSeconds: { models: quorumWait / 1000 },
        roundDurationSeconds: (performance.now() - roundStart) / 1000,
        modelSenders: [model.sender],
      })
    }
    log.info({ rounds, cluster: config.cluster }, 'smr worker appended every round')
    return round
  } finally {
    stopListening()
    await conn.close()
  }
}
