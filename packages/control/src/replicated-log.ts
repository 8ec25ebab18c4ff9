/**
 * A totally ordered, replicated log on a JetStream stream (Raft underneath when replicas > 1): the
 * building block of the SMR baseline, where every replica applies the same entries in stream order.
 * Entries larger than NATS' max payload (1 MiB by default) are split into chunks; an entry's place
 * in the order is the stream sequence of its last chunk, which every follower computes identically
 * even when writers interleave. Appends carry message ids so a retried chunk is stored once.
 */
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream'
import type { MsgHdrs } from '@nats-io/transport-node'
import { warnIfFewerReplicas } from './bucket-open.js'
import type { ControlConnection } from './connection.js'
import { withRetries } from './connection.js'
import { LogEntryCorruptError } from './errors.js'
import { natsCore, natsJetStream } from './nats-modules.js'

export interface LogEntry {
  /** Stream sequence of the entry's last chunk: its position in the total order. */
  seq: number
  data: Uint8Array
  meta: Record<string, string>
}

export interface LogFollower {
  /** Sequence of the last entry delivered (0 before the first). */
  lastSeq(): number
  stop(): Promise<void>
  /** Settles when the follower stops (rejects if `onEntry` threw or the log is corrupt). */
  readonly done: Promise<void>
}

export interface FollowInit {
  /** Deliver entries whose first chunk is at or after this sequence (default 1: the whole log). */
  fromSeq?: number
  onEntry: (entry: LogEntry) => void | Promise<void>
}

export interface ReplicatedLogInfo {
  stream: string
  messages: number
  lastSeq: number
  replicas: number
  leader: string | undefined
}

export interface ReplicatedLog {
  readonly stream: string
  readonly subject: string
  /**
   * Resolves once JetStream acknowledged every chunk, i.e. a quorum of replicas stored the entry.
   * If it rejects, the entry may still be in the log (an acknowledgement can be lost): followers
   * deliver an entry exactly when its last chunk was stored, so every replica agrees either way.
   */
  append(data: Uint8Array, meta?: Record<string, string>): Promise<{ seq: number }>
  follow(init: FollowInit): Promise<LogFollower>
  info(): Promise<ReplicatedLogInfo>
  destroy(): Promise<void>
}

export interface ReplicatedLogInit {
  conn: ControlConnection
  /** Log name, one subject token: the stream is `phalanx-<cluster>-<name>`. */
  name: string
  replicas?: number
  chunkBytes?: number
  publishAttempts?: number
  ackTimeoutMs?: number
  idlePollMs?: number
}

const LOG_DEFAULTS = {
  // Three replicas is the smallest Raft group that survives one crashed NATS server.
  replicas: 3,
  // Half of the default 1 MiB max_payload leaves room for headers and protocol framing.
  chunkBytes: 512 * 1024,
  // A leader election after a NATS server dies takes a few seconds; retries span it.
  publishAttempts: 8,
  ackTimeoutMs: 5_000,
  // Only a fallback: followers are woken by the append itself.
  idlePollMs: 1_000,
} as const

const ENTRY_HEADER = 'Phalanx-Entry'
const CHUNK_HEADER = 'Phalanx-Chunk'
const META_HEADER = 'Phalanx-Meta'

