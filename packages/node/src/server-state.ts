/**
 * A server's own last models on local disk (`stateDir`), so that a restarted server process —
 * SIGKILLed, OOM-killed, a container restarted in its pod — goes on where it stopped instead of
 * joining from the median of N−F other servers' models. That join is all an amnesic server has,
 * and it is not enough when more than F servers restart at once: only N−F−1 others then hold a
 * model, nobody can ever gather N−F, and the cluster stays stalled for good (safe, but dead).
 * With its state a restarted server supplies the model the others wait for.
 *
 * Two files per server, both written durably (temporary file, fsync, rename, fsync of the
 * directory) and both framed the same way (magic, version, lengths, JSON header, body, sha256
 * over all of it):
 *
 * - `<nodeId>.state`: the model of the next round, saved before it is published (and the model
 *   published the round before). Resumed from, it makes the server publish again exactly what it
 *   published or was about to publish for that round.
 * - `<nodeId>.signed`: the signed-round watermark — the highest round this server signed a model
 *   for and that model's sha256 (and the round before's). Written before every publish, tiny, so
 *   it survives what corrupts or loses the big state file. `createSigningGuard` refuses, against
 *   it, any signature of a round the server may already have signed with another model: that
 *   second model is what its peers would take for equivocation, and an honest server that
 *   equivocates is a Byzantine one.
 *
 * A file that fails any check is refused with a `ServerStateError` (its `code` says which check),
 * logged and counted, never half-used: the server then starts amnesic (the median of N−F models)
 * and the watermark keeps it from signing again what it signed before.
 *
 * When the watermark is lost too (both files corrupt, the directory wiped, a new disk), nothing
 * records what the server signed. It then assumes it cannot have signed more than one round past
 * the highest round F+1 servers announce when it joins (at most F of them lie, and its last signed
 * round r+1 needed n−f gradients of round r, sent by workers holding N−F models of round r), and
 * signs nothing up to that round plus one: a round or two of silence, which N−F honest others
 * cover. That is an assumption about timing, not a proof (a cluster stalled with exactly its
 * model missing could announce less); the watermark exists so that it is rarely relied on.
 */
import { createHash } from 'node:crypto'
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Logger } from 'pino'
import { z } from 'zod'
import { ServerStateError, type ServerStateErrorCode } from './errors.js'
import { type Failpoints, noFailpoints } from './failpoints.js'
import type { RoundTransport } from './transport.js'

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

/** What loading found: nothing, a file of another cluster/config, a refused file, or the state. */
export type StateLoad<T> =
  | { status: 'none' }
  | { status: 'foreign'; field: string }
  | { status: 'refused'; error: ServerStateError }
  | { status: 'loaded'; value: T }

export interface ServerStateStore {
  readonly path: string
  /** Refused files so far (any code); each is also logged with its code. */
  readonly counters: { readonly state_files_refused_total: number }
  /** The saved state, or `undefined` when there is none, it is foreign, or it was refused. */
  load(): ServerState | undefined
  /** What `load` saw, with the reason when it gave nothing. */
  inspect(): StateLoad<ServerState>
  /** Durable once it returns; throws ServerStateError (`state_write_failed`, `state_non_finite`). */
  save(state: ServerState): void
}

export interface ServerStateInit {
  dir: string
  cluster: string
  nodeId: string
  /** Digest of the training fields: a state saved under another config is never resumed from. */
  configHash: string
  dimension: number
  /** The configured rounds: a saved round beyond them is refused (no honest server got there). */
  rounds?: number
  log: Logger
  /** Test-only crash points (see failpoints.ts); none by default. */
  failpoints?: Failpoints
}

