/**
 * How the servers of a cluster are replicated, as one strategy per mode: what it refuses at
 * start-up, what a node subscribes to, how a node joins, and the server and worker loops. The
 * node process (`node-process.ts` and the phase files it calls) knows no mode by name: it asks
 * the registry (`registry.ts`) for the configured one. Adding a mode is one file here, one entry
 * in the registry and its test.
 */
import type { NetNode, VectorKind } from '@phalanx/net'
import type { Logger } from 'pino'
import type { NodeCheckpoints } from '../checkpointing.js'
import type { ClusterConfig } from '../config.js'
import type { RoundEvent, ServerBehaviour, WorkerBehaviour } from '../protocol.js'
import type { RoundTransport } from '../transport.js'
import type { ReplicationModeName } from './names.js'

/** The sizes a mode's bounds are about: N servers (F Byzantine), n workers (f Byzantine). */
export interface ClusterShape {
  N: number
  F: number
  n: number
  f: number
}

/** Where a node starts: round and model (a worker has none), and whether it publishes first. */
export interface NodeStart {
  round: number
  model?: Float32Array
  /**
   * false when it joined a running cluster: it may have published this round before it
   * restarted, and a second, different model would be equivocation.
   */
  publishFirst: boolean
}

/** What a node without saved state has when it decides where to start. */
export interface JoinContext {
  config: ClusterConfig
  role: 'server' | 'worker'
  node: NetNode
  transport: RoundTransport
  log: Logger
  signal: AbortSignal
  checkpoints: NodeCheckpoints | undefined
  /** The highest round this server signed (its watermark), when it keeps one. */
  highestSigned: number | undefined
  /**
   * Settles when the node can run its first round (a node that computes: its tensor backend and
   * dataset, loading in the background since it listened); absent when it is ready already. A
   * join picks the round it starts from only then: picked before, it starts behind by however
   * long the load outlasted the listening, and a busy machine's load outlasted it by seconds.
   */
  ready?: (() => Promise<unknown>) | undefined
}

/** What every mode's server loop is handed (the wiring in `server-role.ts`). */
export interface ServerRun {
  config: ClusterConfig
  nodeId: string
  node: NetNode
  /** The node's transport; its model publishes are guarded by the signing watermark, if any. */
  transport: RoundTransport
  log: Logger
  signal: AbortSignal
  /** The seeded initial model θ(0). */
  initial: Float32Array
  start: NodeStart
  gradientQuorum: number
  aggregate(gradients: readonly Float32Array[]): Float32Array
  /** A gradient sender's rank in the aggregation order (`aggregationOrder`). */
  senderRank(sender: string): number
  learningRate(round: number): number
  behaviour: ServerBehaviour
  onRound(event: RoundEvent, model: Float32Array): void | Promise<void>
}

/** What every mode's worker loop is handed (the wiring in `worker-role.ts`). */
export interface WorkerRun {
  config: ClusterConfig
  nodeId: string
  /** Its index among the workers (`worker-<i>`). */
  index: number
  node: NetNode
  transport: RoundTransport
  log: Logger
  signal: AbortSignal
  start: NodeStart
  gradient(params: Float32Array, round: number): Float32Array
  behaviour: WorkerBehaviour
  onRound(event: RoundEvent): void | Promise<void>
}

export interface ReplicationMode {
  /** The value of the config's `replication` field. */
  readonly name: ReplicationModeName
  /** One line for `--help` and the docs. */
  readonly description: string
  /** Refuses, with a `ClusterBoundError`, a cluster this mode cannot protect. */
  checkBounds(shape: ClusterShape): void
  /**
   * The topics a node of `role` subscribes to, or `undefined` for the data plane's default
   * (servers: gradients and models; workers: models).
   */
  subscriptions(role: 'server' | 'worker', byzantine: boolean): readonly VectorKind[] | undefined
  /**
   * Whether its loops go through the round transport, whose calls beat the liveness probe
   * (`withHeartbeat`); a mode whose loop waits elsewhere must not be declared dead for it.
   */
  readonly heartbeat: boolean
  /** Whether a server with `stateDir` keeps its state there and resumes from it. */
  readonly keepsServerState: boolean
  /** What a run must do once before any node starts (`phalanx local`), e.g. clear a log. */
  beforeRun?(config: ClusterConfig, log: Logger): Promise<void>
  /** Where a node without saved state starts. */
  join(context: JoinContext): Promise<NodeStart>
  /**
   * What a node waits for before its first publish, once it knows where it starts (and did not
   * resume from its own saved state).
   */
  beforeFirstPublish?(context: JoinContext, start: NodeStart): Promise<void>
  /** A server from `run.start` to the configured rounds: its final round and model. */
  runServer(run: ServerRun): Promise<{ round: number; model: Float32Array }>
  /** A worker from `run.start` to the configured rounds: its final round. */
  runWorker(run: WorkerRun): Promise<number>
}