export async function createReplicatedLog(init: ReplicatedLogInit): Promise<ReplicatedLog> {
  const { conn } = init
  const options = {
    replicas: init.replicas ?? LOG_DEFAULTS.replicas,
    chunkBytes: init.chunkBytes ?? LOG_DEFAULTS.chunkBytes,
    publishAttempts: init.publishAttempts ?? LOG_DEFAULTS.publishAttempts,
    ackTimeoutMs: init.ackTimeoutMs ?? LOG_DEFAULTS.ackTimeoutMs,
    idlePollMs: init.idlePollMs ?? LOG_DEFAULTS.idlePollMs,
  }
  const { subject, stream } = conn.subjects.log(init.name)
  const log = conn.log.child({ component: 'replicated-log', stream })
  const nc = await conn.connected()
  const [{ headers: natsHeaders, nuid }, { jetstream, jetstreamManager }] = await Promise.all([
    natsCore(),
    natsJetStream(),
  ])
  const js: JetStreamClient = jetstream(nc, { timeout: options.ackTimeoutMs })
  const jsm: JetStreamManager = await jetstreamManager(nc, { timeout: options.ackTimeoutMs })
  // Right after a NATS cluster starts, the meta leader may not be elected yet: retry the creation.
  const actualReplicas = await withRetries(conn, `create stream ${stream}`, () =>
    ensureStream(jsm, { stream, subject, replicas: options.replicas }),
  )
  warnIfFewerReplicas(conn, stream, options.replicas, actualReplicas)

  const publishChunk = async (chunk: Uint8Array, headers: MsgHdrs, msgID: string) => {
    let lastError: unknown
    for (let attempt = 1; attempt <= options.publishAttempts; attempt += 1) {
      try {
        return await js.publish(subject, chunk, { headers, msgID, timeout: options.ackTimeoutMs })
      } catch (error) {
        lastError = error
        log.warn({ err: error, attempt, msgID }, 'append not acknowledged; retrying with the same message id')
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)))
      }
    }
    throw lastError
  }

  return {
    stream,
    subject,
    async append(data, meta = {}) {
      const entryId = nuid.next()
      const count = Math.max(1, Math.ceil(data.byteLength / options.chunkBytes))
      let seq = 0
      for (let index = 0; index < count; index += 1) {
        const headers = natsHeaders()
        headers.set(ENTRY_HEADER, entryId)
        headers.set(CHUNK_HEADER, `${index}/${count}`)
        if (index === count - 1) headers.set(META_HEADER, JSON.stringify(meta))
        const chunk = data.subarray(index * options.chunkBytes, (index + 1) * options.chunkBytes)
        const ack = await publishChunk(chunk, headers, `${entryId}-${index}`)
        seq = ack.seq
      }
      return { seq }
    },
    async follow({ fromSeq = 1, onEntry }) {
      const partial = new Map<string, { chunks: Uint8Array[]; count: number }>()
      let lastSeq = 0
      let stopped = false
      let wake: (() => void) | undefined
      let rang = false
      // Every appended chunk rings the doorbell, so an idle follower reads as soon as there is data;
      // the poll interval only covers doorbells lost across a reconnect.
      const doorbell = nc.subscribe(subject, {
        callback: () => {
          rang = true
          wake?.()
        },
      })
      const idle = () =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, options.idlePollMs)
          wake = () => {
            clearTimeout(timer)
            resolve()
          }
        }).finally(() => {
          wake = undefined
        })

      const deliver = async (message: StoredMsg): Promise<void> => {
        const entryId = message.header?.get(ENTRY_HEADER) ?? ''
        const [indexText, countText] = (message.header?.get(CHUNK_HEADER) || '0/1').split('/')
        const index = Number(indexText)
        const count = Number(countText)
        const pending = partial.get(entryId) ?? { chunks: [], count }
        if (index !== pending.chunks.length) {
          // Without the entry's first chunk (the follower started mid-entry) the entry is skipped;
          // a gap inside an entry it has begun means a broken log.
          if (pending.chunks.length === 0) return
          throw new LogEntryCorruptError(`chunk ${index}/${count} of entry ${entryId} out of order`, {
            stream,
            seq: message.seq,
          })
        }
        pending.chunks.push(message.data)
        if (pending.chunks.length < count) {
          partial.set(entryId, pending)
          return
        }
        partial.delete(entryId)
        const data = pending.chunks.length === 1 ? pending.chunks[0]! : concat(pending.chunks)
        const meta = JSON.parse(message.header?.get(META_HEADER) || '{}') as Record<string, string>
        lastSeq = message.seq
        await onEntry({ seq: message.seq, data, meta })
      }

      // Reads by sequence number rather than through a consumer: each read is an independent request
      // any stream leader answers, so a killed NATS server costs a retry, not a consumer to rebuild.
      const done = (async () => {
        let next = fromSeq
        let failures = 0
        let suspectedDeleted = 0
        while (!stopped) {
          let message: StoredMsg | null
          rang = false
          try {
            message = await jsm.streams.getMessage(stream, { seq: next })
            failures = 0
          } catch (error) {
            failures += 1
            if (failures === 1 || failures % 10 === 0) {
              log.warn({ err: error, seq: next, failures }, 'log read failed; retrying')
            }
            await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 50 * 2 ** failures)))
            continue
          }
          if (message !== null) {
            await deliver(message)
            next = message.seq + 1
            continue
          }
          const state = await jsm.streams
            .info(stream)
            .then((info) => info.state)
            .catch(() => undefined)
          if (state !== undefined && next < state.first_seq) {
            next = state.first_seq
          } else if (state !== undefined && next <= state.last_seq) {
            // The message may have been stored between the read and the info: read it once more,
            // and only a second miss means it was deleted.
            if (suspectedDeleted === next) next += 1
            else suspectedDeleted = next
          } else if (!rang) {
            await idle()
          }
        }
      })()
      done.catch(() => undefined).finally(() => doorbell.unsubscribe())
      return {
        lastSeq: () => lastSeq,
        stop: async () => {
          stopped = true
          wake?.()
          await done.catch(() => undefined)
        },
        done,
      }
    },
    async info() {
      const info = await jsm.streams.info(stream)
      return {
        stream,
        messages: info.state.messages,
        lastSeq: info.state.last_seq,
        replicas: info.config.num_replicas,
        leader: info.cluster?.leader,
      }
    },
    async destroy() {
      await jsm.streams.delete(stream)
    },
  }
}

/** Creates the stream unless it exists; resolves with its replicas (an existing one keeps its own). */
async function ensureStream(
  jsm: JetStreamManager,
  spec: { stream: string; subject: string; replicas: number },
): Promise<number> {
  const { RetentionPolicy, StorageType } = await natsJetStream()
  try {
    return (await jsm.streams.info(spec.stream)).config.num_replicas
  } catch {
    const created = await jsm.streams.add({
      name: spec.stream,
      subjects: [spec.subject],
      num_replicas: spec.replicas,
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      // Two minutes of message-id memory covers any retry of an append.
      duplicate_window: 120_000_000_000,
    })
    return created.config.num_replicas
  }
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0)
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.byteLength
  }
  return out
}
