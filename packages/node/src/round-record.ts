/**
 * What a server derives from the distances it measured in a round: its drift and its suspicions.
 * One meaning of drift throughout (docs/OPERATIONS.md, "What drift means"): the ℓ2 distance
 * between two servers' models of the same round; a server's `drift` is the lower median of its
 * distances to the other servers' models it received.
 */
import type { Suspicion } from '@phalanx/control'

/**
 * The lower median: a server that went on with N−F models may have received only one honest
 * peer's model beside a Byzantine one, and the mean of those two would report the attack as
 * honest drift.
 */
export function medianOf(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]
}

/**
 * A server's drift: the lower median of its distances to the received models, not the distance to
 * their median (that would need the median, which up to F Byzantine models move); undefined
 * without distances or when it is not finite.
 */
export function driftOf(distances: Readonly<Record<string, number>>): number | undefined {
  const drift = medianOf(Object.values(distances))
  return drift !== undefined && Number.isFinite(drift) ? drift : undefined
}

/**
 * A received model much farther from this server's own than the median distance is suspect:
 * honest models differ by what gradients each server saw first, a Byzantine one by what it
 * chose. The floor keeps float rounding between identical honest models from raising alarms.
 */
const suspicionFactor = 10
const suspicionFloor = 1e-3

export function farFromMedian(
  round: number,
  distances: Readonly<Record<string, number>>,
  medianDistance: number | undefined,
): Suspicion[] {
  if (medianDistance === undefined || !Number.isFinite(medianDistance)) return []
  const threshold = Math.max(suspicionFloor, suspicionFactor * medianDistance)
  return Object.entries(distances)
    .filter(([, distance]) => !(distance <= threshold))
    .map(([suspect, distance]) => ({
      suspect,
      reason: 'model_far_from_median',
      round,
      evidence: { distance, medianDistance, threshold },
    }))
}
