/**
 * The Gram-matrix and coordinate-wise rules split over worker threads by coordinate range,
 * as an async variant next to the pure synchronous API (same checks, same results: Gram
 * matrices of coordinate ranges add up, coordinate-wise kernels are independent per coordinate).
 *
 * Workers read the inputs from shared memory: inputs already backed by SharedArrayBuffers
 * (e.g. received into buffers from `shareInputs`) are used in place; others are first copied
 * into one shared staging buffer, which costs about one read of the inputs. The calling thread
 * computes one range itself. Workers start on first use, are unref'd while idle so they never
 * keep the process alive, and stop on `shutdown()`.
 */
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { fromJSON, type PhalanxErrorJson } from '@phalanx/errors'
import { type CoordinateMode, coordinatewise } from './coordinatewise.js'
import { distancesFromGram, gramMatrix } from './distances.js'
import type {
  BulyanOptions,
  KrumOptions,
  MeamedOptions,
  MedianOptions,
  MultiKrumOptions,
  TrimmedMeanOptions,
} from './options.js'
import { bulyanSelect, krumFromDistances, multiKrumSelect } from './rules/krum.js'
import { bounds, checkFinite, integerOption, prepare } from './validate.js'
import { meanOf } from './vector.js'
import { useWasm } from './wasm/kernels.js'

/** A shared input row as a worker sees it. */
interface SharedRow {
  readonly buffer: SharedArrayBuffer
  readonly byteOffset: number
  readonly length: number
}

/** @internal Message to a worker. */
export type WorkerTask =
  | {
      readonly id: number
      readonly kind: 'gram'
      readonly rows: SharedRow[]
      readonly start: number
      readonly end: number
    }
  | {
      readonly id: number
      readonly kind: 'coordinates'
      readonly rows: SharedRow[]
      readonly start: number
      readonly end: number
      readonly mode: CoordinateMode
      readonly rule: string | undefined
      readonly out: SharedArrayBuffer
    }

type TaskWithoutId = WorkerTask extends infer Task
  ? Task extends WorkerTask
    ? Omit<Task, 'id'>
    : never
  : never

/** @internal Reply from a worker. */
export interface WorkerReply {
  readonly id: number
  readonly gram?: Float64Array
  /** The worker's error as `toJSON` wrote it: rebuilt here with its name, code and details. */
  readonly error?: PhalanxErrorJson
}

export interface ParallelInit {
  /**
   * Threads doing the work, the calling one included (default: os.availableParallelism(): the
   * kernels are compute- and memory-bound, so one thread per core, no more).
   */
  readonly threads?: number
}

/** The async, multi-threaded variants of the rules whose cost is a tiled pass over n·d floats. */
export interface ParallelAggregator {
  krum(inputs: readonly Float32Array[], options: KrumOptions): Promise<Float32Array>
  multiKrum(inputs: readonly Float32Array[], options: MultiKrumOptions): Promise<Float32Array>
  bulyan(inputs: readonly Float32Array[], options: BulyanOptions): Promise<Float32Array>
  median(inputs: readonly Float32Array[], options?: MedianOptions): Promise<Float32Array>
  trimmedMean(inputs: readonly Float32Array[], options: TrimmedMeanOptions): Promise<Float32Array>
  meamed(inputs: readonly Float32Array[], options: MeamedOptions): Promise<Float32Array>
  /** Copies vectors into one SharedArrayBuffer so later calls use them without a copy. */
  shareInputs(inputs: readonly Float32Array[]): Float32Array[]
  /** Stops the workers; a later call starts them again. */
  shutdown(): Promise<void>
}

interface Pending {
  resolve(reply: WorkerReply): void
  reject(error: Error): void
}

class WorkerPool {
  private workers: Worker[] = []
  private readonly pending = new Map<number, Pending>()
  private nextId = 0

  constructor(private readonly size: number) {}

  private start(): void {
    if (this.workers.length > 0) return
    for (let w = 0; w < this.size; w++) {
      const worker = spawnWorker()
      worker.on('message', (reply: WorkerReply) => {
        const entry = this.pending.get(reply.id)
        this.pending.delete(reply.id)
        if (this.pending.size === 0) for (const each of this.workers) each.unref()
        entry?.resolve(reply)
      })
      // A worker that dies fails what is pending and the pool restarts on the next call,
      // instead of leaving callers waiting for replies that will never come.
      const fail = (error: Error): void => {
        for (const entry of this.pending.values()) entry.reject(error)
        this.pending.clear()
        const workers = this.workers
        this.workers = []
        for (const each of workers) if (each !== worker) void each.terminate()
      }
      worker.on('error', fail)
      worker.on('exit', (code) => {
        if (this.workers.includes(worker)) fail(new Error(`aggregation worker exited with code ${code}`))
      })
      worker.unref()
      this.workers.push(worker)
    }
  }

