/**
 * Checkpoints of a running node: honest servers store their model every `checkpointEvery` rounds
 * in the control plane's object store, and a starting node with no running cluster to join looks
 * up the newest checkpoint N−F servers agree on for the same config (never one server's word:
 * see `agreedCheckpoint` in @phalanx/control) and resumes there. Training never waits for a
 * store: a checkpoint is written in the background, and only the latest one waits its turn.
 */
import { createHash } from 'node:crypto'
import {
  type AgreedCheckpoint,
  type CheckpointStore,
  type ControlConnection,
  connectedWithin,
  createCheckpointStore,
  encodeModel,
  sha256Hex,
} from '@phalanx/control'
import type { Logger } from 'pino'
import type { ClusterConfig } from './config.js'
import { modelMedian, serverQuorum } from './roles.js'

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

/** A checkpoint a node stores instead of its honest model (a Byzantine server's forgeries). */
export interface StoredCheckpoint {
  round: number
  model: Float32Array
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
  /** The id checkpoints are stored under (this server's node id). */
  serverId: string
  dimension: number
  /** What this server stores for an honest `{ round, model }`; default: exactly that. */
  forge?: (honest: StoredCheckpoint) => StoredCheckpoint[]
}

const CHECKPOINTING_DEFAULTS = {
  // Long enough for a NATS pod that restarts with the cluster; past it the node starts afresh
  // (or joins the running cluster) rather than wait for the control plane indefinitely.
  lookupTimeoutMs: 15_000,
} as const

export function createNodeCheckpoints(init: NodeCheckpointsInit): NodeCheckpoints {
  const { config, conn, serverId, dimension } = init
  const log = init.log.child({ component: 'checkpointing' })
  const hash = configHash(config)
  let store: Promise<CheckpointStore> | undefined
  const storeOf = (): Promise<CheckpointStore> => {
    store ??= createCheckpointStore({ conn })
    // A failed open is retried by the next caller instead of being remembered forever.
    store.catch(() => {
      store = undefined
    })
    return store
  }
  // Server ids allowed to vouch: the configured servers when the member set is static; with a
  // member set from NATS any id counts, and only N−F distinct ones make a round.
  const servers = config.members
    .map((entry) => entry.slice(0, entry.indexOf(':')))
    .filter((nodeId) => nodeId.startsWith('server-'))

  let inFlight = false
  let waiting: StoredCheckpoint | undefined
  const write = async (checkpoint: StoredCheckpoint): Promise<void> => {
    const target = await storeOf()
    for (const stored of init.forge?.(checkpoint) ?? [checkpoint]) {
      await target.put({ serverId, configHash: hash, ...stored })
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
          ...(servers.length > 0 ? { servers } : {}),
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
