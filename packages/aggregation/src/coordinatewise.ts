/**
 * Coordinate-wise order statistics (median, trimmed mean, mean around the median) without
 * sorting d×n values: per tile, a WASM SIMD sorting network runs on 4 coordinates at once,
 * reading each coordinate's n values from the cache-resident tile. The portable JS path (no
 * WASM SIMD, or n above MAX_NETWORK_N) sorts one n-length scratch per coordinate and applies
 * the same f32 arithmetic, so both paths give the same numbers.
 */
import { forEachTile, tileLayout } from './tiles.js'
import { checkFinite } from './validate.js'
import { type CoordinateMode, MAX_NETWORK_N, tileLength, useWasm } from './wasm/kernels.js'

export type { CoordinateMode }

/**
 * Applies `mode` to every coordinate of `rows`. With `rule`, non-finite values raise
 * NonFiniteInputError (checked inside the tiled pass).
 */
export function coordinatewise(
  rows: readonly Float32Array[],
  mode: CoordinateMode,
  rule?: string,
): Float32Array {
  const n = rows.length
  const d = rows[0]!.length
  if (!useWasm() || n > MAX_NETWORK_N) {
    if (rule !== undefined) checkFinite(rule, rows)
    return coordinatewiseJs(rows, mode)
  }
  const out = new Float32Array(d)
  const layout = tileLayout(n, tileLength(n) * 4)
  const { memory, strideBytes, tileBase, extraBase } = layout
  const kernel = memory.coordinateKernel(n, mode, strideBytes)
  const outFloat = extraBase / 4
  forEachTile(layout, rows, d, rule, (start, count) => {
    kernel(tileBase, Math.ceil(count / 4) * 16, extraBase)
    out.set(memory.f32.subarray(outFloat, outFloat + count), start)
  })
  return out
}

/** The JS path: per coordinate, gather, insertion-sort a Float32Array scratch, reduce. */
export function coordinatewiseJs(rows: readonly Float32Array[], mode: CoordinateMode): Float32Array {
  const n = rows.length
  const d = rows[0]!.length
  const out = new Float32Array(d)
  const scratch = new Float32Array(n)
  for (let k = 0; k < d; k++) {
    for (let i = 0; i < n; i++) scratch[i] = rows[i]![k]!
    if (n <= 32) insertionSort(scratch)
    else scratch.sort()
    out[k] = reduceSorted(scratch, mode)
  }
  return out
}

function insertionSort(values: Float32Array): void {
  for (let i = 1; i < values.length; i++) {
    const v = values[i]!
    let j = i - 1
    while (j >= 0 && values[j]! > v) {
      values[j + 1] = values[j]!
      j--
    }
    values[j + 1] = v
  }
}

/** The median of sorted values in f32 arithmetic: halves first, so it never overflows. */
export function sortedMedian(sorted: Float32Array): number {
  const n = sorted.length
  const lower = sorted[(n - 1) >> 1]!
  const upper = sorted[n >> 1]!
  return lower === upper ? lower : Math.fround(Math.fround(0.5 * lower) + Math.fround(0.5 * upper))
}

/** One coordinate's result from its sorted values, in the same arithmetic as the WASM kernel. */
export function reduceSorted(sorted: Float32Array, mode: CoordinateMode): number {
  const n = sorted.length
  if (mode.kind === 'median') return sortedMedian(sorted)
  const drop = mode.drop
  let start = drop
  if (mode.kind === 'closest') {
    // Greedy "drop the farther end" (ties drop the larger value), done as in the kernel.
    const median = sortedMedian(sorted)
    start = 0
    for (let i = 0; i < drop; i++) {
      const below = Math.fround(median - sorted[i]!)
      const above = Math.fround(sorted[n - drop + i]! - median)
      if (below > above) start++
    }
  }
  const keep = mode.kind === 'closest' ? n - drop : n - 2 * drop
  let sum = 0
  for (let j = start; j < start + keep; j++) sum += sorted[j]!
  return Math.fround(sum / keep)
}
