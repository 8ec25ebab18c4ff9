/**
 * A tiny WebAssembly binary emitter, just big enough for the kernels in `kernels.ts`.
 *
 * Why generate bytes at run time instead of shipping a `.wasm` file: the coordinate-wise
 * kernels are sorting networks specialised for one n (and one tile stride, so every load has
 * a static offset); no single binary can hold them all. Emitting them here keeps the package
 * pure TypeScript, with no build step and no binary blob in the repository.
 */

/** Value types used by the kernels. */
export const I32 = 0x7f
export const F64 = 0x7c
export const V128 = 0x7b

/** One function of a module: its signature, its extra locals, and its body (without `end`). */
export interface FunctionSpec {
  readonly name: string
  readonly params: readonly number[]
  readonly results: readonly number[]
  /** Extra locals, numbered after the params, as [count, type] runs. */
  readonly locals: readonly (readonly [number, number])[]
  readonly body: readonly number[]
}

export function uleb(value: number): number[] {
  const out: number[] = []
  let v = value >>> 0
  do {
    let byte = v & 0x7f
    v >>>= 7
    if (v !== 0) byte |= 0x80
    out.push(byte)
  } while (v !== 0)
  return out
}

export function sleb(value: number): number[] {
  const out: number[] = []
  let v = value | 0
  for (;;) {
    const byte = v & 0x7f
    v >>= 7
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)
    out.push(done ? byte : byte | 0x80)
    if (done) return out
  }
}

function vec(items: readonly number[][]): number[] {
  return [...uleb(items.length), ...items.flat()]
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content]
}

function name(text: string): number[] {
  const bytes = [...new TextEncoder().encode(text)]
  return [...uleb(bytes.length), ...bytes]
}

/**
 * Builds a module that imports its memory as `env.memory` (so every generated kernel works on
 * the same linear memory) and exports each function under its name.
 */
export function buildModule(functions: readonly FunctionSpec[]): Uint8Array {
  const types = functions.map((fn) => [
    0x60,
    ...vec(fn.params.map((t) => [t])),
    ...vec(fn.results.map((t) => [t])),
  ])
  const imports = vec([[...name('env'), ...name('memory'), 0x02, 0x00, ...uleb(1)]])
  const funcs = vec(functions.map((_, i) => uleb(i)))
  const exports = vec(functions.map((fn, i) => [...name(fn.name), 0x00, ...uleb(i)]))
  const codes = vec(
    functions.map((fn) => {
      const body = [...vec(fn.locals.map(([count, type]) => [...uleb(count), type])), ...fn.body, 0x0b]
      return [...uleb(body.length), ...body]
    }),
  )
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, codes),
  ])
}

/** Instruction helpers: each returns the bytes of one instruction. */
export const op = {
  block: (): number[] => [0x02, 0x40],
  loop: (): number[] => [0x03, 0x40],
  end: (): number[] => [0x0b],
  br: (depth: number): number[] => [0x0c, ...uleb(depth)],
  brIf: (depth: number): number[] => [0x0d, ...uleb(depth)],
  get: (index: number): number[] => [0x20, ...uleb(index)],
  set: (index: number): number[] => [0x21, ...uleb(index)],
  tee: (index: number): number[] => [0x22, ...uleb(index)],
  i32Const: (value: number): number[] => [0x41, ...sleb(value)],
  f64Const: (value: number): number[] => {
    const bytes = new Uint8Array(new Float64Array([value]).buffer)
    return [0x44, ...bytes]
  },
  i32Add: (): number[] => [0x6a],
  i32Sub: (): number[] => [0x6b],
  i32LtU: (): number[] => [0x49],
  i32Eqz: (): number[] => [0x45],
  f64Add: (): number[] => [0xa0],
  f64Load: (offset: number): number[] => [0x2b, 0x03, ...uleb(offset)],
  f64Store: (offset: number): number[] => [0x39, 0x03, ...uleb(offset)],
  f64PromoteF32: (): number[] => [0xbb],
  // SIMD (0xfd prefix)
  v128Load: (offset: number): number[] => [0xfd, ...uleb(0x00), 0x04, ...uleb(offset)],
  v128Store: (offset: number): number[] => [0xfd, ...uleb(0x0b), 0x04, ...uleb(offset)],
  v128Const: (bytes: readonly number[]): number[] => [0xfd, ...uleb(0x0c), ...bytes],
  shuffle: (lanes: readonly number[]): number[] => [0xfd, ...uleb(0x0d), ...lanes],
  f32x4Splat: (): number[] => [0xfd, ...uleb(0x13)],
  f64x2Splat: (): number[] => [0xfd, ...uleb(0x14)],
  f32x4ExtractLane: (lane: number): number[] => [0xfd, ...uleb(0x1f), lane],
  f64x2ExtractLane: (lane: number): number[] => [0xfd, ...uleb(0x21), lane],
  f32x4Gt: (): number[] => [0xfd, ...uleb(0x44)],
  v128And: (): number[] => [0xfd, ...uleb(0x4e)],
  v128AndNot: (): number[] => [0xfd, ...uleb(0x4f)],
  v128Or: (): number[] => [0xfd, ...uleb(0x50)],
  v128AnyTrue: (): number[] => [0xfd, ...uleb(0x53)],
  f32x4DemoteF64x2Zero: (): number[] => [0xfd, ...uleb(0x5e)],
  f64x2PromoteLowF32x4: (): number[] => [0xfd, ...uleb(0x5f)],
  f32x4Add: (): number[] => [0xfd, ...uleb(0xe4)],
  f32x4Sub: (): number[] => [0xfd, ...uleb(0xe5)],
  f32x4Mul: (): number[] => [0xfd, ...uleb(0xe6)],
  f32x4Ne: (): number[] => [0xfd, ...uleb(0x42)],
  f32x4Pmin: (): number[] => [0xfd, ...uleb(0xea)],
  f32x4Pmax: (): number[] => [0xfd, ...uleb(0xeb)],
  f64x2Add: (): number[] => [0xfd, ...uleb(0xf0)],
  f64x2Sub: (): number[] => [0xfd, ...uleb(0xf1)],
  f64x2Mul: (): number[] => [0xfd, ...uleb(0xf2)],
  f64x2Div: (): number[] => [0xfd, ...uleb(0xf3)],
} as const
