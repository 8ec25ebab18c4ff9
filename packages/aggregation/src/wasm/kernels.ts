/**
 * WASM SIMD kernels over a cache-resident tile, and the one linear memory they share.
 *
 * Inputs live in the JS heap, so every pass copies a tile (n rows × B coordinates, B chosen so
 * the tile fits in L2) into linear memory and runs a kernel on it: the inputs are read from RAM
 * exactly once, and the kernel reads the tile from cache. Kernels are generated for one tile
 * stride (and, for sorting networks, one n), so every load has a static offset.
 */
import { buildModule, F64, type FunctionSpec, I32, op, V128 } from './emit.js'
import { comparatorNetwork } from './network.js'

/** What a coordinate-wise kernel computes from the sorted values of one coordinate. */
export type CoordinateMode =
  | { readonly kind: 'median' }
  /** Mean of sorted positions [drop, n − drop). */
  | { readonly kind: 'trimmed'; readonly drop: number }
  /** Mean of the n − drop values closest to the median (ties keep the smaller value). */
  | { readonly kind: 'closest'; readonly drop: number }

/** Kernel over a tile: `lengthBytes` is a multiple of 16 (32 for the dot kernels). */
type TileKernel = (tile: number, lengthBytes: number, out: number) => void
type GramKernel = (rowsA: number, rowsB: number, lengthBytes: number, out: number) => void

interface BasicExports {
  finiteCheck(pointer: number, lengthBytes: number): number
  squaredDistance(a: number, b: number, lengthBytes: number): number
  /** out_f64[k] += weight · row_f32[k] for k < lengthBytes/4 (4 at a time). */
  axpy(out: number, row: number, weight: number, lengthBytes: number): void
  /** dst_f32[k] = f32(src_f64[k]) for k < lengthBytes/4 (4 at a time). */
  demote(dst: number, src: number, lengthBytes: number): void
  /** Σ (row_f32[k] − z_f64[k])² in f64, for k < lengthBytes/4 (4 at a time). */
  distanceToF64(row: number, z: number, lengthBytes: number): number
}

/** Largest n a sorting network is generated for; past it the code (∝ n log² n) stops paying. */
export const MAX_NETWORK_N = 256

/**
 * Tile byte budget: half of Zen 4's 1 MiB L2, leaving room for outputs and the other half of
 * the cache. Larger tiles mean fewer tiles and less per-tile overhead; measured (CPU time, n =
 * 32, d = 10⁶): Gram 64/59/52/50/51 ms and median 57/54/49/48 ms for 128/256/512/768/1024 KiB.
 */
const TILE_BUDGET_BYTES = 512 * 1024

/** Floats per tile row: a multiple of 8 (the dot kernels consume 2 vectors per step). */
export function tileLength(n: number): number {
  const fit = Math.floor(TILE_BUDGET_BYTES / (4 * Math.max(n, 1)))
  return Math.max(64, Math.min(8192, fit - (fit % 8)))
}

/**
 * The slice of the WebAssembly JS API used here. The repository's `lib` (ES2023, no DOM) and
 * @types/node 20 do not declare the global, so it is typed locally instead of ambiently.
 */
interface WasmMemory {
  readonly buffer: ArrayBuffer
  grow(pages: number): number
}
interface WasmApi {
  validate(bytes: Uint8Array): boolean
  Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory
  Module: new (bytes: Uint8Array) => object
  Instance: new (module: object, imports: object) => { readonly exports: Record<string, unknown> }
}
const wasmApi = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly

let simdSupport: boolean | undefined

/** Whether this engine runs WASM SIMD (Node ≥ 16.4 does; checked once by validating a module). */
export function wasmSimdAvailable(): boolean {
  if (simdSupport === undefined) {
    try {
      simdSupport = wasmApi?.validate(buildBasicModule()) ?? false
    } catch {
      simdSupport = false
    }
  }
  return simdSupport
}

let forcedJs = false

/**
 * Process-wide kernel choice: 'auto' (WASM SIMD where the engine has it, the default) or 'js'
 * (the portable kernels, for benchmarks' before/after and for debugging). Results agree to
 * float32 rounding; the coordinate-wise ones are bit-identical.
 */
export function setKernelBackend(backend: 'auto' | 'js'): void {
  forcedJs = backend === 'js'
}

/** The kernels calls use now. */
export function kernelBackend(): 'wasm' | 'js' {
  return useWasm() ? 'wasm' : 'js'
}

export function useWasm(): boolean {
  return !forcedJs && wasmSimdAvailable()
}

const PAGE = 65536

