import { InvalidAttackOptionError } from './errors.js'

/** Option checks shared by the attacks; each throws InvalidAttackOptionError naming the option. */

export function requireFinite(attack: string, option: string, value: number): void {
  if (!Number.isFinite(value)) {
    throw new InvalidAttackOptionError(attack, { option, value, expected: 'a finite number' })
  }
}

export function requireNonNegative(attack: string, option: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new InvalidAttackOptionError(attack, { option, value, expected: 'a finite number ≥ 0' })
  }
}

export function requireCount(attack: string, option: string, value: number, minimum = 0): void {
  if (!(Number.isInteger(value) && value >= minimum)) {
    throw new InvalidAttackOptionError(attack, { option, value, expected: `an integer ≥ ${minimum}` })
  }
}

export function requireIndex(attack: string, option: string, value: number, length: number): void {
  if (!(Number.isInteger(value) && value >= 0 && value < length)) {
    throw new InvalidAttackOptionError(attack, {
      option,
      value,
      expected: `an integer in [0, ${length - 1}]`,
    })
  }
}
