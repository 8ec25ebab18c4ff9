/**
 * The one place inputs and options are checked, shared by every rule and pre-aggregator, so a
 * bad call gets the same named error whichever rule it reaches.
 */
import {
  BoundError,
  DimensionMismatchError,
  EmptyInputError,
  InvalidOptionError,
  NonFiniteInputError,
} from './errors.js'

/** A rule's bound on (n, f), as a predicate and as the text its BoundError shows. */
export interface Bound {
  readonly holds: (n: number, f: number) => boolean
  readonly text: string
}

export const bounds = {
  any: { holds: (n: number) => n >= 1, text: 'n ≥ 1' },
  majority: { holds: (n: number, f: number) => n >= 2 * f + 1, text: 'n ≥ 2f+1' },
  krum: { holds: (n: number, f: number) => n >= 2 * f + 3, text: 'n ≥ 2f+3' },
  bulyan: { holds: (n: number, f: number) => n >= 4 * f + 3, text: 'n ≥ 4f+3' },
  /** NNM averages n−f neighbours and ARC clips ⌊2(f/n)(n−f)⌋ inputs: both need f < n. */
  fewerThanN: { holds: (n: number, f: number) => n >= f + 1, text: 'n ≥ f+1' },
} as const satisfies Record<string, Bound>

/** Checks that inputs are non-empty and of one dimension; returns n and d. */
export function checkShape(rule: string, inputs: readonly Float32Array[]): { n: number; d: number } {
  if (inputs.length === 0) throw new EmptyInputError(rule, 'no inputs')
  const d = inputs[0]!.length
  if (d === 0) throw new EmptyInputError(rule, 'zero dimension')
  for (let i = 1; i < inputs.length; i++) {
    const length = inputs[i]!.length
    if (length !== d)
      throw new DimensionMismatchError({ source: rule, index: i, expected: d, actual: length })
  }
  return { n: inputs.length, d }
}

/** Throws NonFiniteInputError for the first NaN/±Inf in input order (index, then coordinate). */
export function checkFinite(
  rule: string,
  inputs: readonly Float32Array[],
  from = 0,
  to = Number.POSITIVE_INFINITY,
): void {
  for (let i = 0; i < inputs.length; i++) {
    const x = inputs[i]!
    const end = Math.min(to, x.length)
    for (let k = from; k < end; k++) {
      const v = x[k]!
      // v − v is NaN exactly when v is NaN or ±Inf; one subtraction beats two library calls.
      if (v - v !== 0) throw new NonFiniteInputError(rule, i, k, v)
    }
  }
}

/** Validates an integer option within [min, max]. */
export function integerOption(
  rule: string,
  option: string,
  value: unknown,
  min: number,
  max: number,
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const allowed =
      max === Number.POSITIVE_INFINITY ? `an integer ≥ ${min}` : `an integer in [${min}, ${max}]`
    throw new InvalidOptionError(rule, option, value, allowed)
  }
  return value
}

/** Validates a finite number option strictly above `above` (or ≥ when `inclusive`). */
export function numberOption(
  rule: string,
  option: string,
  value: unknown,
  above: number,
  inclusive = false,
): number {
  const ok =
    typeof value === 'number' && Number.isFinite(value) && (inclusive ? value >= above : value > above)
  if (!ok)
    throw new InvalidOptionError(rule, option, value, `a finite number ${inclusive ? '≥' : '>'} ${above}`)
  return value as number
}

/** Reads f (default 0 when the rule does not need it), checks it is an integer ≥ 0. */
export function readF(rule: string, options: { readonly f?: number } | undefined, required: boolean): number {
  const f = options?.f
  if (f === undefined) {
    if (required) throw new InvalidOptionError(rule, 'f', f, 'an integer ≥ 0 (required)')
    return 0
  }
  return integerOption(rule, 'f', f, 0, Number.POSITIVE_INFINITY)
}

export function checkBound(rule: string, n: number, f: number, bound: Bound): void {
  if (!bound.holds(n, f)) throw new BoundError(rule, n, f, bound.text)
}

/** Validates an optional start vector against dimension d and copies it into a Float64Array. */
export function startVector(rule: string, start: Float32Array | undefined, d: number): Float64Array {
  const out = new Float64Array(d)
  if (start === undefined) return out
  if (start.length !== d)
    throw new DimensionMismatchError({ source: rule, index: -1, expected: d, actual: start.length })
  for (let k = 0; k < d; k++) {
    const v = start[k]!
    if (v - v !== 0) throw new InvalidOptionError(rule, 'start', `non-finite at ${k}`, 'a finite vector')
    out[k] = v
  }
  return out
}

export interface Prepared {
  readonly n: number
  readonly d: number
  readonly f: number
}

/**
 * The checks every rule runs first, in this order: shape, f, bound, finiteness. Kernels that
 * scan their inputs anyway (the tiled WASM passes) check finiteness themselves and pass
 * `finite: 'caller'` so the data is read once.
 */
export function prepare(
  rule: string,
  inputs: readonly Float32Array[],
  options: { readonly f?: number } | undefined,
  bound: Bound,
  settings: { readonly fRequired: boolean; readonly finite?: 'here' | 'caller' },
): Prepared {
  const { n, d } = checkShape(rule, inputs)
  const f = readF(rule, options, settings.fRequired)
  checkBound(rule, n, f, bound)
  if (settings.finite !== 'caller') checkFinite(rule, inputs)
  return { n, d, f }
}