/** The linear memory every kernel instance imports, grown on demand, never shrunk. */
class KernelMemory {
  readonly memory = new wasmApi!.Memory({ initial: 16 })
  private f32View = new Float32Array(this.memory.buffer)
  private f64View = new Float64Array(this.memory.buffer)
  private basic: BasicExports | undefined
  private readonly gramKernels = new Map<string, GramKernel>()
  private readonly coordinateKernels = new Map<string, TileKernel>()

  ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength
    if (bytes > have) this.memory.grow(Math.ceil((bytes - have) / PAGE))
    if (this.f32View.buffer !== this.memory.buffer) {
      this.f32View = new Float32Array(this.memory.buffer)
      this.f64View = new Float64Array(this.memory.buffer)
    }
  }

  get f32(): Float32Array {
    return this.f32View
  }

  get f64(): Float64Array {
    return this.f64View
  }

  private instantiate(bytes: Uint8Array): Record<string, unknown> {
    const module = new wasmApi!.Module(bytes)
    return new wasmApi!.Instance(module, { env: { memory: this.memory } }).exports
  }

  basicKernels(): BasicExports {
    this.basic ??= this.instantiate(buildBasicModule()) as unknown as BasicExports
    return this.basic
  }

  gramKernel(strideBytes: number, outRowBytes: number): GramKernel {
    const key = `${strideBytes}/${outRowBytes}`
    let kernel = this.gramKernels.get(key)
    if (!kernel) {
      kernel = this.instantiate(buildModule([gramSpec(strideBytes, outRowBytes)])).gram as GramKernel
      this.gramKernels.set(key, kernel)
    }
    return kernel
  }

  coordinateKernel(n: number, mode: CoordinateMode, strideBytes: number): TileKernel {
    const key = `${n}/${mode.kind}/${'drop' in mode ? mode.drop : 0}/${strideBytes}`
    let kernel = this.coordinateKernels.get(key)
    if (!kernel) {
      kernel = this.instantiate(buildModule([coordinateSpec(n, mode, strideBytes)])).coordinates as TileKernel
      this.coordinateKernels.set(key, kernel)
    }
    return kernel
  }
}

let shared: KernelMemory | undefined

/** The process-wide (per-thread) kernel memory, created on first use. */
export function kernelMemory(): KernelMemory {
  shared ??= new KernelMemory()
  return shared
}

export type { KernelMemory }

// ---------------------------------------------------------------------------------------
// Code generation

const { get, set } = op

function forLoop(counter: number, limit: number, step: number, body: number[]): number[] {
  return [
    ...op.i32Const(0),
    ...set(counter),
    ...op.block(),
    ...op.loop(),
    ...get(counter),
    ...get(limit),
    ...op.i32LtU(),
    ...op.i32Eqz(),
    ...op.brIf(1),
    ...body,
    ...get(counter),
    ...op.i32Const(step),
    ...op.i32Add(),
    ...set(counter),
    ...op.br(0),
    ...op.end(),
    ...op.end(),
  ]
}

function horizontalSumF64(vector: number): number[] {
  const out: number[] = []
  for (let lane = 0; lane < 4; lane++) {
    out.push(...get(vector), ...op.f32x4ExtractLane(lane), ...op.f64PromoteF32())
    if (lane > 0) out.push(...op.f64Add())
  }
  return out
}

