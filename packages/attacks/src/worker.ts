import { createRandom } from '@phalanx/aggregation'
import { AlieZUndefinedError, InvalidAttackOptionError } from './errors.js'
import { inverseNormalCdf } from './normal-quantile.js'
import { requireCount, requireFinite, requireIndex, requireNonNegative } from './options.js'
import type {
  AlieOptions,
  GaussianOptions,
  HiddenShiftOptions,
  IpmOptions,
  MimicOptions,
  NonFiniteOptions,
  SignFlipOptions,
} from './types.js'
import { checkReference, dimensionOf, meanOf, varianceOf } from './vectors.js'

/** −scale·mean(honest), or −scale·`of` when given. */
export function signFlip(honest: readonly Float32Array[], options: SignFlipOptions = {}): Float32Array {
  const d = dimensionOf('signFlip', honest)
  const scale = options.scale ?? 1
  requireFinite('signFlip', 'scale', scale)
  if (options.of !== undefined) checkReference('signFlip', options.of, d)
  const base = options.of ?? meanOf(honest, d)
  const out = new Float32Array(d)
  for (let j = 0; j < d; j++) out[j] = -scale * base[j]!
  return out
}

/** Every coordinate drawn from N(μ, σ²), reproducibly from `seed`; honest vectors give only d. */
export function gaussian(honest: readonly Float32Array[], options: GaussianOptions): Float32Array {
  const d = dimensionOf('gaussian', honest)
  const mu = options.mu ?? 0
  requireFinite('gaussian', 'mu', mu)
  requireNonNegative('gaussian', 'sigma', options.sigma)
  requireFinite('gaussian', 'seed', options.seed)
  const random = createRandom(options.seed)
  const out = new Float32Array(d)
  for (let j = 0; j < d; j++) out[j] = mu + options.sigma * random.normal()
  return out
}

/** Inner-product manipulation (Xie et al., UAI 2019): −ε·mean(honest). */
export function ipm(honest: readonly Float32Array[], options: IpmOptions): Float32Array {
  const d = dimensionOf('ipm', honest)
  requireFinite('ipm', 'epsilon', options.epsilon)
  const mean = meanOf(honest, d)
  const out = new Float32Array(d)
  for (let j = 0; j < d; j++) out[j] = -options.epsilon * mean[j]!
  return out
}

/**
 * ALIE's default z (Baruch et al., NeurIPS 2019): z = Φ⁻¹((n−s)/n), s = ⌊n/2+1⌋−f, the
 * largest shift for which the f Byzantine vectors plus the s honest ones nearest to them still
 * form a majority that looks like a plausible cluster. E.g. n = 50, f = 24 gives z ≈ 1.75.
 */
export function alieZ(n: number, f: number): number {
  requireCount('alie', 'n', n, 1)
  requireCount('alie', 'f', f)
  const s = Math.floor(n / 2 + 1) - f
  if (!(s > 0 && s < n)) throw new AlieZUndefinedError({ n, f, s })
  return inverseNormalCdf((n - s) / n)
}

/** A little is enough: mean − z·std per coordinate (unbiased std of the honest vectors). */
export function alie(honest: readonly Float32Array[], options: AlieOptions): Float32Array {
  const d = dimensionOf('alie', honest)
  requireCount('alie', 'f', options.f)
  const n = options.n ?? honest.length + options.f
  requireCount('alie', 'n', n, 1)
  const z = options.z ?? alieZ(n, options.f)
  requireFinite('alie', 'z', z)
  return shiftByStd(honest, d, z)
}

/** mean − z·std per coordinate; shared by ALIE and the server-side model shift. */
export function shiftByStd(honest: readonly Float32Array[], d: number, z: number): Float32Array {
  return shiftedMean(honestSpread(honest, d), z)
}

/** The honest mean and unbiased per-coordinate standard deviation, computed once per round. */
export interface HonestSpread {
  mean: Float64Array
  std: Float64Array
}

export function honestSpread(honest: readonly Float32Array[], d: number): HonestSpread {
  const mean = meanOf(honest, d)
  const std = varianceOf(honest, mean, d).map(Math.sqrt)
  return { mean, std }
}

export function shiftedMean({ mean, std }: HonestSpread, z: number): Float32Array {
  const out = new Float32Array(mean.length)
  for (let j = 0; j < mean.length; j++) out[j] = mean[j]! - z * std[j]!
  return out
}

/** Copy of honest worker `target`'s vector: over-weights one worker, hurting non-iid training. */
export function mimic(honest: readonly Float32Array[], options: MimicOptions): Float32Array {
  dimensionOf('mimic', honest)
  requireIndex('mimic', 'target', options.target, honest.length)
  return Float32Array.from(honest[options.target]!)
}

const NON_FINITE_VALUES = { nan: Number.NaN, inf: Number.POSITIVE_INFINITY, '-inf': Number.NEGATIVE_INFINITY }

/** A vector of NaN, +∞ or −∞: what every honest node must drop before aggregating. */
export function nonFinite(honest: readonly Float32Array[], options: NonFiniteOptions): Float32Array {
  const d = dimensionOf('nonFinite', honest)
  if (!Object.hasOwn(NON_FINITE_VALUES, options.kind)) {
    throw new InvalidAttackOptionError('nonFinite', {
      option: 'kind',
      value: options.kind,
      expected: "'nan', 'inf' or '-inf'",
    })
  }
  return new Float32Array(d).fill(NON_FINITE_VALUES[options.kind])
}

/**
 * The seed's "hidden vulnerability" attack: the honest mean moved by scale·√(Σ_j Var_j) along
 * one coordinate (by default the one of largest honest variance). For honest vectors
 * g + N(0, σ²I) in d dimensions, √(Σ_j Var_j) ≈ √d·σ, which is the ℓ2 distance of a typical
 * honest vector to their mean: in ℓ2 the attack looks like one more honest vector (it lies in
 * the "correct cone" whenever the honest ones do), so distance-based rules such as Krum pick
 * it, while its one coordinate is √d·σ off.
 */
export function hiddenShift(honest: readonly Float32Array[], options: HiddenShiftOptions = {}): Float32Array {
  const d = dimensionOf('hiddenShift', honest)
  const scale = options.scale ?? 1
  requireFinite('hiddenShift', 'scale', scale)
  const mean = meanOf(honest, d)
  const variance = varianceOf(honest, mean, d)
  let coordinate = 0
  let spread = 0
  for (let j = 0; j < d; j++) {
    spread += variance[j]!
    if (variance[j]! > variance[coordinate]!) coordinate = j
  }
  if (options.coordinate !== undefined) {
    requireIndex('hiddenShift', 'coordinate', options.coordinate, d)
    coordinate = options.coordinate
  }
  if (options.sign !== undefined && options.sign !== 1 && options.sign !== -1) {
    throw new InvalidAttackOptionError('hiddenShift', {
      option: 'sign',
      value: options.sign,
      expected: '1 or -1',
    })
  }
  // Away from the mean's sign; a mean that is zero but for rounding (its float64 sum depends on
  // the order of the honest vectors) counts as zero, so the direction does not hang on the order.
  let magnitude = 0
  for (const vector of honest) magnitude += Math.abs(vector[coordinate]!)
  const tolerance = (1e-12 * magnitude) / honest.length
  const sign = options.sign ?? (mean[coordinate]! > tolerance ? -1 : 1)
  const out = Float32Array.from(mean)
  out[coordinate] = mean[coordinate]! + sign * scale * Math.sqrt(spread)
  return out
}
