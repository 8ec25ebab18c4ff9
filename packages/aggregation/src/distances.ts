/**
 * All pairwise squared distances of n vectors, as one Gram matrix: ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b.
 *
 * The WASM path computes the upper triangle of XXᵀ tile by tile (a 4×2 register-blocked SIMD
 * micro-kernel, f32 lanes within a tile, f64 across tiles). The identity cancels badly when
 * two vectors are close relative to their norms, so every distance under
 * CANCELLATION_GUARD·(‖a‖²+‖b‖²) is recomputed directly as Σ(a_k−b_k)², and magnitudes where
 * f32 products could overflow or underflow go to the all-f64 direct path.
 */
import { forEachTile, tileLayout } from './tiles.js'
import { checkFinite } from './validate.js'
import { GRAM_BLOCK_COLS, GRAM_BLOCK_ROWS, useWasm } from './wasm/kernels.js'

/**
 * A Gram distance below 2⁻⁶ of ‖a‖²+‖b‖² has lost 6 of the ~17 bits a tile-accumulated f32
 * dot product keeps; recompute it directly, where no cancellation happens.
 */
export const CANCELLATION_GUARD = 2 ** -6

/** Squared norms above this risk f32 overflow in the products; below the other, f32 subnormals. */
const MAX_SAFE_SQUARED_NORM = 1e36
const MIN_SAFE_SQUARED_NORM = 1e-24

/** n×n symmetric matrix of squared distances (row-major, zero diagonal). */
export interface DistanceMatrix {
  readonly n: number
  readonly values: Float64Array
}

export function distanceAt(matrix: DistanceMatrix, i: number, j: number): number {
  return matrix.values[i * matrix.n + j]!
}

/**
 * Pairwise squared distances. When `rule` is given, the inputs are also checked for non-finite
 * values during the same pass (the caller then skips its own scan).
 */
export function pairwiseSquaredDistances(inputs: readonly Float32Array[], rule?: string): DistanceMatrix {
  const n = inputs.length
  if (n === 1) {
    if (rule !== undefined) checkFinite(rule, inputs)
    return { n, values: new Float64Array(1) }
  }
  if (!useWasm()) {
    if (rule !== undefined) checkFinite(rule, inputs)
    return directDistances(inputs)
  }
  return distancesFromGram(inputs, gramMatrix(inputs), rule)
}

/** Rows of the Gram matrix `gramMatrix` returns: n rounded up to the micro-kernel's 4. */
export function gramRows(n: number): number {
  // A multiple of both block sides (their lcm); the padded rows are zero.
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b))
  const block = (GRAM_BLOCK_ROWS * GRAM_BLOCK_COLS) / gcd(GRAM_BLOCK_ROWS, GRAM_BLOCK_COLS)
  return Math.ceil(n / block) * block
}

/**
 * The Gram matrix XXᵀ of the inputs (WASM path), gramRows(n)² float64 row-major; entries (i, j)
 * with i ≤ j < n are valid. Partial Gram matrices of coordinate ranges add up, which is how the
 * worker-thread variant splits the work.
 */
export function gramMatrix(inputs: readonly Float32Array[]): Float64Array {
  const d = inputs[0]!.length
  const rows = gramRows(inputs.length)
  const layout = tileLayout(rows, rows * rows * 8)
  const { memory, strideBytes, tileBase, extraBase } = layout
  memory.f64.fill(0, extraBase / 8, extraBase / 8 + rows * rows)
  const gramKernel = memory.gramKernel(strideBytes, rows * 8)
  // No per-tile finiteness scan here: a NaN or ±Inf makes its row's squared norm non-finite,
  // which distancesFromGram catches (and then locates with the JS scan).
  forEachTile(layout, inputs, d, undefined, (_start, count) => {
    const lengthBytes = Math.ceil(count / 8) * 32
    for (let i0 = 0; i0 < rows; i0 += GRAM_BLOCK_ROWS) {
      for (let j0 = i0 - (i0 % GRAM_BLOCK_COLS); j0 < rows; j0 += GRAM_BLOCK_COLS) {
        gramKernel(
          tileBase + i0 * strideBytes,
          tileBase + j0 * strideBytes,
          lengthBytes,
          extraBase + (i0 * rows + j0) * 8,
        )
      }
    }
  })
  return memory.f64.slice(extraBase / 8, extraBase / 8 + rows * rows)
}

/**
 * Squared distances from a Gram matrix, with the guards: non-finite or unsafe norms go to the
 * f64 direct path (after the finiteness check when `rule` is given), and distances under
 * CANCELLATION_GUARD·(‖a‖²+‖b‖²) are recomputed directly.
 */
export function distancesFromGram(
  inputs: readonly Float32Array[],
  gram: Float64Array,
  rule?: string,
): DistanceMatrix {
  const n = inputs.length
  const rows = gramRows(n)
  for (let i = 0; i < n; i++) {
    const norm = gram[i * rows + i]!
    if (!(norm <= MAX_SAFE_SQUARED_NORM) || (norm > 0 && norm < MIN_SAFE_SQUARED_NORM)) {
      if (rule !== undefined) checkFinite(rule, inputs)
      return directDistances(inputs)
    }
  }
  const values = new Float64Array(n * n)
  const suspect: [number, number][] = []
  for (let i = 0; i < n; i++) {
    const normI = gram[i * rows + i]!
    for (let j = i + 1; j < n; j++) {
      const normJ = gram[j * rows + j]!
      const distance = normI + normJ - 2 * gram[i * rows + j]!
      if (!(distance > CANCELLATION_GUARD * (normI + normJ))) suspect.push([i, j])
      const clamped = Math.max(distance, 0)
      values[i * n + j] = clamped
      values[j * n + i] = clamped
    }
  }
  if (suspect.length > 0) recomputeDirectly(inputs, suspect, values)
  return { n, values }
}

/** Re-runs the tiles for the suspect pairs only, with the direct Σ(a_k − b_k)² kernel. */
function recomputeDirectly(
  inputs: readonly Float32Array[],
  pairs: readonly [number, number][],
  values: Float64Array,
): void {
  const n = inputs.length
  const d = inputs[0]!.length
  const layout = tileLayout(n, 0)
  const { memory, strideBytes, tileBase } = layout
  const squaredDistance = memory.basicKernels().squaredDistance
  const sums = new Float64Array(pairs.length)
  forEachTile(layout, inputs, d, undefined, (_start, count) => {
    const lengthBytes = Math.ceil(count / 4) * 16
    for (let p = 0; p < pairs.length; p++) {
      const [i, j] = pairs[p]!
      sums[p]! += squaredDistance(tileBase + i * strideBytes, tileBase + j * strideBytes, lengthBytes)
    }
  })
  for (let p = 0; p < pairs.length; p++) {
    const [i, j] = pairs[p]!
    values[i * n + j] = sums[p]!
    values[j * n + i] = sums[p]!
  }
}

/** Σ(a_k − b_k)² in f64 for every pair: exact enough for any finite float32 input. */
export function directDistances(inputs: readonly Float32Array[]): DistanceMatrix {
  const n = inputs.length
  const values = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    const a = inputs[i]!
    for (let j = i + 1; j < n; j++) {
      const b = inputs[j]!
      let sum = 0
      for (let k = 0; k < a.length; k++) {
        const diff = a[k]! - b[k]!
        sum += diff * diff
      }
      values[i * n + j] = sum
      values[j * n + i] = sum
    }
  }
  return { n, values }
}