function buildBasicModule(): Uint8Array {
  // finiteCheck(p, len) -> i32: 1 when some value in [p, p+len) is NaN or ±Inf (x − x is NaN
  // exactly for those, and NaN sticks in the accumulator).
  const finiteBody = [
    ...op.v128Const(new Array(16).fill(0)),
    ...set(3),
    ...forLoop(2, 1, 16, [
      ...get(0),
      ...get(2),
      ...op.i32Add(),
      ...op.v128Load(0),
      ...op.tee(4),
      ...get(4),
      ...op.f32x4Sub(),
      ...get(3),
      ...op.f32x4Add(),
      ...set(3),
    ]),
    ...get(3),
    ...get(3),
    ...op.f32x4Ne(),
    ...op.v128AnyTrue(),
  ]
  const finite: FunctionSpec = {
    name: 'finiteCheck',
    params: [I32, I32],
    results: [I32],
    locals: [
      [1, I32],
      [2, V128],
    ],
    body: finiteBody,
  }
  // squaredDistance(a, b, len) -> f64: Σ (a_k − b_k)², accumulated per lane in f32 within the
  // tile and summed in f64.
  const distanceBody = [
    ...op.v128Const(new Array(16).fill(0)),
    ...set(4),
    ...forLoop(3, 2, 16, [
      ...get(0),
      ...get(3),
      ...op.i32Add(),
      ...op.v128Load(0),
      ...get(1),
      ...get(3),
      ...op.i32Add(),
      ...op.v128Load(0),
      ...op.f32x4Sub(),
      ...op.tee(5),
      ...get(5),
      ...op.f32x4Mul(),
      ...get(4),
      ...op.f32x4Add(),
      ...set(4),
    ]),
    ...horizontalSumF64(4),
  ]
  const distance: FunctionSpec = {
    name: 'squaredDistance',
    params: [I32, I32, I32],
    results: [F64],
    locals: [
      [1, I32],
      [2, V128],
    ],
    body: distanceBody,
  }
  // axpy(out, row, weight, len): params 0 out, 1 row, 2 weight (f64), 3 len; locals 4 k, 5 w, 6 v
  const axpyBody = [
    ...get(2),
    ...op.f64x2Splat(),
    ...set(5),
    ...forLoop(4, 3, 16, [
      ...get(1),
      ...get(4),
      ...op.i32Add(),
      ...op.v128Load(0),
      ...set(6),
      // out + 2k: the f64 accumulators sit at twice the f32 offset
      ...get(0),
      ...get(4),
      ...get(4),
      ...op.i32Add(),
      ...op.i32Add(),
      ...set(7),
      ...get(7),
      ...get(7),
      ...op.v128Load(0),
      ...get(6),
      ...op.f64x2PromoteLowF32x4(),
      ...get(5),
      ...op.f64x2Mul(),
      ...op.f64x2Add(),
      ...op.v128Store(0),
      ...get(7),
      ...get(7),
      ...op.v128Load(16),
      ...get(6),
      ...get(6),
      ...op.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]),
      ...op.f64x2PromoteLowF32x4(),
      ...get(5),
      ...op.f64x2Mul(),
      ...op.f64x2Add(),
      ...op.v128Store(16),
    ]),
  ]
  const axpy: FunctionSpec = {
    name: 'axpy',
    params: [I32, I32, F64, I32],
    results: [],
    locals: [
      [1, I32],
      [2, V128],
      [1, I32],
    ],
    body: axpyBody,
  }
  // demote(dst, src, len): params 0 dst, 1 src, 2 len; locals 3 k
  const demoteBody = forLoop(3, 2, 16, [
    ...get(0),
    ...get(3),
    ...op.i32Add(),
    ...get(1),
    ...get(3),
    ...get(3),
    ...op.i32Add(),
    ...op.i32Add(),
    ...set(4),
    ...get(4),
    ...op.v128Load(0),
    ...op.f32x4DemoteF64x2Zero(),
    ...get(4),
    ...op.v128Load(16),
    ...op.f32x4DemoteF64x2Zero(),
    ...op.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]),
    ...op.v128Store(0),
  ])
  const demote: FunctionSpec = {
    name: 'demote',
    params: [I32, I32, I32],
    results: [],
    locals: [[2, I32]],
    body: demoteBody,
  }
  // distanceToF64(row, z, len): params 0 row, 1 z, 2 len; locals 3 k, 4 zAddress, 5 v, 6 acc, 7 diff
  const toF64Body = [
    ...op.v128Const(new Array(16).fill(0)),
    ...set(6),
    ...forLoop(3, 2, 16, [
      ...get(0),
      ...get(3),
      ...op.i32Add(),
      ...op.v128Load(0),
      ...set(5),
      ...get(1),
      ...get(3),
      ...get(3),
      ...op.i32Add(),
      ...op.i32Add(),
      ...set(4),
      ...get(5),
      ...op.f64x2PromoteLowF32x4(),
      ...get(4),
      ...op.v128Load(0),
      ...op.f64x2Sub(),
      ...op.tee(7),
      ...get(7),
      ...op.f64x2Mul(),
      ...get(6),
      ...op.f64x2Add(),
      ...set(6),
      ...get(5),
      ...get(5),
      ...op.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]),
      ...op.f64x2PromoteLowF32x4(),
      ...get(4),
      ...op.v128Load(16),
      ...op.f64x2Sub(),
      ...op.tee(7),
      ...get(7),
      ...op.f64x2Mul(),
      ...get(6),
      ...op.f64x2Add(),
      ...set(6),
    ]),
    ...get(6),
    ...op.f64x2ExtractLane(0),
    ...get(6),
    ...op.f64x2ExtractLane(1),
    ...op.f64Add(),
  ]
  const toF64: FunctionSpec = {
    name: 'distanceToF64',
    params: [I32, I32, I32],
    results: [F64],
    locals: [
      [2, I32],
      [3, V128],
    ],
    body: toF64Body,
  }
  return buildModule([finite, distance, axpy, demote, toF64])
}

