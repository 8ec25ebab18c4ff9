/**
 * Durable checkpoints in a JetStream object store (models exceed NATS' 1 MiB message limit, so they
 * are chunked there). A restarted cluster never resumes from one server's word: it takes the newest
 * round for which at least N−F distinct member servers (the operator-pinned set the caller passes,
 * never the writers' own claims) stored a checkpoint under the same config hash,
 * verifies every one (digest, dimension, finiteness, optional signature), and resumes from the
 * coordinate-wise median of the survivors — which, with N−F ≥ 2F+1, lies within the honest range.
 */
import { createHash } from 'node:crypto'
import type { ObjectInfo, ObjectStore } from '@nats-io/obj'
import { z } from 'zod'
import {
  DEFAULT_REPLICAS,
  type OpenBucketOptions,
  openCreatedBucket,
  warnIfFewerReplicas,
} from './bucket-open.js'
import type { ControlConnection } from './connection.js'
import { withRetries } from './connection.js'
import { CheckpointQuorumError, InvalidCheckpointError, MedianResultError } from './errors.js'
import { natsJetStream, natsObj } from './nats-modules.js'
import { assertToken } from './subjects.js'

export interface CheckpointInput {
  serverId: string
  round: number
  configHash: string
  model: Float32Array
  /** Signs `checkpointStatement(info)` (the writer's key); the signature is stored in the metadata. */
  sign?: (statement: Uint8Array) => Promise<Uint8Array>
}

/** What `list()` knows from metadata alone, before any model bytes are read. */
export interface CheckpointInfo {
  serverId: string
  round: number
  configHash: string
  /** sha256 (hex) of the model's little-endian float32 bytes, as claimed by the writer. */
  sha256: string
  dimension: number
  objectName: string
  /** Bytes actually stored (may disagree with `dimension` × 4 for a forged checkpoint). */
  size: number
  /** The writer's signature of `checkpointStatement(info)`, base64, when it signed one. */
  signature?: string
}

export type ExclusionReason =
  | 'metadata'
  | 'name-mismatch'
  | 'unknown-server'
  | 'config-hash'
  | 'unreadable'
  | 'digest'
  | 'dimension'
  | 'non-finite'
  | 'signature'

export interface ExcludedCheckpoint {
  objectName: string
  serverId: string
  round: number
  reason: ExclusionReason
  detail: string
}

export interface AgreedCheckpoint {
  round: number
  configHash: string
  /** Coordinate-wise median of the verified models. */
  model: Float32Array
  /** Servers whose verified checkpoint went into the median, sorted. */
  serverIds: string[]
}

export interface AgreementResult {
  /** Undefined when no round has N−F verified checkpoints (e.g. a fresh cluster). */
  agreed: AgreedCheckpoint | undefined
  /** Every checkpoint that was examined and left out, with why. */
  excluded: ExcludedCheckpoint[]
}

export type MedianFn = (models: readonly Float32Array[]) => Float32Array

export interface AgreementOptions {
  /** N−F: how many distinct servers must vouch for a round. */
  serverQuorum: number
  configHash: string
  /** Coordinate-wise median (from @phalanx/aggregation; passed in to keep this package independent). */
  median: MedianFn
  /** Expected model dimension; when absent, the dimension shared by the most verified checkpoints. */
  dimension?: number
  /**
   * Server ids allowed to vouch: the node's verified member servers (config members with the
   * server role and operator-admitted ones), never what a bucket says. Required, so no caller can
   * forget it and count Sybil servers; others are excluded as `unknown-server`.
   */
  servers: readonly string[]
  /**
   * Signature check on the metadata (its sha256 binds the bytes); false excludes the checkpoint.
   * Run before the object is read: a Byzantine server stores forgeries under every server's id
   * at each of its checkpoints, and a starting node that read every one of them before refusing
   * it took longer to start the longer the cluster had run (the soak: 4 s at round 60, 19 s at
   * round 1,100).
   */
  verify?: (info: CheckpointInfo) => boolean | Promise<boolean>
}

export interface CheckpointStore {
  readonly bucket: string
  /** Replicas of the object store's stream as JetStream reports them (an existing one keeps its own). */
  readonly replicas: number
  /** Resolves once JetStream has acknowledged every chunk and the metadata (nothing acked is lost). */
  put(checkpoint: CheckpointInput): Promise<CheckpointInfo>
  list(): Promise<CheckpointInfo[]>
  /** Reads the raw bytes of one checkpoint (no verification: see `agreedCheckpoint`). */
  read(objectName: string): Promise<Uint8Array | null>
  agreedCheckpoint(options: AgreementOptions): Promise<AgreementResult>
  /** Deletes checkpoints of rounds older than the newest `keepRounds` rounds; returns how many. */
  prune(keepRounds: number): Promise<number>
  destroy(): Promise<void>
}

