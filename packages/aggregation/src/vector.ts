import { meanCombination, weightedSums } from './mix.js'

/** Small vector helpers; everything accumulates in float64 and rounds once to float32. */

/**
 * Mean of the given rows (all when `indices` is absent), as a new Float32Array. With `rule`,
 * non-finite inputs raise NonFiniteInputError in the same pass.
 */
export function meanOf(
  inputs: readonly Float32Array[],
  indices?: readonly number[],
  rule?: string,
): Float32Array {
  const rows = indices ?? inputs.map((_, i) => i)
  return weightedSums(inputs, [meanCombination(rows)], rule)[0]!
}

/** Rounds a float64 iterate to a new Float32Array. */
export function toFloat32(z: Float64Array): Float32Array {
  return Float32Array.from(z)
}

/** ‖a − b‖₂, accumulated in float64: the one distance between two models or gradients. */
export function l2Distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0
  for (let j = 0; j < a.length; j++) {
    const difference = a[j]! - b[j]!
    sum += difference * difference
  }
  return Math.sqrt(sum)
}