/**
 * Rows × columns of the Gram micro-kernel's register block. Measured (CPU time of the Gram at
 * n = 32, d = 10⁶): 4×2 60 ms, 2×4 60, 3×3 62, 4×3 68, 3×4 70, 6×2 75, 8×1 77 (the last ones
 * also pad n to a larger multiple): the loop is not bound by register blocking past 4×2.
 */
export const GRAM_BLOCK_ROWS = 4
export const GRAM_BLOCK_COLS = 2

/**
 * gram(a, b, len, out): for rows a_r = a + r·stride (r < R) and b_c = b + c·stride (c < C),
 * adds a_r·b_c into the f64 at out + r·outRow + 8c. The C column vectors stay in registers
 * while the R row vectors stream through one, so R·C accumulators + C + 1 values fit in the
 * 16 SIMD registers; products accumulate in f32 lanes over one tile (≤ 8192 coordinates) and
 * the tile sums add in f64.
 */
function gramSpec(stride: number, outRow: number): FunctionSpec {
  const R = GRAM_BLOCK_ROWS
  const C = GRAM_BLOCK_COLS
  const [A, B, LEN, OUT, END] = [0, 1, 2, 3, 4]
  const acc = (r: number, c: number): number => 5 + r * C + c
  const aVec = 5 + R * C
  const bVec = (c: number): number => 6 + R * C + c
  // Pointers advance instead of a shared index: every load is then `get p; v128.load offset`.
  const step: number[] = []
  for (const unroll of [0, 16]) {
    for (let c = 0; c < C; c++) step.push(...get(B), ...op.v128Load(c * stride + unroll), ...set(bVec(c)))
    for (let r = 0; r < R; r++) {
      step.push(...get(A), ...op.v128Load(r * stride + unroll), ...set(aVec))
      for (let c = 0; c < C; c++) {
        step.push(
          ...get(acc(r, c)),
          ...get(aVec),
          ...get(bVec(c)),
          ...op.f32x4Mul(),
          ...op.f32x4Add(),
          ...set(acc(r, c)),
        )
      }
    }
  }
  step.push(...get(A), ...op.i32Const(32), ...op.i32Add(), ...set(A))
  step.push(...get(B), ...op.i32Const(32), ...op.i32Add(), ...set(B))
  const loop = [
    ...get(A),
    ...get(LEN),
    ...op.i32Add(),
    ...set(END),
    ...op.block(),
    ...op.loop(),
    ...get(A),
    ...get(END),
    ...op.i32LtU(),
    ...op.i32Eqz(),
    ...op.brIf(1),
    ...step,
    ...op.br(0),
    ...op.end(),
    ...op.end(),
  ]
  const finish: number[] = []
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      const offset = r * outRow + c * 8
      finish.push(
        ...get(OUT),
        ...get(OUT),
        ...op.f64Load(offset),
        ...horizontalSumF64(acc(r, c)),
        ...op.f64Add(),
        ...op.f64Store(offset),
      )
    }
  }
  return {
    name: 'gram',
    params: [I32, I32, I32, I32],
    results: [],
    locals: [
      [1, I32],
      [R * C + 1 + C, V128],
    ],
    body: [...loop, ...finish],
  }
}

/**
 * coordinates(tile, len, out): for each group of 4 coordinates, loads the n values (one v128
 * per input row, static offsets), sorts them with a comparator network on registers (pmin/pmax
 * are single instructions and exact for finite values), and stores the mode's result.
 */
