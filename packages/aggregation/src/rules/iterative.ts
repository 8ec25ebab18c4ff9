import { squaredDistancesTo, weightedSum64 } from '../mix.js'
import { type CenteredClippingOptions, defaults, type GeometricMedianOptions } from '../options.js'
import { bounds, integerOption, numberOption, prepare, startVector } from '../validate.js'
import { toFloat32 } from '../vector.js'

/**
 * Geometric median by smoothed Weiszfeld: from z₀ = start (default 0), T times
 * `z ← Σ β_i x_i / Σ β_i` with `β_i = 1 / max(ν, ‖x_i − z‖)` (float64 throughout).
 * Defaults ν = 0.1, T = 3. Bound: n ≥ 2f+1 (f defaults to 0). Paper: Pillutla, Kakade,
 * Harchaoui, "Robust Aggregation for Federated Learning" (RFA), IEEE TSP 2022.
 */
export function geometricMedian(
  inputs: readonly Float32Array[],
  options: GeometricMedianOptions = {},
): Float32Array {
  const rule = 'geometricMedian'
  const { d } = prepare(rule, inputs, options, bounds.majority, { fRequired: false })
  const nu = numberOption(rule, 'nu', options.nu ?? defaults.geometricMedian.nu, 0)
  const iterations = integerOption(
    rule,
    'iterations',
    options.iterations ?? defaults.geometricMedian.iterations,
    1,
    1e6,
  )
  let z = startVector(rule, options.start, d)
  for (let t = 0; t < iterations; t++) {
    const weights = Array.from(
      squaredDistancesTo(inputs, z),
      (squared) => 1 / Math.max(nu, Math.sqrt(squared)),
    )
    const total = weights.reduce((sum, w) => sum + w, 0)
    z = weightedSum64(
      inputs,
      weights.map((w) => w / total),
    )
  }
  return toFloat32(z)
}

/**
 * Centered clipping: from v₀ = start (default 0), L times
 * `v ← v + (1/n) Σ (x_i − v)·min(1, τ/‖x_i − v‖)` (a zero difference contributes nothing).
 * τ is required; L defaults to 3. Bound: n ≥ 1 (f accepted for uniformity). Paper:
 * Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust Optimization", ICML 2021.
 */
export function centeredClipping(
  inputs: readonly Float32Array[],
  options: CenteredClippingOptions,
): Float32Array {
  const rule = 'centeredClipping'
  const { n, d } = prepare(rule, inputs, options, bounds.any, { fRequired: false })
  const tau = numberOption(rule, 'tau', options?.tau, 0)
  const iterations = integerOption(
    rule,
    'iterations',
    options.iterations ?? defaults.centeredClipping.iterations,
    1,
    1e6,
  )
  const v = startVector(rule, options.start, d)
  for (let t = 0; t < iterations; t++) {
    const factors = Array.from(squaredDistancesTo(inputs, v), (squared) => {
      const distance = Math.sqrt(squared)
      return distance > tau ? tau / distance : 1
    })
    // (1/n) Σ c_i (x_i − v) = (1/n) Σ c_i x_i − (Σ c_i / n) v
    const pulled = weightedSum64(
      inputs,
      factors.map((c) => c / n),
    )
    const keep = 1 - factors.reduce((sum, c) => sum + c, 0) / n
    for (let k = 0; k < d; k++) v[k] = keep * v[k]! + pulled[k]!
  }
  return toFloat32(v)
}
