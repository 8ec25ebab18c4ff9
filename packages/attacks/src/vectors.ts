import { DimensionMismatchError, NoHonestVectorsError } from './errors.js'

/** Checks the honest set is non-empty and of one dimension; returns that dimension. */
export function dimensionOf(attack: string, honest: readonly Float32Array[]): number {
  const first = honest[0]
  if (first === undefined) throw new NoHonestVectorsError(attack)
  const d = first.length
  for (let i = 1; i < honest.length; i++) {
    const length = honest[i]!.length
    if (length !== d)
      throw new DimensionMismatchError({ source: attack, index: i, expected: d, actual: length })
  }
  return d
}

/** Checks a caller-given reference vector (e.g. `of`) has the honest dimension. */
export function checkReference(attack: string, reference: Float32Array, d: number): void {
  if (reference.length !== d) {
    throw new DimensionMismatchError({ source: attack, index: -1, expected: d, actual: reference.length })
  }
}

/**
 * Coordinate-wise mean, accumulated in float64: summing n float32 values in float32 loses up
 * to log2(n) bits, which would make the attacks' hand-computed expectations drift.
 */
export function meanOf(honest: readonly Float32Array[], d: number): Float64Array {
  const sum = new Float64Array(d)
  for (const vector of honest) {
    for (let j = 0; j < d; j++) sum[j]! += vector[j]!
  }
  const scale = 1 / honest.length
  for (let j = 0; j < d; j++) sum[j]! *= scale
  return sum
}

/**
 * Coordinate-wise unbiased (n−1) variance, as `torch.std` computes it in the ALIE and IPM
 * reference code; 0 when there is a single honest vector (no spread is observable).
 */
export function varianceOf(honest: readonly Float32Array[], mean: Float64Array, d: number): Float64Array {
  const variance = new Float64Array(d)
  if (honest.length < 2) return variance
  for (const vector of honest) {
    for (let j = 0; j < d; j++) {
      const deviation = vector[j]! - mean[j]!
      variance[j]! += deviation * deviation
    }
  }
  const scale = 1 / (honest.length - 1)
  for (let j = 0; j < d; j++) variance[j]! *= scale
  return variance
}