const stateMagic = Buffer.from('PHXSTATE')
const watermarkMagic = Buffer.from('PHXSIGNW')
/** Version 1 was the unframed, unchecked JSON-plus-floats file: refused as `state_bad_magic`. */
const formatVersion = 2
/** magic (8) · version (u32) · header length (u32) · body length (u32). */
const prefixBytes = 20
const checksumBytes = 32
/** Headers are a few hundred bytes; the bound keeps a corrupt length from asking for gigabytes. */
const maxHeaderBytes = 64 * 1024
/** 2^28 parameters (1 GiB of float32) is far beyond any model here and bounds the allocation. */
const maxDimension = 2 ** 28
/** Rounds are exact integers; without `rounds` the bound is what stays exact in a double. */
const maxRound = Number.MAX_SAFE_INTEGER

const identity = {
  cluster: z.string().min(1).max(256),
  nodeId: z.string().min(1).max(256),
  configHash: z.string().min(1).max(256),
}
const round = z.number().int().min(0).max(maxRound)
const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/)

const stateHeaderSchema = z
  .object({
    ...identity,
    dimension: z.number().int().min(1).max(maxDimension),
    next: round,
    published: round.nullable(),
  })
  .strict()
  // The only model kept besides `next` is the one published in the round just before it.
  .refine((header) => header.published === null || header.published === header.next - 1, {
    message: 'published must be next − 1',
  })
type StateHeader = z.infer<typeof stateHeaderSchema>

const signedRoundSchema = z.object({ round, hash: sha256Hex }).strict()
const watermarkHeaderSchema = z
  .object({ ...identity, round, hash: sha256Hex, previous: signedRoundSchema.nullable() })
  .strict()
  .refine((header) => header.previous === null || header.previous.round < header.round, {
    message: 'previous must be an earlier round',
  })
type WatermarkHeader = z.infer<typeof watermarkHeaderSchema>

/** The sha256 of a model's float32 bytes, as recorded in the watermark. */
export function modelHash(model: Float32Array): string {
  return createHash('sha256').update(floatBytes(model)).digest('hex')
}

export function createServerStateStore(init: ServerStateInit): ServerStateStore {
  const path = join(init.dir, `${init.nodeId}.state`)
  const log = init.log.child({ component: 'server-state', path })
  const failpoints = init.failpoints ?? noFailpoints
  const counters = { state_files_refused_total: 0 }
  mkdirSync(init.dir, { recursive: true })

  const inspect = (): StateLoad<ServerState> => {
    const loaded = loadFramed(path, stateMagic, (header, body) => parseState(path, header, body, init), init)
    if (loaded.status === 'loaded') {
      // The identity was only for the check in `loadFramed`.
      const { next, published } = loaded.value
      return { status: 'loaded', value: published === undefined ? { next } : { next, published } }
    }
    if (loaded.status === 'refused') {
      counters.state_files_refused_total++
      log.error(
        { code: loaded.error.code, err: loaded.error },
        'state file refused: starting amnesic, from the median of N−F models',
      )
    } else if (loaded.status === 'foreign') {
      log.warn({ field: loaded.field }, 'state saved under another configuration: ignored')
    }
    return loaded
  }

  return {
    path,
    counters,
    inspect,
    load() {
      const loaded = inspect()
      return loaded.status === 'loaded' ? loaded.value : undefined
    },
    save(state) {
      failpoints.hit('before-save')
      const models = [state.next.model, ...(state.published ? [state.published.model] : [])]
      // A non-finite model would be refused on load anyway; not writing it keeps the last good
      // state on disk instead of replacing it with one no restart can use.
      for (const model of models) {
        if (model.length !== init.dimension || !allFinite(model)) {
          throw new ServerStateError('refusing to save a model that is not finite or of another dimension', {
            code: 'state_non_finite',
            path,
          })
        }
      }
      const header: StateHeader = {
        cluster: init.cluster,
        nodeId: init.nodeId,
        configHash: init.configHash,
        dimension: init.dimension,
        next: state.next.round,
        published: state.published?.round ?? null,
      }
      writeDurably(path, frame(stateMagic, header, Buffer.concat(models.map(floatBytes))))
      failpoints.hit('after-save')
    },
  }
}

