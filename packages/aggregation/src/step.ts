/**
 * The optimiser step every trainer of the project takes: the single-process reference
 * (`@phalanx/lab`'s trainer), the protocol's servers and the SMR replicas (`@phalanx/node`),
 * and the worker momentum they share. Written once so that "the single process is the
 * reference" holds by construction: the same float operations in the same order everywhere.
 *
 * Both functions compute each coordinate in float64 (JavaScript numbers) and round it once to
 * float32 when it is stored, and neither mutates its inputs.
 */
import { DimensionMismatchError } from './errors.js'

function checkSameLength(rule: string, a: Float32Array, b: Float32Array): void {
  if (a.length !== b.length)
    throw new DimensionMismatchError({ source: rule, index: 1, expected: a.length, actual: b.length })
}

/**
 * One SGD step, as a new vector: θ′_i = fround(θ_i − η · g_i) for every coordinate i.
 *
 * The product η · g_i is taken first and subtracted from θ_i (one float64 expression, one
 * rounding), the order the servers, replicas and reference trainer have always used, so their
 * figures do not move.
 */
export function sgdStep(params: Float32Array, gradient: Float32Array, learningRate: number): Float32Array {
  checkSameLength('sgdStep', params, gradient)
  const next = new Float32Array(params.length)
  for (let i = 0; i < next.length; i++) next[i] = params[i]! - learningRate * gradient[i]!
  return next
}

/**
 * One step of worker momentum (Karimireddy et al. 2021, "Learning from history"), as a new
 * vector: m′_i = fround(β · m_i + (1 − β) · g_i), with m′ = g (a copy) when there is no previous
 * m yet — the first round starts from m = g, not from 0, so early steps are not shrunk by
 * (1 − β). With β = 0 it is g again (for a finite m): plain SGD.
 */
export function momentumStep(
  previous: Float32Array | undefined,
  gradient: Float32Array,
  beta: number,
): Float32Array {
  if (previous === undefined) return gradient.slice()
  checkSameLength('momentumStep', previous, gradient)
  const next = new Float32Array(gradient.length)
  for (let i = 0; i < next.length; i++) next[i] = beta * previous[i]! + (1 - beta) * gradient[i]!
  return next
}
