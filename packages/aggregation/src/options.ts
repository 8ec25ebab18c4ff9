/**
 * Option types of every rule and pre-aggregator, and their defaults (in this one place).
 */

/** f: how many of the n inputs may be Byzantine. Required where the rule's output depends on it. */
export interface FOptions {
  readonly f: number
}

/** For rules whose output does not depend on f: given, it is validated and its bound checked. */
export interface OptionalFOptions {
  readonly f?: number
}

export type AverageOptions = OptionalFOptions
export type MedianOptions = OptionalFOptions
export type TrimmedMeanOptions = FOptions
export type MeamedOptions = FOptions
export type KrumOptions = FOptions
export type BulyanOptions = FOptions

export interface MultiKrumOptions extends FOptions {
  /** How many lowest-score inputs to average, 1 ≤ m ≤ n (default n − f). */
  readonly m?: number
}

export interface GeometricMedianOptions extends OptionalFOptions {
  /** Smoothing ν > 0: weights are 1/max(ν, ‖x_i − z‖) (default 0.1). */
  readonly nu?: number
  /** Weiszfeld iterations T ≥ 1 (default 3). */
  readonly iterations?: number
  /** Starting point z₀ (default the zero vector). */
  readonly start?: Float32Array
}

export interface MdaOptions extends FOptions {
  /** Refuse exact enumeration when C(n, f) exceeds this (default 5,000,000). */
  readonly maxSubsets?: number
  /** Past maxSubsets, use the greedy approximation instead of refusing (default false). */
  readonly approximate?: boolean
}

export interface CenteredClippingOptions extends OptionalFOptions {
  /** Clipping radius τ > 0 (required: it has the units of the gradients, so no default fits). */
  readonly tau: number
  /** Clipping iterations L ≥ 1 (default 3). */
  readonly iterations?: number
  /** Starting point v₀ (default the zero vector; servers pass the previous aggregate). */
  readonly start?: Float32Array
}

export type NnmOptions = FOptions
export type ArcOptions = FOptions

export interface BucketingOptions {
  /** Inputs per bucket s ≥ 1 (the last bucket holds the n mod s left over, if any). */
  readonly bucketSize: number
  /** Seed of the shuffle (an integer; its low 32 bits are used). */
  readonly seed: number
}

export interface ClipOptions {
  /** Inputs with a larger ℓ2 norm are scaled down to it; > 0. */
  readonly maxNorm: number
}

export const defaults = {
  geometricMedian: {
    /** ν = 0.1 and T = 3 are the values of the smoothed-Weiszfeld RFA paper (Pillutla et al.). */
    nu: 0.1,
    iterations: 3,
  },
  centeredClipping: {
    /** From a zero start one step moves at most τ; three steps reach the honest cluster in practice. */
    iterations: 3,
  },
  mda: {
    /**
     * C(32, 7) ≈ 3.4M subsets (n=32, f=7, the benchmark's shape) still enumerate in about a
     * second with branch-and-bound; far past that the worst case takes longer than a round.
     */
    maxSubsets: 5_000_000,
    approximate: false,
  },
} as const
