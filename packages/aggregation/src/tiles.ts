/**
 * The tiled pass shared by the WASM kernels: copy n rows × B coordinates of the inputs into
 * linear memory (reading each input once, sequentially), check them for NaN/±Inf there, and
 * hand the cache-resident tile to a kernel.
 */
import { checkFinite } from './validate.js'
import { type KernelMemory, kernelMemory, tileLength } from './wasm/kernels.js'

export interface TileLayout {
  readonly memory: KernelMemory
  /** Rows in the tile (n rounded up by the caller; rows ≥ n stay zero). */
  readonly rows: number
  /** Floats per tile row. */
  readonly length: number
  readonly strideBytes: number
  /** Byte address of row 0. */
  readonly tileBase: number
  /** Byte address of the caller's scratch area (after the tile). */
  readonly extraBase: number
}

const TILE_BASE = 64

export function tileLayout(rows: number, extraBytes: number): TileLayout {
  const memory = kernelMemory()
  const length = tileLength(rows)
  const strideBytes = length * 4
  const extraBase = TILE_BASE + rows * strideBytes
  memory.ensure(extraBase + extraBytes)
  memory.f32.fill(0, TILE_BASE / 4, extraBase / 4)
  return { memory, rows, length, strideBytes, tileBase: TILE_BASE, extraBase }
}

/**
 * Visits the coordinates [0, d) tile by tile. Rows past `inputs.length` and the tail of the
 * last tile are zero. With `rule`, each tile is checked for non-finite values and the first
 * one (input order) raises NonFiniteInputError.
 */
export function forEachTile(
  layout: TileLayout,
  inputs: readonly Float32Array[],
  d: number,
  rule: string | undefined,
  visit: (start: number, count: number) => void,
): void {
  const { memory, length, strideBytes, tileBase } = layout
  const f32 = memory.f32
  const finiteCheck = memory.basicKernels().finiteCheck
  const rowFloats = strideBytes / 4
  for (let start = 0; start < d; start += length) {
    const count = Math.min(length, d - start)
    for (let i = 0; i < inputs.length; i++) {
      const rowStart = tileBase / 4 + i * rowFloats
      f32.set(inputs[i]!.subarray(start, start + count), rowStart)
      if (count < length) f32.fill(0, rowStart + count, rowStart + length)
    }
    if (rule !== undefined && finiteCheck(tileBase, inputs.length * strideBytes) !== 0) {
      checkFinite(rule, inputs, start, start + count)
    }
    visit(start, count)
  }
}
