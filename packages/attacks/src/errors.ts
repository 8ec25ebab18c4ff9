/**
 * One named error per condition an attack refuses. Each carries the values that explain it,
 * so a caller (or a test) can tell what was wrong without parsing the message.
 */

/** An attack needs at least one honest vector to know the dimension and the statistics. */
export class NoHonestVectorsError extends Error {
  readonly attack: string

  constructor(attack: string, options?: { cause?: unknown }) {
    super(`${attack} needs at least one honest vector`, options)
    this.name = 'NoHonestVectorsError'
    this.attack = attack
  }
}

/** The honest vectors (or a given reference vector) do not all have the same length. */
export class DimensionMismatchError extends Error {
  readonly attack: string
  readonly expected: number
  readonly actual: number
  readonly index: number

  constructor(
    attack: string,
    values: { expected: number; actual: number; index: number },
    options?: { cause?: unknown },
  ) {
    super(
      `${attack}: vector ${values.index} has length ${values.actual}, expected ${values.expected}`,
      options,
    )
    this.name = 'DimensionMismatchError'
    this.attack = attack
    this.expected = values.expected
    this.actual = values.actual
    this.index = values.index
  }
}

/** An option is outside the values the attack is defined for. */
export class InvalidAttackOptionError extends Error {
  readonly attack: string
  readonly option: string
  readonly value: unknown
  readonly expected: string

  constructor(
    attack: string,
    values: { option: string; value: unknown; expected: string },
    options?: { cause?: unknown },
  ) {
    super(
      `${attack}: option ${values.option} = ${String(values.value)}, expected ${values.expected}`,
      options,
    )
    this.name = 'InvalidAttackOptionError'
    this.attack = attack
    this.option = values.option
    this.value = values.value
    this.expected = values.expected
  }
}

/**
 * ALIE's z = Φ⁻¹((n−s)/n) with s = ⌊n/2+1⌋−f is only finite when 0 < (n−s)/n < 1, i.e.
 * 0 < s < n. With f ≥ ⌊n/2+1⌋ the Byzantine workers already hold a majority and the formula
 * has no answer: the caller must give z explicitly.
 */
export class AlieZUndefinedError extends Error {
  readonly n: number
  readonly f: number
  readonly s: number

  constructor(values: { n: number; f: number; s: number }, options?: { cause?: unknown }) {
    super(
      `alie: z = Φ⁻¹((n−s)/n) is undefined for n = ${values.n}, f = ${values.f} (s = ⌊n/2+1⌋−f = ${values.s}, needs 0 < s < n); pass z explicitly`,
      options,
    )
    this.name = 'AlieZUndefinedError'
    this.n = values.n
    this.f = values.f
    this.s = values.s
  }
}

/** Φ⁻¹(p) is only finite for 0 < p < 1. */
export class ProbabilityOutOfRangeError extends Error {
  readonly p: number

  constructor(p: number, options?: { cause?: unknown }) {
    super(`inverse normal CDF needs 0 < p < 1, got p = ${p}`, options)
    this.name = 'ProbabilityOutOfRangeError'
    this.p = p
  }
}
