/**
 * The codes of `@phalanx/aggregation`, with one class per condition. Every error carries the
 * values that explain it, so a caller (a server refusing to start, a test) can act on fields
 * instead of parsing messages. The dimension check's error is `@phalanx/errors`'s
 * `DimensionMismatchError`, shared with the attacks and the data plane.
 */
import { PhalanxError, type PhalanxErrorOptions, textOf, toJson } from '@phalanx/errors'

export { DimensionMismatchError } from '@phalanx/errors'

export const aggregationErrorCodes = [
  'bound_violated',
  'empty_input',
  'non_finite_input',
  'invalid_option',
  'subset_limit',
  'unknown_worker',
  /** A worker thread of `@phalanx/aggregation/parallel` failed with an error that is not one of these. */
  'worker_failed',
] as const
export type AggregationErrorCode = (typeof aggregationErrorCodes)[number]

/** The call is outside the rule's bound on n and f (e.g. Krum with n < 2f+3). */
export class BoundError extends PhalanxError<
  'bound_violated',
  { rule: string; n: number; f: number; bound: string }
> {
  override readonly name = 'BoundError'
  declare readonly rule: string
  declare readonly n: number
  declare readonly f: number
  /** The bound as text, e.g. 'n ≥ 2f+3'. */
  declare readonly bound: string

  constructor(rule: string, n: number, f: number, bound: string, init: PhalanxErrorOptions = {}) {
    super(
      'bound_violated',
      { rule, n, f, bound },
      { message: `${rule} needs ${bound} (n=${n}, f=${f})`, ...init },
    )
  }
}

/** No input vectors at all, or vectors of dimension 0. */
export class EmptyInputError extends PhalanxError<
  'empty_input',
  { rule: string; what: 'no inputs' | 'zero dimension' }
> {
  override readonly name = 'EmptyInputError'
  declare readonly rule: string
  declare readonly what: 'no inputs' | 'zero dimension'

  constructor(rule: string, what: 'no inputs' | 'zero dimension', init: PhalanxErrorOptions = {}) {
    super(
      'empty_input',
      { rule, what },
      {
        message: `${rule}: ${what === 'no inputs' ? 'no input vectors' : 'input vectors have dimension 0'}`,
        ...init,
      },
    )
  }
}

/**
 * Input `index` holds NaN or ±Infinity at `coordinate`. `value` is its text (`NaN`, `Infinity`,
 * `-Infinity`): JSON has no non-finite numbers.
 */
export class NonFiniteInputError extends PhalanxError<
  'non_finite_input',
  { rule: string; index: number; coordinate: number; value: string }
> {
  override readonly name = 'NonFiniteInputError'
  declare readonly rule: string
  declare readonly index: number
  declare readonly coordinate: number
  declare readonly value: string

  constructor(
    rule: string,
    index: number,
    coordinate: number,
    value: number,
    init: PhalanxErrorOptions = {},
  ) {
    super(
      'non_finite_input',
      { rule, index, coordinate, value: String(value) },
      {
        message: `${rule}: input ${index} has non-finite value ${value} at coordinate ${coordinate}`,
        ...init,
      },
    )
  }
}

/** An option has a value outside what the rule allows (f < 0, non-integer f, m > n, ν ≤ 0, …). */
export class InvalidOptionError extends PhalanxError<
  'invalid_option',
  { rule: string; option: string; value: ReturnType<typeof toJson>; allowed: string }
> {
  override readonly name = 'InvalidOptionError'
  declare readonly rule: string
  declare readonly option: string
  declare readonly value: ReturnType<typeof toJson>
  /** What is allowed, as text, e.g. 'an integer ≥ 0'. */
  declare readonly allowed: string

  constructor(rule: string, option: string, value: unknown, allowed: string, init: PhalanxErrorOptions = {}) {
    super(
      'invalid_option',
      { rule, option, value: toJson(value), allowed },
      { message: `${rule}: option ${option}=${textOf(value)} is invalid; allowed: ${allowed}`, ...init },
    )
  }
}

/** MDA would have to enumerate more subsets than `maxSubsets` and approximation was not asked for. */
export class SubsetLimitError extends PhalanxError<
  'subset_limit',
  { rule: string; n: number; f: number; subsets: number; maxSubsets: number }
> {
  override readonly name = 'SubsetLimitError'
  declare readonly rule: string
  declare readonly n: number
  declare readonly f: number
  declare readonly subsets: number
  declare readonly maxSubsets: number

  constructor(
    rule: string,
    n: number,
    f: number,
    subsets: number,
    maxSubsets: number,
    init: PhalanxErrorOptions = {},
  ) {
    super(
      'subset_limit',
      { rule, n, f, subsets, maxSubsets },
      {
        message:
          `${rule}: exact enumeration needs C(${n}, ${f}) = ${subsets} subsets, over maxSubsets=${maxSubsets}; ` +
          'raise maxSubsets or pass approximate: true',
        ...init,
      },
    )
  }
}

/** A worker id outside 0..n−1 given to Kardam: the caller's mapping from peers to ids is wrong. */
export class UnknownWorkerError extends PhalanxError<'unknown_worker', { worker: number; n: number }> {
  override readonly name = 'UnknownWorkerError'
  declare readonly worker: number
  declare readonly n: number

  constructor(worker: number, n: number, init: PhalanxErrorOptions = {}) {
    super(
      'unknown_worker',
      { worker, n },
      { message: `kardam: worker id ${worker} is not in 0..${n - 1}`, ...init },
    )
  }
}