export interface ChooseAgreedInit extends AgreementOptions {
  checkpoints: readonly CheckpointInfo[]
  /** Reads one checkpoint's bytes; a throw excludes it as unreadable. */
  load: (info: CheckpointInfo) => Promise<Uint8Array>
}

export interface CheckpointStoreInit {
  conn: ControlConnection
  /** Replicas of the object store when this call creates it (JetStream allows 1 to 5; default DEFAULT_REPLICAS). */
  replicas?: number
  /** Size of the object-store messages a model is split into. */
  chunkBytes?: number
  /** How long to wait for a bucket this NATS user may not create (a worker's); see bucket-open.ts. */
  bucketWaitMs?: OpenBucketOptions['waitMs']
}

const CHECKPOINT_DEFAULTS = {
  // The single-server default (see DEFAULT_REPLICAS); a node passes its config's `natsReplicas`.
  replicas: DEFAULT_REPLICAS,
  // Well under the 1 MiB default max_payload, and large enough that a 10 MB model is ~40 messages.
  chunkBytes: 256 * 1024,
} as const

const MetadataSchema = z.object({
  serverId: z.string(),
  round: z.string().regex(/^\d+$/),
  configHash: z.string().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  dimension: z.string().regex(/^\d+$/),
  signature: z
    .string()
    .regex(/^[A-Za-z0-9+/]+=*$/)
    .optional(),
})

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** Little-endian float32 bytes, so a checkpoint reads the same on any host. */
export function encodeModel(model: Float32Array): Uint8Array {
  const bytes = new Uint8Array(model.byteLength)
  if (LITTLE_ENDIAN_HOST) {
    bytes.set(new Uint8Array(model.buffer, model.byteOffset, model.byteLength))
  } else {
    const view = new DataView(bytes.buffer)
    for (let i = 0; i < model.length; i += 1) view.setFloat32(i * 4, model[i]!, true)
  }
  return bytes
}

export function decodeModel(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`${bytes.byteLength} bytes is not a float32 vector`)
  const model = new Float32Array(bytes.byteLength / 4)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; i < model.length; i += 1) model[i] = view.getFloat32(i * 4, true)
  return model
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * What a writer signs: everything that says which model this is and whose, so a signature cannot
 * be moved to another round, config, server or model.
 */
export function checkpointStatement(
  info: Pick<CheckpointInfo, 'serverId' | 'round' | 'configHash' | 'sha256'>,
): Uint8Array {
  return new TextEncoder().encode(
    `phalanx-checkpoint/1\n${info.serverId}\n${info.round}\n${info.configHash}\n${info.sha256}`,
  )
}

/** One object per (round, server): a second write by the same server for a round replaces the first. */
export function checkpointObjectName(serverId: string, round: number): string {
  return `round-${String(round).padStart(12, '0')}/${serverId}`
}

/** Metadata → info; undefined (and an exclusion) when the metadata is malformed. */
function toCheckpointInfo(object: ObjectInfo): CheckpointInfo | ExcludedCheckpoint {
  const parsed = MetadataSchema.safeParse(object.metadata ?? {})
  if (!parsed.success) {
    return {
      objectName: object.name,
      serverId: '?',
      round: -1,
      reason: 'metadata',
      detail: parsed.error.message,
    }
  }
  return {
    serverId: parsed.data.serverId,
    round: Number(parsed.data.round),
    configHash: parsed.data.configHash,
    sha256: parsed.data.sha256,
    dimension: Number(parsed.data.dimension),
    objectName: object.name,
    size: object.size,
    ...(parsed.data.signature === undefined ? {} : { signature: parsed.data.signature }),
  }
}