  run(index: number, task: TaskWithoutId): Promise<WorkerReply> {
    this.start()
    const id = this.nextId++
    const worker = this.workers[index % this.workers.length]!
    // Referenced while work is pending, so awaiting a result keeps the process alive.
    worker.ref()
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      worker.postMessage({ ...task, id })
    })
  }

  async shutdown(): Promise<void> {
    const workers = this.workers
    this.workers = []
    await Promise.all(workers.map((worker) => worker.terminate()))
  }
}

/**
 * Starts one worker. Built, the package runs `parallel-worker.js`; run from source (vitest,
 * tsx) the worker is TypeScript and registers tsx's loader first (Node 20 workers do not take
 * `--import` in execArgv).
 */
function spawnWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./parallel-worker.js', import.meta.url))
  const source = new URL('./parallel-worker.ts', import.meta.url).href
  const bootstrap = `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(source)}) })`
  return new Worker(bootstrap, { eval: true })
}

/** Splits [0, d) into `parts` ranges whose starts are multiples of 8 floats. */
function ranges(d: number, parts: number): [number, number][] {
  const step = Math.ceil(d / parts / 8) * 8
  const out: [number, number][] = []
  for (let start = 0; start < d; start += step) out.push([start, Math.min(d, start + step)])
  return out
}

function shareInputs(inputs: readonly Float32Array[]): Float32Array[] {
  const total = inputs.reduce((sum, x) => sum + x.length, 0)
  const buffer = new SharedArrayBuffer(total * 4)
  let offset = 0
  return inputs.map((x) => {
    const view = new Float32Array(buffer, offset * 4, x.length)
    view.set(x)
    offset += x.length
    return view
  })
}

/**
 * Shared views of the inputs: in place when they already live in SharedArrayBuffers, else
 * copied into `staging` (reused across calls: allocating and zeroing a fresh 128 MB buffer
 * costs as much as the copy itself).
 */
function sharedRows(inputs: readonly Float32Array[], staging: { buffer?: SharedArrayBuffer }): SharedRow[] {
  if (inputs.every((x) => x.buffer instanceof SharedArrayBuffer)) {
    return inputs.map((x) => ({
      buffer: x.buffer as SharedArrayBuffer,
      byteOffset: x.byteOffset,
      length: x.length,
    }))
  }
  const bytes = inputs.reduce((sum, x) => sum + x.length, 0) * 4
  if (staging.buffer === undefined || staging.buffer.byteLength < bytes)
    staging.buffer = new SharedArrayBuffer(bytes)
  const buffer = staging.buffer
  let byteOffset = 0
  return inputs.map((x) => {
    new Float32Array(buffer, byteOffset, x.length).set(x)
    const row = { buffer, byteOffset, length: x.length }
    byteOffset += x.length * 4
    return row
  })
}

