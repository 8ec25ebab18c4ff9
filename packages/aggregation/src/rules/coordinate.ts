import { coordinatewise } from '../coordinatewise.js'
import type { AverageOptions, MeamedOptions, MedianOptions, TrimmedMeanOptions } from '../options.js'
import { bounds, prepare } from '../validate.js'
import { meanOf } from '../vector.js'

/**
 * Average: `out = (1/n) Σ x_i`, accumulated in float64. Not robust: one Byzantine input moves
 * it anywhere. Bound: n ≥ 1 (f is accepted for uniformity and ignored). Paper: — (the
 * non-robust baseline of every paper below).
 */
export function average(inputs: readonly Float32Array[], options: AverageOptions = {}): Float32Array {
  prepare('average', inputs, options, bounds.any, { fRequired: false, finite: 'caller' })
  return meanOf(inputs, undefined, 'average')
}

/**
 * Coordinate-wise median: `out_k = median(x_1k, …, x_nk)`, the mean of the two middle values
 * when n is even (computed as ½a + ½b in float32, which cannot overflow). Bound: n ≥ 2f+1
 * (f defaults to 0). Paper: Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed
 * Learning: Towards Optimal Statistical Rates", ICML 2018.
 */
export function median(inputs: readonly Float32Array[], options: MedianOptions = {}): Float32Array {
  prepare('median', inputs, options, bounds.majority, { fRequired: false, finite: 'caller' })
  return coordinatewise(inputs, { kind: 'median' }, 'median')
}

/**
 * Coordinate-wise trimmed mean: per coordinate, drop the f largest and the f smallest values
 * and average the n − 2f left (float64 sum). Bound: n ≥ 2f+1. Paper: Yin et al., ICML 2018
 * (as for the median).
 */
export function trimmedMean(inputs: readonly Float32Array[], options: TrimmedMeanOptions): Float32Array {
  const { f } = prepare('trimmedMean', inputs, options, bounds.majority, {
    fRequired: true,
    finite: 'caller',
  })
  return coordinatewise(inputs, { kind: 'trimmed', drop: f }, 'trimmedMean')
}

/**
 * Meamed (mean around the median): per coordinate, average the n − f values closest to the
 * coordinate's median (median as in `median`; at equal distance the smaller value is kept).
 * Bound: n ≥ 2f+1. Paper: Xie, Koyejo, Gupta, "Generalized Byzantine-tolerant SGD",
 * arXiv:1802.10116, 2018.
 */
export function meamed(inputs: readonly Float32Array[], options: MeamedOptions): Float32Array {
  const { f } = prepare('meamed', inputs, options, bounds.majority, { fRequired: true, finite: 'caller' })
  return coordinatewise(inputs, { kind: 'closest', drop: f }, 'meamed')
}
