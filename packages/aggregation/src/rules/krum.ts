import { coordinatewise } from '../coordinatewise.js'
import { type DistanceMatrix, pairwiseSquaredDistances } from '../distances.js'
import type { BulyanOptions, KrumOptions, MultiKrumOptions } from '../options.js'
import { bounds, integerOption, prepare } from '../validate.js'
import { meanOf } from '../vector.js'

/** Which input Krum picked, and every input's score (for logs and for servers' metrics). */
export interface KrumSelection {
  readonly index: number
  /** score(i) = Σ of the squared distances from x_i to its n−f−2 nearest other inputs. */
  readonly scores: Float64Array
}

/**
 * Krum scores of `candidates` (indices into the matrix): for each, the sum of its `neighbours`
 * smallest squared distances to the other candidates.
 */
export function krumScores(
  distances: DistanceMatrix,
  candidates: readonly number[],
  neighbours: number,
): Float64Array {
  const scores = new Float64Array(candidates.length)
  const others = new Float64Array(candidates.length - 1)
  for (let a = 0; a < candidates.length; a++) {
    const i = candidates[a]!
    let count = 0
    for (const j of candidates) if (j !== i) others[count++] = distances.values[i * distances.n + j]!
    others.sort()
    let score = 0
    for (let t = 0; t < neighbours; t++) score += others[t]!
    scores[a] = score
  }
  return scores
}

/** Position of the lowest score; ties go to the first (candidates are kept in index order). */
function lowest(scores: Float64Array): number {
  let best = 0
  for (let a = 1; a < scores.length; a++) if (scores[a]! < scores[best]!) best = a
  return best
}

/** Krum's choice and scores, without copying the chosen input. Same checks and bound as `krum`. */
export function krumSelect(inputs: readonly Float32Array[], options: KrumOptions): KrumSelection {
  const { f } = prepare('krum', inputs, options, bounds.krum, { fRequired: true, finite: 'caller' })
  return krumFromDistances(pairwiseSquaredDistances(inputs, 'krum'), f)
}

/** Krum's choice from a distance matrix (shared with the worker-thread variant). */
export function krumFromDistances(distances: DistanceMatrix, f: number): KrumSelection {
  const all = Array.from({ length: distances.n }, (_, i) => i)
  const scores = krumScores(distances, all, distances.n - f - 2)
  return { index: lowest(scores), scores }
}

/**
 * Krum: score(i) = Σ of the squared distances from x_i to its n−f−2 nearest other inputs;
 * the output is a copy of the input of lowest score (lowest index on ties). Distances come
 * from one Gram matrix. Bound: n ≥ 2f+3. Paper: Blanchard, El Mhamdi, Guerraoui, Stainer,
 * "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.
 */
export function krum(inputs: readonly Float32Array[], options: KrumOptions): Float32Array {
  const { index } = krumSelect(inputs, options)
  return inputs[index]!.slice()
}

/**
 * Multi-Krum(m): the average of the m inputs of lowest Krum score (scores computed once, ties
 * by lower index); m defaults to n − f. Bound: n ≥ 2f+3 and 1 ≤ m ≤ n. Paper: Blanchard et
 * al., NeurIPS 2017 (as Krum).
 */
export function multiKrum(inputs: readonly Float32Array[], options: MultiKrumOptions): Float32Array {
  const { n, f } = prepare('multiKrum', inputs, options, bounds.krum, { fRequired: true, finite: 'caller' })
  const m = options.m === undefined ? n - f : integerOption('multiKrum', 'm', options.m, 1, n)
  return meanOf(inputs, multiKrumSelect(pairwiseSquaredDistances(inputs, 'multiKrum'), f, m))
}

/** The m inputs of lowest Krum score, ties by lower index. */
export function multiKrumSelect(distances: DistanceMatrix, f: number, m: number): number[] {
  const all = Array.from({ length: distances.n }, (_, i) => i)
  const scores = krumScores(distances, all, distances.n - f - 2)
  return all.sort((a, b) => scores[a]! - scores[b]! || a - b).slice(0, m)
}

/**
 * Bulyan's selection: Krum θ = n − 2f times on the remaining inputs, removing each pick. The
 * k-th run scores with max(1, r − f − 2) neighbours, r the number remaining: the last runs see
 * fewer than 2f+3 inputs, where Krum's own n−f−2 would fall to zero or below. Ties: lowest index.
 */
export function bulyanSelect(distances: DistanceMatrix, f: number): number[] {
  const n = distances.n
  const remaining = Array.from({ length: n }, (_, i) => i)
  const selected: number[] = []
  for (let t = 0; t < n - 2 * f; t++) {
    const neighbours = Math.min(remaining.length - 1, Math.max(1, remaining.length - f - 2))
    const pick = lowest(krumScores(distances, remaining, neighbours))
    selected.push(remaining[pick]!)
    remaining.splice(pick, 1)
  }
  return selected
}

/**
 * Bulyan: select θ = n − 2f inputs by iterated Krum (see `bulyanSelect`; the distance matrix
 * is computed once and only re-scored), then per coordinate average the β = θ − 2f selected
 * values closest to the median of the θ selected ones (the smaller value kept on ties).
 * Bound: n ≥ 4f+3. Paper: El Mhamdi, Guerraoui, Rouault, "The Hidden Vulnerability of
 * Distributed Learning in Byzantium", ICML 2018.
 */
export function bulyan(inputs: readonly Float32Array[], options: BulyanOptions): Float32Array {
  const { f } = prepare('bulyan', inputs, options, bounds.bulyan, { fRequired: true, finite: 'caller' })
  const distances = pairwiseSquaredDistances(inputs, 'bulyan')
  const selected = bulyanSelect(distances, f).map((i) => inputs[i]!)
  return coordinatewise(selected, { kind: 'closest', drop: 2 * f })
}