/** Creates a parallel aggregator; its workers start on first use. */
export function createParallel(init: ParallelInit = {}): ParallelAggregator {
  const threads = integerOption('parallel', 'threads', init.threads ?? availableParallelism(), 1, 1024)
  const pool = new WorkerPool(Math.max(1, threads - 1))
  // One call at a time uses the staging buffer; calls are serialised so a concurrent one
  // cannot overwrite inputs a worker is still reading.
  const staging: { buffer?: SharedArrayBuffer } = {}
  let queue: Promise<unknown> = Promise.resolve()
  const serialised = <T>(run: () => Promise<T>): Promise<T> => {
    const result = queue.then(run, run)
    queue = result.catch(() => undefined)
    return result
  }

  async function gram(inputs: readonly Float32Array[]): Promise<Float64Array> {
    const d = inputs[0]!.length
    const parts = ranges(d, threads)
    if (parts.length === 1 || !useWasm()) return gramMatrix(inputs)
    const rows = sharedRows(inputs, staging)
    const replies = parts.slice(1).map(([start, end], w) => pool.run(w, { kind: 'gram', rows, start, end }))
    const [start0, end0] = parts[0]!
    const total = gramMatrix(inputs.map((x) => x.subarray(start0, end0)))
    for (const reply of await Promise.all(replies)) {
      if (reply.error) throw fromJSON(reply.error)
      const part = reply.gram!
      for (let p = 0; p < total.length; p++) total[p]! += part[p]!
    }
    return total
  }

  async function coordinates(
    rows: readonly Float32Array[],
    mode: CoordinateMode,
    rule: string | undefined,
  ): Promise<Float32Array> {
    const d = rows[0]!.length
    const parts = ranges(d, threads)
    if (parts.length === 1 || !useWasm()) return coordinatewise(rows, mode, rule)
    const shared = sharedRows(rows, staging)
    const out = new SharedArrayBuffer(d * 4)
    const replies = parts
      .slice(1)
      .map(([start, end], w) =>
        pool.run(w, { kind: 'coordinates', rows: shared, start, end, mode, rule, out }),
      )
    const [start0, end0] = parts[0]!
    let failed = false
    try {
      new Float32Array(out, 0, end0 - start0).set(
        coordinatewise(
          rows.map((x) => x.subarray(start0, end0)),
          mode,
          rule,
        ),
      )
    } catch {
      failed = true
    }
    for (const reply of await Promise.all(replies)) if (reply.error) failed = true
    // A failure is a non-finite input (shape, f and bound were checked before): report the
    // first one in input order, exactly as the synchronous rule does.
    if (failed && rule !== undefined) checkFinite(rule, rows)
    return new Float32Array(out).slice()
  }

  const api: Omit<ParallelAggregator, 'shareInputs' | 'shutdown'> = {
    async krum(inputs, options) {
      const { f } = prepare('krum', inputs, options, bounds.krum, { fRequired: true, finite: 'caller' })
      const distances = distancesFromGram(inputs, await gram(inputs), 'krum')
      return inputs[krumFromDistances(distances, f).index]!.slice()
    },
    async multiKrum(inputs, options) {
      const { n, f } = prepare('multiKrum', inputs, options, bounds.krum, {
        fRequired: true,
        finite: 'caller',
      })
      const m = options.m === undefined ? n - f : integerOption('multiKrum', 'm', options.m, 1, n)
      const distances = distancesFromGram(inputs, await gram(inputs), 'multiKrum')
      return meanOf(inputs, multiKrumSelect(distances, f, m))
    },
    async bulyan(inputs, options) {
      const { f } = prepare('bulyan', inputs, options, bounds.bulyan, { fRequired: true, finite: 'caller' })
      const distances = distancesFromGram(inputs, await gram(inputs), 'bulyan')
      const selected = bulyanSelect(distances, f).map((i) => inputs[i]!)
      return coordinates(selected, { kind: 'closest', drop: 2 * f }, undefined)
    },
    async median(inputs, options = {}) {
      prepare('median', inputs, options, bounds.majority, { fRequired: false, finite: 'caller' })
      return coordinates(inputs, { kind: 'median' }, 'median')
    },
    async trimmedMean(inputs, options) {
      const { f } = prepare('trimmedMean', inputs, options, bounds.majority, {
        fRequired: true,
        finite: 'caller',
      })
      return coordinates(inputs, { kind: 'trimmed', drop: f }, 'trimmedMean')
    },
    async meamed(inputs, options) {
      const { f } = prepare('meamed', inputs, options, bounds.majority, { fRequired: true, finite: 'caller' })
      return coordinates(inputs, { kind: 'closest', drop: f }, 'meamed')
    },
  }
  return {
    krum: (inputs, options) => serialised(() => api.krum(inputs, options)),
    multiKrum: (inputs, options) => serialised(() => api.multiKrum(inputs, options)),
    bulyan: (inputs, options) => serialised(() => api.bulyan(inputs, options)),
    median: (inputs, options) => serialised(() => api.median(inputs, options)),
    trimmedMean: (inputs, options) => serialised(() => api.trimmedMean(inputs, options)),
    meamed: (inputs, options) => serialised(() => api.meamed(inputs, options)),
    shareInputs,
    shutdown: () => pool.shutdown(),
  }
}

/** The process-wide parallel aggregator (workers start lazily, one per extra core). */
export const parallel: ParallelAggregator = createParallel()
