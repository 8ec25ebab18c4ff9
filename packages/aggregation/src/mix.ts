/**
 * Weighted sums of input rows, out = Σ_j w_j x_j, for every rule that averages a subset (average,
 * Multi-Krum, MDA, NNM, bucketing). The WASM path reads the inputs once, tile by tile, and
 * accumulates each output in float64 in an L1-sized block; the JS path is `meanOf`'s loop.
 */
import { forEachTile, tileLayout } from './tiles.js'
import { checkFinite } from './validate.js'
import { tileLength, useWasm } from './wasm/kernels.js'

/** One output: the rows it sums and their weights (same length). */
export interface Combination {
  readonly rows: readonly number[]
  readonly weights: readonly number[]
}

/** The mean of `rows` as a combination. */
export function meanCombination(rows: readonly number[]): Combination {
  return { rows, weights: rows.map(() => 1 / rows.length) }
}

/**
 * Every combination of the inputs, each a new Float32Array. With `rule`, non-finite inputs
 * raise NonFiniteInputError during the same pass.
 */
export function weightedSums(
  inputs: readonly Float32Array[],
  combinations: readonly Combination[],
  rule?: string,
): Float32Array[] {
  const n = inputs.length
  const d = inputs[0]!.length
  if (!useWasm()) {
    if (rule !== undefined) checkFinite(rule, inputs)
    return combinations.map((combination) => weightedSumJs(inputs, combination))
  }
  // Only rows some combination uses are copied into the tiles (Multi-Krum and MDA use n − f).
  const used = [...new Set(combinations.flatMap((c) => c.rows))].sort((a, b) => a - b)
  if (used.length < n) {
    if (rule !== undefined) checkFinite(rule, inputs)
    const position = new Map(used.map((row, p) => [row, p]))
    const remapped = combinations.map((c) => ({
      rows: c.rows.map((row) => position.get(row)!),
      weights: c.weights,
    }))
    return weightedSums(
      used.map((row) => inputs[row]!),
      remapped,
    )
  }
  const outs = combinations.map(() => new Float32Array(d))
  const length = tileLength(n)
  // After the tile: one f64 accumulator block, then one f32 staging block.
  const layout = tileLayout(n, length * 12)
  const { memory, strideBytes, tileBase, extraBase } = layout
  const { axpy, demote } = memory.basicKernels()
  const accumulator = extraBase
  const staging = extraBase + length * 8
  forEachTile(layout, inputs, d, rule, (start, count) => {
    const lengthBytes = Math.ceil(count / 4) * 16
    const f64 = memory.f64
    const f32 = memory.f32
    combinations.forEach((combination, o) => {
      f64.fill(0, accumulator / 8, accumulator / 8 + length)
      combination.rows.forEach((row, j) => {
        axpy(accumulator, tileBase + row * strideBytes, combination.weights[j]!, lengthBytes)
      })
      demote(staging, accumulator, lengthBytes)
      outs[o]!.set(f32.subarray(staging / 4, staging / 4 + count), start)
    })
  })
  return outs
}

function weightedSumJs(inputs: readonly Float32Array[], { rows, weights }: Combination): Float32Array {
  const d = inputs[0]!.length
  const sum = new Float64Array(d)
  rows.forEach((row, j) => {
    const x = inputs[row]!
    const w = weights[j]!
    for (let k = 0; k < d; k++) sum[k]! += w * x[k]!
  })
  return Float32Array.from(sum)
}

/**
 * ‖x_i − z‖² for every input, z in float64 (the iterates of the geometric median and centered
 * clipping). One tiled pass; the JS path is the plain loop.
 */
export function squaredDistancesTo(inputs: readonly Float32Array[], z: Float64Array): Float64Array {
  const n = inputs.length
  const d = z.length
  const out = new Float64Array(n)
  if (!useWasm()) {
    inputs.forEach((x, i) => {
      let sum = 0
      for (let k = 0; k < d; k++) {
        const diff = x[k]! - z[k]!
        sum += diff * diff
      }
      out[i] = sum
    })
    return out
  }
  const length = tileLength(n)
  const layout = tileLayout(n, length * 8)
  const { memory, strideBytes, tileBase, extraBase } = layout
  const { distanceToF64 } = memory.basicKernels()
  forEachTile(layout, inputs, d, undefined, (start, count) => {
    const f64 = memory.f64
    f64.set(z.subarray(start, start + count), extraBase / 8)
    if (count < length) f64.fill(0, extraBase / 8 + count, extraBase / 8 + length)
    const lengthBytes = Math.ceil(count / 4) * 16
    for (let i = 0; i < n; i++) out[i]! += distanceToF64(tileBase + i * strideBytes, extraBase, lengthBytes)
  })
  return out
}

/** Σ_i w_i x_i in float64 (no rounding to float32: iterates stay in float64). */
export function weightedSum64(inputs: readonly Float32Array[], weights: readonly number[]): Float64Array {
  const n = inputs.length
  const d = inputs[0]!.length
  const out = new Float64Array(d)
  if (!useWasm()) {
    inputs.forEach((x, i) => {
      const w = weights[i]!
      for (let k = 0; k < d; k++) out[k]! += w * x[k]!
    })
    return out
  }
  const length = tileLength(n)
  const layout = tileLayout(n, length * 8)
  const { memory, strideBytes, tileBase, extraBase } = layout
  const { axpy } = memory.basicKernels()
  forEachTile(layout, inputs, d, undefined, (start, count) => {
    const f64 = memory.f64
    f64.fill(0, extraBase / 8, extraBase / 8 + length)
    for (let i = 0; i < n; i++)
      axpy(extraBase, tileBase + i * strideBytes, weights[i]!, Math.ceil(count / 4) * 16)
    out.set(memory.f64.subarray(extraBase / 8, extraBase / 8 + count), start)
  })
  return out
}
