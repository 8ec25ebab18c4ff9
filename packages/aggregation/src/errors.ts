/**
 * One named error class per condition. Every error carries the values that explain it, so a
 * caller (a server refusing to start, a test) can act on fields instead of parsing messages.
 */

interface ErrorInit {
  readonly cause?: unknown
}

/** The call is outside the rule's bound on n and f (e.g. Krum with n < 2f+3). */
export class BoundError extends Error {
  override readonly name = 'BoundError'
  readonly rule: string
  readonly n: number
  readonly f: number
  /** The bound as text, e.g. 'n ≥ 2f+3'. */
  readonly bound: string

  constructor(rule: string, n: number, f: number, bound: string, init: ErrorInit = {}) {
    super(`${rule} needs ${bound} (n=${n}, f=${f})`, init)
    this.rule = rule
    this.n = n
    this.f = f
    this.bound = bound
  }
}

/** No input vectors at all, or vectors of dimension 0. */
export class EmptyInputError extends Error {
  override readonly name = 'EmptyInputError'
  readonly rule: string
  readonly what: 'no inputs' | 'zero dimension'

  constructor(rule: string, what: 'no inputs' | 'zero dimension', init: ErrorInit = {}) {
    super(`${rule}: ${what === 'no inputs' ? 'no input vectors' : 'input vectors have dimension 0'}`, init)
    this.rule = rule
    this.what = what
  }
}

/** Input `index` has a different length from input 0 (index −1: the `start` option's vector). */
export class DimensionMismatchError extends Error {
  override readonly name = 'DimensionMismatchError'
  readonly rule: string
  readonly index: number
  readonly expected: number
  readonly actual: number

  constructor(rule: string, index: number, expected: number, actual: number, init: ErrorInit = {}) {
    super(`${rule}: input ${index} has dimension ${actual}, expected ${expected}`, init)
    this.rule = rule
    this.index = index
    this.expected = expected
    this.actual = actual
  }
}

/** Input `index` holds NaN or ±Infinity at `coordinate`. */
export class NonFiniteInputError extends Error {
  override readonly name = 'NonFiniteInputError'
  readonly rule: string
  readonly index: number
  readonly coordinate: number
  readonly value: number

  constructor(rule: string, index: number, coordinate: number, value: number, init: ErrorInit = {}) {
    super(`${rule}: input ${index} has non-finite value ${value} at coordinate ${coordinate}`, init)
    this.rule = rule
    this.index = index
    this.coordinate = coordinate
    this.value = value
  }
}

/** An option has a value outside what the rule allows (f < 0, non-integer f, m > n, ν ≤ 0, …). */
export class InvalidOptionError extends Error {
  override readonly name = 'InvalidOptionError'
  readonly rule: string
  readonly option: string
  readonly value: unknown
  /** What is allowed, as text, e.g. 'an integer ≥ 0'. */
  readonly allowed: string

  constructor(rule: string, option: string, value: unknown, allowed: string, init: ErrorInit = {}) {
    super(`${rule}: option ${option}=${String(value)} is invalid; allowed: ${allowed}`, init)
    this.rule = rule
    this.option = option
    this.value = value
    this.allowed = allowed
  }
}

/** MDA would have to enumerate more subsets than `maxSubsets` and approximation was not asked for. */
export class SubsetLimitError extends Error {
  override readonly name = 'SubsetLimitError'
  readonly rule: string
  readonly n: number
  readonly f: number
  readonly subsets: number
  readonly maxSubsets: number

  constructor(rule: string, n: number, f: number, subsets: number, maxSubsets: number, init: ErrorInit = {}) {
    super(
      `${rule}: exact enumeration needs C(${n}, ${f}) = ${subsets} subsets, over maxSubsets=${maxSubsets}; ` +
        'raise maxSubsets or pass approximate: true',
      init,
    )
    this.rule = rule
    this.n = n
    this.f = f
    this.subsets = subsets
    this.maxSubsets = maxSubsets
  }
}
