import { createRandom, shuffledIndices } from '@phalanx/aggregation'
import { InvalidAttackOptionError } from './errors.js'
import { requireCount, requireFinite, requireNonNegative } from './options.js'
import type {
  DropCoordinatesOptions,
  ModelShiftOptions,
  RandomModelOptions,
  ScaledModelOptions,
} from './types.js'
import { checkReference, dimensionOf, meanOf } from './vectors.js'
import { alieZ, shiftByStd } from './worker.js'

/*
 * Byzantine server attacks that are vector transforms of the honest models of the round.
 * Equivocation, crash and stale replay are protocol behaviours (what is sent to whom, and
 * when), so they live with the node, not here.
 */

/** A model of i.i.d. N(μ, σ²) coordinates, reproducible from `seed`. */
export function randomModel(honest: readonly Float32Array[], options: RandomModelOptions): Float32Array {
  const d = dimensionOf('randomModel', honest)
  const mu = options.mu ?? 0
  const sigma = options.sigma ?? 1
  requireFinite('randomModel', 'mu', mu)
  requireNonNegative('randomModel', 'sigma', sigma)
  requireFinite('randomModel', 'seed', options.seed)
  const random = createRandom(options.seed)
  const out = new Float32Array(d)
  for (let j = 0; j < d; j++) out[j] = mu + sigma * random.normal()
  return out
}

/** factor·model, model = `of` or the honest mean; factor −1 is the reversed model. */
export function scaledModel(honest: readonly Float32Array[], options: ScaledModelOptions): Float32Array {
  const d = dimensionOf('scaledModel', honest)
  requireFinite('scaledModel', 'factor', options.factor)
  if (options.of !== undefined) checkReference('scaledModel', options.of, d)
  const base = options.of ?? meanOf(honest, d)
  const out = new Float32Array(d)
  for (let j = 0; j < d; j++) out[j] = options.factor * base[j]!
  return out
}

/**
 * The model (`of`, or the honest mean) with round(fraction·d) coordinates, chosen by a seeded
 * shuffle, set to 0: a model that looks right almost everywhere.
 */
export function dropCoordinates(
  honest: readonly Float32Array[],
  options: DropCoordinatesOptions,
): Float32Array {
  const d = dimensionOf('dropCoordinates', honest)
  if (!(options.fraction >= 0 && options.fraction <= 1)) {
    throw new InvalidAttackOptionError('dropCoordinates', {
      option: 'fraction',
      value: options.fraction,
      expected: 'a number in [0, 1]',
    })
  }
  requireFinite('dropCoordinates', 'seed', options.seed)
  if (options.of !== undefined) checkReference('dropCoordinates', options.of, d)
  const out = Float32Array.from(options.of ?? meanOf(honest, d))
  const dropped = Math.round(options.fraction * d)
  const order = shuffledIndices(d, createRandom(options.seed))
  for (let k = 0; k < dropped; k++) out[order[k]!] = 0
  return out
}

/**
 * ALIE on models: mean − z·std of the honest servers' models per coordinate, with z from
 * ALIE's formula over N servers and F Byzantine ones unless given. Small and coordinated, so
 * the median anti-drift keeps it only within the honest spread.
 */
export function modelShift(honest: readonly Float32Array[], options: ModelShiftOptions): Float32Array {
  const d = dimensionOf('modelShift', honest)
  requireCount('modelShift', 'f', options.f)
  const n = options.n ?? honest.length + options.f
  const z = options.z ?? alieZ(n, options.f)
  requireFinite('modelShift', 'z', z)
  return shiftByStd(honest, d, z)
}