export interface SigningGuard {
  readonly path: string
  /** What the watermark file held at start. */
  readonly loaded: StateLoad<WatermarkHeader>['status']
  /** The highest round signed so far, as recorded (undefined: nothing recorded). */
  readonly highestSigned: number | undefined
  readonly counters: {
    readonly signatures_refused_total: number
    readonly watermark_files_refused_total: number
  }
  /**
   * Whether the server may sign `model` for `round`; when it may, the watermark names it durably
   * before this returns (the signature must never exist without the record).
   */
  authorize(round: number, model: Float32Array): boolean
  /**
   * Tells the guard where the server starts. An amnesic server that joined a running cluster
   * without a usable watermark signs nothing up to `max(round, heardRound) + 1` (see the module
   * comment for the assumption).
   */
  started(start: {
    round: number
    publishFirst: boolean
    resumedFromState: boolean
    heardRound?: number
  }): void
}

export function createSigningGuard(init: Omit<ServerStateInit, 'dimension' | 'rounds'>): SigningGuard {
  const path = join(init.dir, `${init.nodeId}.signed`)
  const log = init.log.child({ component: 'signing-guard', path })
  const failpoints = init.failpoints ?? noFailpoints
  const counters = { signatures_refused_total: 0, watermark_files_refused_total: 0 }
  mkdirSync(init.dir, { recursive: true })
  const loaded = loadFramed(path, watermarkMagic, (header) => parseWatermark(path, header), init)
  if (loaded.status === 'refused') {
    counters.watermark_files_refused_total++
    log.error(
      { code: loaded.error.code, err: loaded.error },
      'signed-round watermark refused: what this server signed before is unknown',
    )
  }
  let last: WatermarkHeader | undefined = loaded.status === 'loaded' ? loaded.value : undefined
  /** Rounds ≤ floor are never signed (the watermark was lost; see `started`). */
  let floor = -1

  return {
    path,
    loaded: loaded.status,
    get highestSigned() {
      return last?.round
    },
    counters,
    authorize(round, model) {
      const hash = modelHash(model)
      // The same model for the same round again is the same statement, not equivocation: a
      // server resumed from its state publishes again what it may have published before.
      if (last !== undefined) {
        if (round === last.round && hash === last.hash) return true
        if (round === last.previous?.round && hash === last.previous.hash) return true
      }
      if (round <= floor || (last !== undefined && round <= last.round)) {
        counters.signatures_refused_total++
        log.warn(
          { round, hash, highestSigned: last?.round, floor },
          'refused to sign: this server may already have signed another model for this round',
        )
        return false
      }
      const next: WatermarkHeader = {
        cluster: init.cluster,
        nodeId: init.nodeId,
        configHash: init.configHash,
        round,
        hash,
        previous: last === undefined ? null : { round: last.round, hash: last.hash },
      }
      // Before the signature exists: a crash right after leaves the record, never the reverse.
      writeDurably(path, frame(watermarkMagic, next, Buffer.alloc(0)))
      last = next
      log.info({ round, hash }, 'signing model')
      failpoints.hit('after-watermark')
      return true
    },
    started(start) {
      if (last !== undefined || start.resumedFromState || start.publishFirst) return
      floor = Math.max(start.round, start.heardRound ?? start.round) + 1
      log.warn(
        { round: start.round, heardRound: start.heardRound, silentThrough: floor },
        'no signed-round record: signing nothing up to a round past what the cluster announces',
      )
    },
  }
}

/**
 * `transport` with every model publish passed through `guard` first: a refused one is dropped
 * (the server stays silent for that round, as a slow server would), an authorized one published.
 */
