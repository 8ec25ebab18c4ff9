import { type DistanceMatrix, pairwiseSquaredDistances } from '../distances.js'
import { SubsetLimitError } from '../errors.js'
import { defaults, type MdaOptions } from '../options.js'
import { bounds, integerOption, prepare } from '../validate.js'
import { meanOf } from '../vector.js'

/** Which subset MDA averaged, its diameter, and whether it is the exact minimum. */
export interface MdaSelection {
  /** Indices of the n − f inputs averaged, ascending. */
  readonly selected: number[]
  /** The subset's diameter: its largest pairwise squared distance. */
  readonly diameter: number
  /** 'exact': minimum over all subsets; 'greedy': approximation (only with `approximate`). */
  readonly method: 'exact' | 'greedy'
}

/** C(n, k) as a float, stopping early once it passes `cap`. */
export function binomial(n: number, k: number, cap = Number.POSITIVE_INFINITY): number {
  let result = 1
  const small = Math.min(k, n - k)
  for (let i = 1; i <= small; i++) {
    result = (result * (n - small + i)) / i
    if (result > cap) return result
  }
  return Math.round(result)
}

/**
 * MDA's choice with its method; `mda` returns only the average. Same checks and bound as
 * `mda`. Refuses with SubsetLimitError when C(n, f) > maxSubsets unless `approximate`.
 */
export function mdaSelect(inputs: readonly Float32Array[], options: MdaOptions): MdaSelection {
  const rule = 'mda'
  const { n, f } = prepare(rule, inputs, options, bounds.majority, { fRequired: true, finite: 'caller' })
  const maxSubsets = integerOption(
    rule,
    'maxSubsets',
    options.maxSubsets ?? defaults.mda.maxSubsets,
    1,
    Number.MAX_SAFE_INTEGER,
  )
  const subsets = binomial(n, f, maxSubsets)
  const tooMany = subsets > maxSubsets
  if (tooMany && !(options.approximate ?? defaults.mda.approximate)) {
    throw new SubsetLimitError(rule, n, f, binomial(n, f), maxSubsets)
  }
  const distances = pairwiseSquaredDistances(inputs, rule)
  return tooMany ? greedy(distances, n - f) : exact(distances, n - f)
}

/**
 * Depth-first over subsets in lexicographic order with branch-and-bound. Subsets sharing their
 * diametral pair tie on the diameter all the time, and "first in index order" would make the
 * result depend on the order of the inputs; so ties are broken by the smaller sum of pairwise
 * squared distances (then by index order, which only exact coincidences reach).
 */
function exact(distances: DistanceMatrix, size: number): MdaSelection {
  const { n, values } = distances
  const chosen: number[] = []
  let best: number[] = []
  let bestDiameter = Number.POSITIVE_INFINITY
  let bestSpread = Number.POSITIVE_INFINITY
  const visit = (next: number, diameter: number, spread: number): void => {
    if (chosen.length === size) {
      if (diameter < bestDiameter || spread < bestSpread) {
        bestDiameter = diameter
        bestSpread = spread
        best = chosen.slice()
      }
      return
    }
    for (let i = next; i <= n - (size - chosen.length); i++) {
      let widened = diameter
      let wider = spread
      for (const j of chosen) {
        const distance = values[i * n + j]!
        widened = Math.max(widened, distance)
        wider += distance
      }
      // Diameters and spreads only grow as points are added: prune what cannot win any more.
      if (widened > bestDiameter || (widened === bestDiameter && wider >= bestSpread)) continue
      chosen.push(i)
      visit(i + 1, widened, wider)
      chosen.pop()
    }
  }
  visit(0, 0, 0)
  return { selected: best, diameter: bestDiameter, method: 'exact' }
}

/** Removes, f times, the endpoint of the current diameter whose removal shrinks it more. */
function greedy(distances: DistanceMatrix, size: number): MdaSelection {
  const { n, values } = distances
  const kept = new Set(Array.from({ length: n }, (_, i) => i))
  const diameterWithout = (removed: number): [number, number, number] => {
    let widest: [number, number, number] = [-1, -1, -1]
    for (const i of kept) {
      if (i === removed) continue
      for (const j of kept) {
        if (j <= i || j === removed) continue
        const distance = values[i * n + j]!
        if (distance > widest[0]) widest = [distance, i, j]
      }
    }
    return widest
  }
  while (kept.size > size) {
    const [, i, j] = diameterWithout(-1)
    const withoutI = diameterWithout(i)[0]
    const withoutJ = diameterWithout(j)[0]
    kept.delete(withoutI < withoutJ ? i : j)
  }
  const selected = [...kept].sort((a, b) => a - b)
  return { selected, diameter: Math.max(0, diameterWithout(-1)[0]), method: 'greedy' }
}

/**
 * MDA (minimum-diameter averaging): the average of the (n−f)-subset of smallest diameter
 * (largest pairwise squared distance), found by exact enumeration with branch-and-bound (ties:
 * the smaller sum of pairwise squared distances, then the lexicographically first subset). When C(n, f) > maxSubsets (default 5,000,000) it refuses
 * with SubsetLimitError, or with `approximate: true` uses a greedy subset (use `mdaSelect` to
 * learn which). Bound: n ≥ 2f+1. Paper: El Mhamdi, Guerraoui, Rouault, "Distributed
 * Momentum for Byzantine-resilient Stochastic Gradient Descent", ICLR 2021.
 */
export function mda(inputs: readonly Float32Array[], options: MdaOptions): Float32Array {
  return meanOf(inputs, mdaSelect(inputs, options).selected)
}
