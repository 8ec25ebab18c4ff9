import { l2Distance } from '@phalanx/aggregation'
import { AlieZUndefinedError, InvalidAttackOptionError } from './errors.js'
import { requireCount, requireFinite } from './options.js'
import type { LineSearchOptions, LineSearchResult, OptimalAlieOptions, OptimalIpmOptions } from './types.js'
import { dimensionOf, meanOf } from './vectors.js'
import { alieZ, honestSpread, shiftedMean } from './worker.js'

/** Defaults of the line search, in one place. */
const LINE_SEARCH_DEFAULTS = {
  // z beyond ~10 std (or ε beyond 10× the mean) is far outside anything a distance- or
  // rank-based rule keeps, so the objective is flat there; a bounded interval keeps the
  // search deterministic and its cost known.
  range: [0, 10] as const,
  // A grid of ~12 points plus ~11 golden-section steps: the bracket shrinks by 0.618^11 ≈ 0.5%
  // of a grid cell, finer than the objective of any rule here changes meaningfully.
  budget: 24,
  // The IPM paper's (Xie et al.) small ε that keeps the inner product with the true gradient
  // negative without being an outlier.
  ipmStart: 0.1,
  // Used only when ALIE's z formula is undefined (Byzantine majority).
  alieFallbackStart: 1,
}

const GOLDEN = (Math.sqrt(5) - 1) / 2

/** One scalar attack parameter → attack vector. */
type ScaledAttack = (scale: number) => Float32Array

/**
 * Maximises ‖rule(honest ∪ f copies of attack(s)) − mean(honest)‖₂ over the scale s:
 * evaluate `start`, then an even grid over `range`, then golden-section search in the grid
 * cell pair around the best grid point. The objective of robust rules is often a step
 * function of s (Krum flips from an honest pick to the attack), so the grid comes first and
 * golden section only refines. Deterministic; never calls the rule more than `budget` times;
 * returns the best scale seen, so never worse than `start`.
 */
function lineSearch(
  attackName: string,
  honest: readonly Float32Array[],
  attack: ScaledAttack,
  start: number,
  options: LineSearchOptions,
): LineSearchResult {
  const d = dimensionOf(attackName, honest)
  requireCount(attackName, 'f', options.f)
  requireFinite(attackName, 'start', start)
  const [low, high] = options.range ?? LINE_SEARCH_DEFAULTS.range
  if (!(Number.isFinite(low) && Number.isFinite(high) && low <= high)) {
    throw new InvalidAttackOptionError(attackName, {
      option: 'range',
      value: `[${low}, ${high}]`,
      expected: 'finite low ≤ high',
    })
  }
  const budget = options.budget ?? LINE_SEARCH_DEFAULTS.budget
  requireCount(attackName, 'budget', budget, 1)

  const honestMean = meanOf(honest, d)
  let evaluations = 0
  let bestScale = start
  let bestObjective = Number.NEGATIVE_INFINITY
  let bestVector: Float32Array | undefined
  const evaluate = (scale: number): number => {
    const vector = attack(scale)
    const inputs = [...honest]
    for (let i = 0; i < options.f; i++) inputs.push(vector)
    const objective = l2Distance(options.rule(inputs, { f: options.f }), honestMean)
    evaluations++
    // Strictly greater: on ties the earlier point (the start first) wins.
    if (objective > bestObjective || bestVector === undefined) {
      bestObjective = objective
      bestScale = scale
      bestVector = vector
    }
    return objective
  }

  const startObjective = evaluate(start)
  const remaining = budget - 1
  const gridSize = Math.min(remaining, Math.max(2, Math.ceil(remaining / 2)))
  const grid: number[] = []
  const gridValues: number[] = []
  for (let k = 0; k < gridSize; k++) {
    const scale = gridSize === 1 ? (low + high) / 2 : low + ((high - low) * k) / (gridSize - 1)
    grid.push(scale)
    gridValues.push(evaluate(scale))
  }

  let refinements = remaining - gridSize
  if (refinements >= 2 && gridSize >= 2) {
    let bestGrid = 0
    for (let k = 1; k < gridSize; k++) if (gridValues[k]! > gridValues[bestGrid]!) bestGrid = k
    let a = grid[Math.max(0, bestGrid - 1)]!
    let b = grid[Math.min(gridSize - 1, bestGrid + 1)]!
    let x1 = b - GOLDEN * (b - a)
    let x2 = a + GOLDEN * (b - a)
    let y1 = evaluate(x1)
    let y2 = evaluate(x2)
    refinements -= 2
    while (refinements > 0) {
      if (y1 >= y2) {
        b = x2
        x2 = x1
        y2 = y1
        x1 = b - GOLDEN * (b - a)
        y1 = evaluate(x1)
      } else {
        a = x1
        x1 = x2
        y1 = y2
        x2 = a + GOLDEN * (b - a)
        y2 = evaluate(x2)
      }
      refinements--
    }
  }

  return { vector: bestVector!, scale: bestScale, objective: bestObjective, startObjective, evaluations }
}

/**
 * ALIE with z chosen by line search against `rule` (ByzFL's "optimal ALIE"): the z in
 * `range` that moves the rule's output farthest from the honest mean.
 */
export function optimalAlie(honest: readonly Float32Array[], options: OptimalAlieOptions): LineSearchResult {
  const d = dimensionOf('optimalAlie', honest)
  requireCount('optimalAlie', 'f', options.f)
  const n = options.n ?? honest.length + options.f
  const start = options.start ?? defaultAlieStart(n, options.f)
  const spread = honestSpread(honest, d)
  return lineSearch('optimalAlie', honest, (z) => shiftedMean(spread, z), start, options)
}

function defaultAlieStart(n: number, f: number): number {
  try {
    return alieZ(n, f)
  } catch (error) {
    if (error instanceof AlieZUndefinedError) return LINE_SEARCH_DEFAULTS.alieFallbackStart
    throw error
  }
}

/** IPM with ε chosen by line search against `rule` (ByzFL's "optimal IPM"). */
export function optimalIpm(honest: readonly Float32Array[], options: OptimalIpmOptions): LineSearchResult {
  const d = dimensionOf('optimalIpm', honest)
  const start = options.start ?? LINE_SEARCH_DEFAULTS.ipmStart
  const mean = meanOf(honest, d)
  const flipped = (epsilon: number): Float32Array => {
    const out = new Float32Array(d)
    for (let j = 0; j < d; j++) out[j] = -epsilon * mean[j]!
    return out
  }
  return lineSearch('optimalIpm', honest, flipped, start, options)
}