export function guardModelPublish<T extends RoundTransport>(
  transport: T,
  guard: SigningGuard,
  failpoints: Failpoints = noFailpoints,
): T {
  return {
    ...transport,
    async publish(kind, round, vector) {
      if (kind === 'model' && !guard.authorize(round, vector)) return
      await transport.publish(kind, round, vector)
      if (kind === 'model') failpoints.hit('after-publish')
    },
  }
}

// --- framing ---------------------------------------------------------------------------------

function frame(magic: Buffer, header: object, body: Buffer): Buffer {
  const headerBytes = Buffer.from(JSON.stringify(header))
  const prefix = Buffer.alloc(prefixBytes)
  magic.copy(prefix, 0)
  prefix.writeUInt32LE(formatVersion, 8)
  prefix.writeUInt32LE(headerBytes.byteLength, 12)
  prefix.writeUInt32LE(body.byteLength, 16)
  const content = Buffer.concat([prefix, headerBytes, body])
  // Over prefix, header and body: a flipped bit anywhere, lengths included, fails it.
  return Buffer.concat([content, createHash('sha256').update(content).digest()])
}

/** The frame's header (unparsed JSON) and body, or a ServerStateError naming the failed check. */
export function unframe(path: string, magic: Buffer, bytes: Buffer): { header: unknown; body: Buffer } {
  const fail = (code: ServerStateErrorCode, message: string, cause?: unknown): never => {
    throw new ServerStateError(message, { code, path, cause })
  }
  // The magic first, on whatever prefix there is: garbage is named garbage, not "short".
  const magicSeen = bytes.subarray(0, magic.byteLength)
  if (!magicSeen.equals(magic.subarray(0, magicSeen.byteLength))) fail('state_bad_magic', 'not a state file')
  if (bytes.byteLength < prefixBytes + checksumBytes) fail('state_truncated', 'shorter than the frame')
  const version = bytes.readUInt32LE(8)
  if (version !== formatVersion)
    fail('state_bad_version', `format version ${version}, reads ${formatVersion}`)
  const headerLength = bytes.readUInt32LE(12)
  const bodyLength = bytes.readUInt32LE(16)
  if (headerLength > maxHeaderBytes) fail('state_bad_header', `header of ${headerLength} bytes`)
  const total = prefixBytes + headerLength + bodyLength + checksumBytes
  if (bytes.byteLength < total) fail('state_truncated', `${bytes.byteLength} bytes of ${total}`)
  if (bytes.byteLength > total) fail('state_bad_length', `${bytes.byteLength} bytes, frame says ${total}`)
  const content = bytes.subarray(0, total - checksumBytes)
  const digest = createHash('sha256').update(content).digest()
  if (!digest.equals(bytes.subarray(total - checksumBytes)))
    fail('state_checksum_mismatch', 'checksum mismatch')
  let header: unknown
  try {
    header = JSON.parse(content.subarray(prefixBytes, prefixBytes + headerLength).toString('utf8'))
  } catch (error) {
    fail('state_bad_header', 'header is not JSON', error)
  }
  return { header, body: content.subarray(prefixBytes + headerLength) }
}

function loadFramed<T extends { cluster: string; nodeId: string; configHash: string }>(
  path: string,
  magic: Buffer,
  parse: (header: unknown, body: Buffer) => T,
  expected: { cluster: string; nodeId: string; configHash: string; dimension?: number },
): StateLoad<T> {
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { status: 'none' }
    return {
      status: 'refused',
      error: new ServerStateError('state file unreadable', { code: 'state_unreadable', path, cause: error }),
    }
  }
  let value: T
  try {
    const { header, body } = unframe(path, magic, bytes)
    value = parse(header, body)
  } catch (error) {
    if (error instanceof ServerStateError) return { status: 'refused', error }
    throw error
  }
  // Checked after the checksum: a mismatch then means another run's file, not a damaged one.
  for (const field of ['cluster', 'nodeId', 'configHash', 'dimension'] as const) {
    const saved = (value as Record<string, unknown>)[field]
    if (saved !== undefined && expected[field] !== undefined && saved !== expected[field]) {
      return { status: 'foreign', field }
    }
  }
  return { status: 'loaded', value }
}