export async function createCheckpointStore(init: CheckpointStoreInit): Promise<CheckpointStore> {
  const { conn } = init
  const log = conn.log.child({ component: 'checkpoints' })
  const bucket = conn.subjects.checkpointsBucket
  const chunkBytes = init.chunkBytes ?? CHECKPOINT_DEFAULTS.chunkBytes
  const nc = await conn.connected()
  const [{ Objm }, { StorageType }] = await Promise.all([natsObj(), natsJetStream()])
  const objm = new Objm(nc)
  // Created by the first server; a worker (no STREAM.CREATE) that looks first waits for it.
  const store: ObjectStore = await openCreatedBucket(
    conn,
    bucket,
    () =>
      objm.create(bucket, {
        replicas: init.replicas ?? CHECKPOINT_DEFAULTS.replicas,
        storage: StorageType.File,
      }),
    init.bucketWaitMs === undefined ? {} : { waitMs: init.bucketWaitMs },
  )
  const { replicas } = await withRetries(conn, `status ${bucket}`, () => store.status())
  warnIfFewerReplicas(conn, bucket, init.replicas ?? CHECKPOINT_DEFAULTS.replicas, replicas)

  const listAll = async (): Promise<{ infos: CheckpointInfo[]; malformed: ExcludedCheckpoint[] }> => {
    const infos: CheckpointInfo[] = []
    const malformed: ExcludedCheckpoint[] = []
    for (const object of await withRetries(conn, 'list checkpoints', () => store.list())) {
      if (object.deleted) continue
      const info = toCheckpointInfo(object)
      if ('reason' in info) malformed.push(info)
      else infos.push(info)
    }
    return { infos, malformed }
  }

  return {
    bucket,
    replicas,
    async put({ serverId, round, configHash, model, sign }) {
      assertToken(serverId, 'serverId')
      const invalid = (reason: string) =>
        new InvalidCheckpointError(`checkpoint of ${serverId} for round ${round}: ${reason}`, {
          serverId,
          round,
          reason,
        })
      if (!Number.isInteger(round) || round < 0) throw invalid('round must be a non-negative integer')
      if (model.length === 0) throw invalid('empty model')
      if (!model.every(Number.isFinite)) throw invalid('non-finite value in the model')
      const bytes = encodeModel(model)
      const info: CheckpointInfo = {
        serverId,
        round,
        configHash,
        sha256: sha256Hex(bytes),
        dimension: model.length,
        objectName: checkpointObjectName(serverId, round),
        size: bytes.byteLength,
      }
      if (sign !== undefined) {
        info.signature = Buffer.from(await sign(checkpointStatement(info))).toString('base64')
      }
      // Re-putting the same name replaces the object, so a retry cannot leave two versions behind.
      await withRetries(conn, `checkpoint ${info.objectName}`, () =>
        store.putBlob(
          {
            name: info.objectName,
            options: { max_chunk_size: chunkBytes },
            metadata: {
              serverId,
              round: String(round),
              configHash,
              sha256: info.sha256,
              dimension: String(info.dimension),
              ...(info.signature === undefined ? {} : { signature: info.signature }),
            },
          },
          bytes,
        ),
      )
      log.info(
        { serverId, round, configHash, dimension: info.dimension, sha256: info.sha256 },
        'checkpoint stored',
      )
      conn.publish('checkpoint', conn.subjects.checkpoints, {
        serverId,
        round,
        configHash,
        sha256: info.sha256,
        dimension: info.dimension,
        objectName: info.objectName,
      })
      return info
    },
    async list() {
      const { infos } = await listAll()
      return infos.sort((a, b) => b.round - a.round || (a.serverId < b.serverId ? -1 : 1))
    },
    read: (objectName) => store.getBlob(objectName),
    async agreedCheckpoint(options) {
      const { infos, malformed } = await listAll()
      const result = await chooseAgreedCheckpoint({
        ...options,
        checkpoints: infos,
        load: async (info) => {
          const bytes = await withRetries(conn, `read ${info.objectName}`, () =>
            store.getBlob(info.objectName),
          )
          if (bytes === null) throw new Error(`object ${info.objectName} vanished`)
          return bytes
        },
      })
      result.excluded.unshift(...malformed)
      for (const excluded of result.excluded) {
        log.warn(excluded, 'checkpoint excluded from agreement')
      }
      if (result.agreed !== undefined) {
        const { round, serverIds } = result.agreed
        log.info({ round, serverIds, configHash: options.configHash }, 'agreed checkpoint found')
      }
      return result
    },
    async prune(keepRounds) {
      const { infos } = await listAll()
      const rounds = [...new Set(infos.map((info) => info.round))].sort((a, b) => b - a)
      const keep = new Set(rounds.slice(0, Math.max(0, keepRounds)))
      let deleted = 0
      for (const info of infos) {
        if (keep.has(info.round)) continue
        await store.delete(info.objectName)
        deleted += 1
      }
      return deleted
    },
    async destroy() {
      await objm.js.jetstreamManager().then((jsm) => jsm.streams.delete(`OBJ_${bucket}`))
    },
  }
}

/**
 * The agreement rule, independent of NATS: newest round first, a round qualifies when at least
 * `serverQuorum` distinct servers hold a verified checkpoint for it; older rounds are only read when
 * a newer one fails, so a healthy restart reads exactly one round's models.
 */
