import { pairwiseSquaredDistances } from './distances.js'
import { type Combination, meanCombination, squaredDistancesTo, weightedSums } from './mix.js'
import type { ArcOptions, BucketingOptions, ClipOptions, NnmOptions } from './options.js'
import { createRandom, shuffledIndices } from './random.js'
import { bounds, checkFinite, checkShape, integerOption, numberOption, prepare } from './validate.js'

/**
 * NNM (nearest-neighbour mixing): each x_i is replaced by the mean of its n−f nearest inputs,
 * itself included (ties by lower index). Distances from one Gram matrix. Bound: n ≥ f+1.
 * Paper: Allouah et al., "Fixing by Mixing: A Recipe for Optimal Byzantine ML under
 * Heterogeneity", AISTATS 2023.
 */
export function nnm(inputs: readonly Float32Array[], options: NnmOptions): Float32Array[] {
  const { n, f } = prepare('nnm', inputs, options, bounds.fewerThanN, { fRequired: true, finite: 'caller' })
  const distances = pairwiseSquaredDistances(inputs, 'nnm')
  const neighbourhoods = inputs.map((_, i) => {
    const others = Array.from({ length: n }, (_, j) => j).filter((j) => j !== i)
    others.sort((a, b) => distances.values[i * n + a]! - distances.values[i * n + b]! || a - b)
    return meanCombination([i, ...others.slice(0, n - f - 1)])
  })
  return weightedSums(inputs, neighbourhoods)
}

/**
 * Bucketing: shuffle the inputs with `createRandom(seed)` (Fisher–Yates), cut the shuffled
 * order into consecutive buckets of `bucketSize` (the last one smaller when s ∤ n) and output
 * each bucket's mean: ⌈n/s⌉ vectors. Bound: n ≥ 1. Paper: Karimireddy, He, Jaggi, "Byzantine-
 * Robust Learning on Heterogeneous Datasets via Bucketing", ICLR 2022.
 */
export function bucketing(inputs: readonly Float32Array[], options: BucketingOptions): Float32Array[] {
  const rule = 'bucketing'
  const { n } = checkShape(rule, inputs)
  const size = integerOption(rule, 'bucketSize', options?.bucketSize, 1, Number.POSITIVE_INFINITY)
  const seed = integerOption(rule, 'seed', options.seed, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)
  const order = shuffledIndices(n, createRandom(seed))
  const buckets: Combination[] = []
  for (let start = 0; start < n; start += size)
    buckets.push(meanCombination(order.slice(start, start + size)))
  return weightedSums(inputs, buckets, rule)
}

/**
 * ARC (adaptive robust clipping): with k = ⌊2(f/n)(n−f)⌋, the k inputs of largest norm are
 * scaled down to the largest norm among the n−k others (the (n−k)-th norm counted from the
 * smallest); the rest are copied. Bound: n ≥ f+1. Paper: Allouah et al., "Boosting Robustness
 * by Clipping Gradients in Distributed Learning" (ARC), 2024.
 */
export function arc(inputs: readonly Float32Array[], options: ArcOptions): Float32Array[] {
  const { n, f } = prepare('arc', inputs, options, bounds.fewerThanN, { fRequired: true, finite: 'caller' })
  const k = arcClipCount(n, f)
  const norms = checkedNorms('arc', inputs)
  const byNorm = norms.map((_, i) => i).sort((a, b) => norms[b]! - norms[a]! || a - b)
  const threshold = norms[byNorm[k]!]!
  const clipped = new Set(byNorm.slice(0, k))
  return scaledCopies(
    inputs,
    norms.map((size, i) => (clipped.has(i) && size > threshold ? threshold / size : 1)),
  )
}

/**
 * ARC's k = ⌊2(f/n)(n−f)⌋, computed as ⌊2f(n−f)/n⌋ so that nothing is rounded before the floor:
 * the literal 2·(f/n)·(n−f) rounds f/n first and gives 56 for n = 242, f = 33, where k = 57 (31
 * pairs with f < n ≤ 1000 are off by one that way). Exact for every n < 2^27: 2f(n−f) ≤ n²/2 is
 * then an exact double, and the correctly rounded quotient could only round up to ⌊·⌋+1 if
 * n·(⌊·⌋+1) ≥ 2^53, which needs 2f(n−f) + n > 2^53.
 */
export function arcClipCount(n: number, f: number): number {
  return Math.floor((2 * f * (n - f)) / n)
}

/** ‖x_i‖ for every input in one tiled pass; a non-finite input raises NonFiniteInputError. */
function checkedNorms(rule: string, inputs: readonly Float32Array[]): number[] {
  const squared = squaredDistancesTo(inputs, new Float64Array(inputs[0]!.length))
  // NaN or ±Inf anywhere in x_i makes ‖x_i‖² non-finite (finite float32 squares fit in float64).
  if (!squared.every(Number.isFinite)) checkFinite(rule, inputs)
  return Array.from(squared, Math.sqrt)
}

/** New arrays x_i · scale_i (scale 1 copies exactly). */
function scaledCopies(inputs: readonly Float32Array[], scales: readonly number[]): Float32Array[] {
  return weightedSums(
    inputs,
    scales.map((scale, i) => ({ rows: [i], weights: [scale] })),
  )
}

/**
 * Static norm clipping: x_i · min(1, maxNorm/‖x_i‖). Bound: n ≥ 1. Paper: Pascanu, Mikolov,
 * Bengio, "On the difficulty of training recurrent neural networks", ICML 2013 (clipping);
 * analysed for robustness in the ARC paper above.
 */
export function clip(inputs: readonly Float32Array[], options: ClipOptions): Float32Array[] {
  const rule = 'clip'
  checkShape(rule, inputs)
  const maxNorm = numberOption(rule, 'maxNorm', options?.maxNorm, 0)
  return scaledCopies(
    inputs,
    checkedNorms(rule, inputs).map((size) => (size > maxNorm ? maxNorm / size : 1)),
  )
}
