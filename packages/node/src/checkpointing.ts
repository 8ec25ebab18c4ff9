/**
 * Checkpoints of a running node: honest servers store their model every `checkpointEvery` rounds
 * in the control plane's object store, signed with their peer key, and a starting node with no
 * running cluster to join looks up the newest checkpoint N−F verified member servers (the config's
 * and the operator's, never a bucket's raw contents) agree on for the same
 * config (never one server's word: see `agreedCheckpoint` in @phalanx/control; a checkpoint whose
 * signature is not its claimed server's is left out, so a server cannot vouch under another's
 * name) and resumes there. Training never waits for a store: a checkpoint is written in the
 * background, and only the latest one waits its turn.
 */
import { createHash } from 'node:crypto'
import {
  type AgreedCheckpoint,
  type CheckpointInfo,
  type CheckpointStore,
  type ControlConnection,
  checkpointStatement,
  connectedWithin,
  createCheckpointStore,
  encodeModel,
  sha256Hex,
} from '@phalanx/control'
import { verifyPeerSignature } from '@phalanx/net'
import type { Logger } from 'pino'
import type { ClusterConfig } from './config.js'
import { type CheckpointForgery, modelMedian, type StoredCheckpoint, serverQuorum } from './roles.js'

/**
 * The fields that decide what model a round produces. Per-node settings (ids, addresses, ports,
 * keys) and how many rounds to run do not, so a cluster restarted with more rounds, or on other
 * ports, still finds its checkpoints.
 */
const trainingFields = [
  'cluster',
  'servers',
  'byzantineServers',
  'serverAttack',
  'workers',
  'byzantineWorkers',
  'workerAttack',
  'signFlipScale',
  'gaussianSigma',
  'ipmEpsilon',
  'alieZ',
  'hiddenShiftScale',
  'hiddenShiftSign',
  'rule',
  'preAggregation',
  'replication',
  'exchangeEvery',
  'model',
  'dataset',
  'seed',
  'learningRate',
  'batchSize',
  'momentum',
] as const satisfies readonly (keyof ClusterConfig)[]

/** A short digest of the training fields: checkpoints of another config are never resumed from. */
export function configHash(config: ClusterConfig): string {
  const fields = Object.fromEntries(trainingFields.map((field) => [field, config[field]]))
  return createHash('sha256').update(JSON.stringify(fields)).digest('hex').slice(0, 16)
}

export interface NodeCheckpoints {
  readonly configHash: string
  /** The newest agreed checkpoint, or undefined when there is none or NATS does not answer in time. */
  agreed(): Promise<AgreedCheckpoint | undefined>
  /** Stores `model` as this server's model for `round` (in the background; see the module comment). */
  save(round: number, model: Float32Array): void
}

export interface NodeCheckpointsInit {
  config: ClusterConfig
  conn: ControlConnection
  log: Logger
  /** The id checkpoints are stored under: this node's peer id, whose key signs them. */
  peerId: string
  sign: (statement: Uint8Array) => Promise<Uint8Array>
  /**
   * Peer ids of the servers whose checkpoints count: the node's verified member servers (config
   * members with the server role and operator-admitted ones; `ControlPlane.memberServers`). Never
   * read from a bucket here: anyone who can write one could add Sybil servers to it.
   */
  memberServers: () => Promise<readonly string[]>
  dimension: number
  /** What this server stores for an honest `{ round, model }`; default: exactly that. */
  forge?: CheckpointForgery
}

const CHECKPOINTING_DEFAULTS = {
  // Long enough for a NATS pod that restarts with the cluster; past it the node starts afresh
  // (or joins the running cluster) rather than wait for the control plane indefinitely.
  lookupTimeoutMs: 15_000,
} as const

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeoutMs} ms`)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

export function createNodeCheckpoints(init: NodeCheckpointsInit): NodeCheckpoints {
  const { config, conn, peerId, dimension } = init
  const log = init.log.child({ component: 'checkpointing' })
  const hash = configHash(config)
  let store: Promise<CheckpointStore> | undefined
  const storeOf = (): Promise<CheckpointStore> => {
    // A worker may not create the store; one that starts before every server waits for it no
    // longer than the lookup itself may take (it then starts afresh or joins the running cluster).
    store ??= createCheckpointStore({
      conn,
      replicas: config.natsReplicas,
      bucketWaitMs: CHECKPOINTING_DEFAULTS.lookupTimeoutMs,
    })
    // A failed open is retried by the next caller instead of being remembered forever.
    store.catch(() => {
      store = undefined
    })
    return store
  }
  // Who may vouch for a round: the verified member servers, bounded in time like the lookup.
  const serverIds = (): Promise<readonly string[]> =>
    withTimeout(init.memberServers(), CHECKPOINTING_DEFAULTS.lookupTimeoutMs, 'member servers')
  const signedByItsServer = async (info: CheckpointInfo): Promise<boolean> =>
    info.signature !== undefined &&
    verifyPeerSignature(info.serverId, checkpointStatement(info), Buffer.from(info.signature, 'base64'))

  let inFlight = false
  let waiting: StoredCheckpoint | undefined
  const write = async (checkpoint: StoredCheckpoint): Promise<void> => {
    const target = await storeOf()
    const stored = init.forge === undefined ? [checkpoint] : init.forge(checkpoint, await serverIds())
    for (const { serverId, round, model } of stored) {
      await target.put({ serverId: serverId ?? peerId, round, model, configHash: hash, sign: init.sign })
    }
  }
  const drain = (): void => {
    const next = waiting
    if (next === undefined || inFlight) return
    waiting = undefined
    inFlight = true
    write(next)
      .catch((error: unknown) => log.warn({ err: error, round: next.round }, 'checkpoint not stored'))
      .finally(() => {
        inFlight = false
        drain()
      })
  }

  return {
    configHash: hash,
    async agreed() {
      try {
        await connectedWithin(conn, CHECKPOINTING_DEFAULTS.lookupTimeoutMs, 'checkpoint lookup')
        const { agreed } = await (await storeOf()).agreedCheckpoint({
          serverQuorum: serverQuorum(config),
          configHash: hash,
          median: modelMedian,
          dimension,
          servers: await serverIds(),
          verify: signedByItsServer,
        })
        return agreed
      } catch (error) {
        log.warn({ err: error, configHash: hash }, 'no checkpoint lookup: starting without one')
        return undefined
      }
    },
    save(round, model) {
      // While a write is in flight only the newest checkpoint waits: an outage must not queue one
      // write per k rounds, and an older checkpoint is worth nothing once a newer one exists.
      waiting = { round, model }
      drain()
    },
  }
}

/** What a starting node logs about the checkpoint it resumes from (the digest lets tests and operators check the model). */
export function describeAgreed(agreed: AgreedCheckpoint): Record<string, unknown> {
  return {
    round: agreed.round,
    configHash: agreed.configHash,
    serverIds: agreed.serverIds,
    sha256: sha256Hex(encodeModel(agreed.model)),
  }
}