function coordinateSpec(n: number, mode: CoordinateMode, stride: number): FunctionSpec {
  const [TILE, LEN, OUT, K, BASE] = [0, 1, 2, 3, 4]
  const value = (i: number): number => 5 + i
  const MED = 5 + n
  const ACC_LO = MED + 1
  const ACC_HI = MED + 2
  const TEMP = MED + 3
  const mask = (i: number): number => MED + 4 + i
  const drop = mode.kind === 'median' ? 0 : mode.drop
  const needed =
    mode.kind === 'median'
      ? [Math.floor((n - 1) / 2), Math.floor(n / 2)]
      : mode.kind === 'trimmed'
        ? Array.from({ length: n - 2 * drop }, (_, i) => drop + i)
        : Array.from({ length: n }, (_, i) => i)
  const body: number[] = []
  const loopBody: number[] = [...get(TILE), ...get(K), ...op.i32Add(), ...set(BASE)]
  for (let i = 0; i < n; i++) loopBody.push(...get(BASE), ...op.v128Load(i * stride), ...set(value(i)))
  for (const [a, b] of comparatorNetwork(n, needed)) {
    loopBody.push(
      ...get(value(a)),
      ...get(value(b)),
      ...op.f32x4Pmin(),
      ...get(value(a)),
      ...get(value(b)),
      ...op.f32x4Pmax(),
    )
    loopBody.push(...set(value(b)), ...set(value(a)))
  }
  const lower = Math.floor((n - 1) / 2)
  const upper = Math.floor(n / 2)
  const medianInto = (target: number): number[] =>
    lower === upper
      ? [...get(value(lower)), ...set(target)]
      : [
          ...get(value(lower)),
          ...f32Half(),
          ...op.f32x4Mul(),
          ...get(value(upper)),
          ...f32Half(),
          ...op.f32x4Mul(),
          ...op.f32x4Add(),
          ...set(target),
        ]
  const zeroAccumulators = [...op.v128Const(new Array(16).fill(0)), ...op.tee(ACC_LO), ...set(ACC_HI)]
  // Adds the f32 vector on the stack into the two f64x2 accumulators.
  const accumulate = (): number[] => [
    ...op.tee(TEMP),
    ...op.f64x2PromoteLowF32x4(),
    ...get(ACC_LO),
    ...op.f64x2Add(),
    ...set(ACC_LO),
    ...get(TEMP),
    ...get(TEMP),
    ...op.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]),
    ...op.f64x2PromoteLowF32x4(),
    ...get(ACC_HI),
    ...op.f64x2Add(),
    ...set(ACC_HI),
  ]
  const meanOfAccumulators = (count: number): number[] => [
    ...get(ACC_LO),
    ...op.f64Const(count),
    ...op.f64x2Splat(),
    ...op.f64x2Div(),
    ...op.f32x4DemoteF64x2Zero(),
    ...get(ACC_HI),
    ...op.f64Const(count),
    ...op.f64x2Splat(),
    ...op.f64x2Div(),
    ...op.f32x4DemoteF64x2Zero(),
    ...op.shuffle([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23]),
  ]
  const store: number[] = [...get(OUT), ...get(K), ...op.i32Add()]
  if (mode.kind === 'median') {
    loopBody.push(...medianInto(MED), ...store, ...get(MED), ...op.v128Store(0))
  } else if (mode.kind === 'trimmed') {
    loopBody.push(...zeroAccumulators)
    for (let j = drop; j < n - drop; j++) loopBody.push(...get(value(j)), ...accumulate())
    loopBody.push(...store, ...meanOfAccumulators(n - 2 * drop), ...op.v128Store(0))
  } else {
    // P_i (i < drop): the i-th smallest is strictly farther below the median than the
    // (n−drop+i)-th is above it. The greedy "drop the farther end" keeps the window
    // [s, s+n−drop) with s = #{i : P_i}, and P is monotone, so [i < s] = P_i.
    const keep = n - drop
    loopBody.push(...medianInto(MED))
    for (let i = 0; i < drop; i++) {
      loopBody.push(
        ...get(MED),
        ...get(value(i)),
        ...op.f32x4Sub(),
        ...get(value(keep + i)),
        ...get(MED),
        ...op.f32x4Sub(),
      )
      loopBody.push(...op.f32x4Gt(), ...set(mask(i)))
    }
    loopBody.push(...zeroAccumulators)
    for (let j = 0; j < n; j++) {
      const lowSideMasked = j < drop // included iff not P_j
      const highIndex = j - keep // included iff P_{j−keep}
      if (highIndex >= drop) continue
      loopBody.push(...get(value(j)))
      if (lowSideMasked) loopBody.push(...get(mask(j)), ...op.v128AndNot())
      if (highIndex >= 0) loopBody.push(...get(mask(highIndex)), ...op.v128And())
      loopBody.push(...accumulate())
    }
    loopBody.push(...store, ...meanOfAccumulators(keep), ...op.v128Store(0))
  }
  body.push(...forLoop(K, LEN, 16, loopBody))
  return {
    name: 'coordinates',
    params: [I32, I32, I32],
    results: [],
    locals: [
      [2, I32],
      [n + 4 + drop, V128],
    ],
    body,
  }

  function f32Half(): number[] {
    // 0.5 as f32x4: bit pattern 0x3f000000 in each lane.
    return op.v128Const([0, 0, 0, 0x3f, 0, 0, 0, 0x3f, 0, 0, 0, 0x3f, 0, 0, 0, 0x3f])
  }
}
