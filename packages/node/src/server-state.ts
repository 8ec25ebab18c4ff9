/**
 * A server's own last models on local disk (`stateDir`), so that a restarted server process —
 * SIGKILLed, OOM-killed, a container restarted in its pod — goes on where it stopped instead of
 * joining from the median of N−F other servers' models. That join is all an amnesic server has,
 * and it is not enough when more than F servers restart at once: only N−F−1 others then hold a
 * model, nobody can ever gather N−F, and the cluster stays stalled for good (safe, but dead).
 * With its state a restarted server supplies the model the others wait for.
 *
 * Written before the model is published, atomically (temporary file, then rename): what a
 * restarted server publishes is then always what it published or was about to publish for that
 * round, never a second, different model (which its peers would take for equivocation).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from 'pino'

const magic = 'phalanx-server-state/1'

/** One model of one round. */
export interface RoundModel {
  round: number
  model: Float32Array
}

export interface ServerState {
  /** The model the server starts its next round from (it may not have been published yet). */
  next: RoundModel
  /** The model it published in the round before, re-announced for peers one round behind. */
  published?: RoundModel
}

interface Header {
  magic: string
  cluster: string
  nodeId: string
  configHash: string
  dimension: number
  next: number
  published: number | null
}

export interface ServerStateStore {
  readonly path: string
  /** The saved state, or `undefined` when there is none or it belongs to another cluster or config. */
  load(): ServerState | undefined
  save(state: ServerState): void
}

export interface ServerStateInit {
  dir: string
  cluster: string
  nodeId: string
  /** Digest of the training fields: a state saved under another config is never resumed from. */
  configHash: string
  dimension: number
  log: Logger
}

export function createServerStateStore(init: ServerStateInit): ServerStateStore {
  const path = join(init.dir, `${init.nodeId}.state`)
  const log = init.log.child({ component: 'server-state', path })
  mkdirSync(init.dir, { recursive: true })
  return {
    path,
    load() {
      let bytes: Buffer
      try {
        bytes = readFileSync(path)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') log.warn({ err: error }, 'state unreadable')
        return undefined
      }
      const parsed = parse(bytes)
      if (parsed === undefined) {
        log.warn('state file malformed: ignored')
        return undefined
      }
      const { header } = parsed
      const mismatch = (['cluster', 'nodeId', 'configHash', 'dimension'] as const).find(
        (field) => header[field] !== init[field],
      )
      if (mismatch !== undefined) {
        log.warn(
          { field: mismatch, saved: header[mismatch], current: init[mismatch] },
          'state saved under another configuration: ignored',
        )
        return undefined
      }
      return parsed.state
    },
    save(state) {
      const header: Header = {
        magic,
        cluster: init.cluster,
        nodeId: init.nodeId,
        configHash: init.configHash,
        dimension: init.dimension,
        next: state.next.round,
        published: state.published?.round ?? null,
      }
      const headerBytes = Buffer.from(JSON.stringify(header))
      const length = Buffer.alloc(4)
      length.writeUInt32LE(headerBytes.byteLength)
      const models = [state.next.model, ...(state.published ? [state.published.model] : [])]
      const temporary = `${path}.tmp`
      writeFileSync(temporary, Buffer.concat([length, headerBytes, ...models.map(floatBytes)]))
      renameSync(temporary, path)
    },
  }
}

function floatBytes(model: Float32Array): Buffer {
  return Buffer.from(model.buffer, model.byteOffset, model.byteLength)
}

function parse(bytes: Buffer): { header: Header; state: ServerState } | undefined {
  try {
    const headerLength = bytes.readUInt32LE(0)
    const header = JSON.parse(bytes.subarray(4, 4 + headerLength).toString('utf8')) as Header
    if (header.magic !== magic || !Number.isSafeInteger(header.dimension)) return undefined
    const modelBytes = header.dimension * 4
    const count = header.published === null ? 1 : 2
    const body = bytes.subarray(4 + headerLength)
    if (body.byteLength !== count * modelBytes) return undefined
    // Copied out of the file buffer: a Float32Array needs 4-byte alignment.
    const model = (index: number) =>
      new Float32Array(new Uint8Array(body.subarray(index * modelBytes, (index + 1) * modelBytes)).buffer)
    const state: ServerState = { next: { round: header.next, model: model(0) } }
    if (header.published !== null) state.published = { round: header.published, model: model(1) }
    return { header, state }
  } catch {
    return undefined
  }
}