function parseState(
  path: string,
  rawHeader: unknown,
  body: Buffer,
  init: ServerStateInit,
): ServerState & { cluster: string; nodeId: string; configHash: string; dimension: number } {
  const header = parseHeader(stateHeaderSchema, rawHeader, path, 'state')
  // `next` may equal `rounds`: the state saved after the last round.
  if (init.rounds !== undefined && header.next > init.rounds) {
    throw new ServerStateError(`saved round ${header.next} is beyond the configured ${init.rounds}`, {
      code: 'state_bad_header',
      path,
    })
  }
  const modelBytes = header.dimension * 4
  const count = header.published === null ? 1 : 2
  if (body.byteLength !== count * modelBytes) {
    throw new ServerStateError(`body of ${body.byteLength} bytes, header needs ${count * modelBytes}`, {
      code: 'state_bad_length',
      path,
    })
  }
  // Copied out of the file buffer: a Float32Array needs 4-byte alignment.
  const model = (index: number) =>
    new Float32Array(new Uint8Array(body.subarray(index * modelBytes, (index + 1) * modelBytes)).buffer)
  const next = model(0)
  const published = header.published === null ? undefined : model(1)
  if (!allFinite(next) || (published !== undefined && !allFinite(published))) {
    throw new ServerStateError('a saved model value is not finite', { code: 'state_non_finite', path })
  }
  return {
    cluster: header.cluster,
    nodeId: header.nodeId,
    configHash: header.configHash,
    dimension: header.dimension,
    next: { round: header.next, model: next },
    ...(published === undefined ? {} : { published: { round: header.published!, model: published } }),
  }
}

function parseWatermark(path: string, rawHeader: unknown): WatermarkHeader {
  return parseHeader(watermarkHeaderSchema, rawHeader, path, 'watermark')
}

function parseHeader<S extends z.ZodType>(schema: S, raw: unknown, path: string, what: string): z.infer<S> {
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    throw new ServerStateError(`${what} header invalid: ${parsed.error.issues[0]?.message ?? ''}`, {
      code: 'state_bad_header',
      path,
      cause: parsed.error,
    })
  }
  return parsed.data
}

function allFinite(model: Float32Array): boolean {
  for (const value of model) if (!Number.isFinite(value)) return false
  return true
}

function floatBytes(model: Float32Array): Buffer {
  return Buffer.from(model.buffer, model.byteOffset, model.byteLength)
}

/**
 * Temporary file, fsync, rename, fsync of the directory. Each step is there for a crash:
 * - a temporary file, so a crash mid-write leaves the old file whole, never a torn one;
 * - fsync of the file before the rename, so the name never points at data still in the page
 *   cache (ext4 and XFS may otherwise persist the rename before the blocks: an empty file);
 * - rename, atomic on POSIX: a reader sees the old file or the new, nothing between;
 * - fsync of the directory, so the rename itself survives a power cut; without it the old file
 *   can come back, and a server that published from the new one would resume from the old.
 */
function writeDurably(path: string, bytes: Buffer): void {
  const temporary = `${path}.tmp`
  try {
    const fd = openSync(temporary, 'w', 0o600)
    try {
      let written = 0
      while (written < bytes.byteLength) written += writeSync(fd, bytes, written)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temporary, path)
    syncDirectory(dirname(path))
  } catch (error) {
    if (error instanceof ServerStateError) throw error
    throw new ServerStateError('could not write state durably', {
      code: 'state_write_failed',
      path,
      cause: error,
    })
  }
}

function syncDirectory(dir: string): void {
  let fd: number
  try {
    fd = openSync(dir, 'r')
  } catch (error) {
    // Windows cannot open a directory; its renames are durable through the file system's journal.
    if (process.platform === 'win32') return
    throw error
  }
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