export async function chooseAgreedCheckpoint(init: ChooseAgreedInit): Promise<AgreementResult> {
  const { serverQuorum, configHash } = init
  if (!Number.isInteger(serverQuorum) || serverQuorum < 1) {
    throw new CheckpointQuorumError(`serverQuorum must be a positive integer, got ${serverQuorum}`, {
      serverQuorum,
    })
  }
  const excluded: ExcludedCheckpoint[] = []
  const exclude = (info: CheckpointInfo, reason: ExclusionReason, detail: string): void => {
    excluded.push({ objectName: info.objectName, serverId: info.serverId, round: info.round, reason, detail })
  }
  const allowed = new Set(init.servers)
  const byRound = new Map<number, CheckpointInfo[]>()
  for (const info of init.checkpoints) {
    if (info.objectName !== checkpointObjectName(info.serverId, info.round)) {
      exclude(info, 'name-mismatch', `metadata says ${info.serverId}@${info.round}`)
    } else if (!allowed.has(info.serverId)) {
      exclude(info, 'unknown-server', `${info.serverId} is not a member`)
    } else if (info.configHash !== configHash) {
      exclude(info, 'config-hash', `config hash ${info.configHash}, expected ${configHash}`)
    } else {
      const list = byRound.get(info.round) ?? []
      list.push(info)
      byRound.set(info.round, list)
    }
  }
  const rounds = [...byRound.keys()].sort((a, b) => b - a)
  for (const round of rounds) {
    const candidates = byRound.get(round)!
    if (candidates.length < serverQuorum) continue
    const verified: { info: CheckpointInfo; model: Float32Array }[] = []
    for (const info of candidates) {
      const model = await verifyOne(info, init, exclude)
      if (model !== undefined) verified.push({ info, model })
    }
    const dimension = init.dimension ?? mostCommonDimension(verified.map((v) => v.model.length))
    const agreeing = verified.filter(({ info, model }) => {
      if (model.length === dimension) return true
      exclude(info, 'dimension', `dimension ${model.length}, expected ${dimension}`)
      return false
    })
    if (agreeing.length < serverQuorum) continue
    agreeing.sort((a, b) => (a.info.serverId < b.info.serverId ? -1 : 1))
    const model = init.median(agreeing.map((v) => v.model))
    if (model.length !== dimension || !model.every(Number.isFinite)) {
      throw new MedianResultError(
        'the median of verified checkpoints is not a finite vector of their dimension',
        {
          expectedDimension: dimension,
          actualDimension: model.length,
        },
      )
    }
    return {
      agreed: { round, configHash, model, serverIds: agreeing.map((v) => v.info.serverId) },
      excluded,
    }
  }
  return { agreed: undefined, excluded }
}

async function verifyOne(
  info: CheckpointInfo,
  init: ChooseAgreedInit,
  exclude: (info: CheckpointInfo, reason: ExclusionReason, detail: string) => void,
): Promise<Float32Array | undefined> {
  if (init.verify !== undefined && !(await init.verify(info))) {
    exclude(info, 'signature', 'verify callback rejected the checkpoint')
    return undefined
  }
  let bytes: Uint8Array
  try {
    bytes = await init.load(info)
  } catch (error) {
    exclude(info, 'unreadable', error instanceof Error ? error.message : String(error))
    return undefined
  }
  const digest = sha256Hex(bytes)
  if (digest !== info.sha256) {
    exclude(info, 'digest', `sha256 ${digest}, metadata claims ${info.sha256}`)
    return undefined
  }
  if (bytes.byteLength % 4 !== 0 || bytes.byteLength / 4 !== info.dimension) {
    exclude(info, 'dimension', `${bytes.byteLength} bytes for a claimed dimension of ${info.dimension}`)
    return undefined
  }
  const model = decodeModel(bytes)
  if (!model.every(Number.isFinite)) {
    exclude(info, 'non-finite', 'NaN or infinite value in the model')
    return undefined
  }
  return model
}

/** The dimension most verified checkpoints share; ties go to the larger count, then the smaller value. */
function mostCommonDimension(dimensions: readonly number[]): number {
  const counts = new Map<number, number>()
  for (const d of dimensions) counts.set(d, (counts.get(d) ?? 0) + 1)
  let best = 0
  let bestCount = 0
  for (const [d, count] of counts) {
    if (count > bestCount || (count === bestCount && d < best)) {
      best = d
      bestCount = count
    }
  }
  return best
}
