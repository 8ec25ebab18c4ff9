/**
 * The codes of `@phalanx/attacks`, one class per condition an attack refuses. Each carries the
 * values that explain it, so a caller (or a test) can tell what was wrong without parsing the
 * message. Vectors of the wrong length get `@phalanx/errors`'s `DimensionMismatchError`, with
 * the attack as its `source`.
 */
import { type Json, PhalanxError, type PhalanxErrorOptions, textOf, toJson } from '@phalanx/errors'

export { DimensionMismatchError } from '@phalanx/errors'

export const attackErrorCodes = [
  'no_honest_vectors',
  'invalid_attack_option',
  'alie_z_undefined',
  'probability_out_of_range',
] as const
export type AttackErrorCode = (typeof attackErrorCodes)[number]

/** An attack needs at least one honest vector to know the dimension and the statistics. */
export class NoHonestVectorsError extends PhalanxError<'no_honest_vectors', { attack: string }> {
  override readonly name = 'NoHonestVectorsError'
  declare readonly attack: string

  constructor(attack: string, options: PhalanxErrorOptions = {}) {
    super(
      'no_honest_vectors',
      { attack },
      { message: `${attack} needs at least one honest vector`, ...options },
    )
  }
}

/** An option is outside the values the attack is defined for. */
export class InvalidAttackOptionError extends PhalanxError<
  'invalid_attack_option',
  { attack: string; option: string; value: Json; expected: string }
> {
  override readonly name = 'InvalidAttackOptionError'
  declare readonly attack: string
  declare readonly option: string
  declare readonly value: Json
  declare readonly expected: string

  constructor(
    attack: string,
    values: { option: string; value: unknown; expected: string },
    options: PhalanxErrorOptions = {},
  ) {
    super(
      'invalid_attack_option',
      { attack, option: values.option, value: toJson(values.value), expected: values.expected },
      {
        message: `${attack}: option ${values.option} = ${textOf(values.value)}, expected ${values.expected}`,
        ...options,
      },
    )
  }
}

/**
 * ALIE's z = Φ⁻¹((n−s)/n) with s = ⌊n/2+1⌋−f is only finite when 0 < (n−s)/n < 1, i.e.
 * 0 < s < n. With f ≥ ⌊n/2+1⌋ the Byzantine workers already hold a majority and the formula
 * has no answer: the caller must give z explicitly.
 */
export class AlieZUndefinedError extends PhalanxError<
  'alie_z_undefined',
  { n: number; f: number; s: number }
> {
  override readonly name = 'AlieZUndefinedError'
  declare readonly n: number
  declare readonly f: number
  declare readonly s: number

  constructor(values: { n: number; f: number; s: number }, options: PhalanxErrorOptions = {}) {
    super('alie_z_undefined', values, {
      message: `alie: z = Φ⁻¹((n−s)/n) is undefined for n = ${values.n}, f = ${values.f} (s = ⌊n/2+1⌋−f = ${values.s}, needs 0 < s < n); pass z explicitly`,
      ...options,
    })
  }
}

/** Φ⁻¹(p) is only finite for 0 < p < 1. `p` is kept as JSON (a NaN as its text). */
export class ProbabilityOutOfRangeError extends PhalanxError<'probability_out_of_range', { p: Json }> {
  override readonly name = 'ProbabilityOutOfRangeError'
  declare readonly p: Json

  constructor(p: number, options: PhalanxErrorOptions = {}) {
    super(
      'probability_out_of_range',
      { p: toJson(p) },
      { message: `inverse normal CDF needs 0 < p < 1, got p = ${p}`, ...options },
    )
  }
}
