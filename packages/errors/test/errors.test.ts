import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { fromJSON, isPhalanxError, type Json, PhalanxError, textOf, toJson } from '../src/index.js'

class RoundError extends PhalanxError<'round_late' | 'round_early', { round: number; sender: string }> {
  override readonly name = 'RoundError'
  declare readonly round: number
  declare readonly sender: string
}

const json = fc.jsonValue() as fc.Arbitrary<Json>
const details = fc.dictionary(fc.string(), json) as fc.Arbitrary<Record<string, Json>>

describe('PhalanxError', () => {
  it('keeps code and details through JSON, for any JSON details', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), details, (code, values) => {
        const error = new PhalanxError(code, values)
        const copy = JSON.parse(JSON.stringify(error))
        expect(copy.code).toBe(code)
        expect(copy.details).toEqual(error.details)
        // What it holds is what it was given, but for −0, which JSON cannot keep.
        expect(error.details).toEqual(JSON.parse(JSON.stringify(values)))
      }),
    )
  })

  it('stores −0 in its details as 0, the number JSON gives back', () => {
    const error = new PhalanxError('c', { x: -0, list: [-0, 1], nested: { y: -0 } })
    expect(Object.is(error.details.x, 0)).toBe(true)
    expect(error.details).toEqual({ x: 0, list: [0, 1], nested: { y: 0 } })
  })

  it('builds its message from code and details unless given one', () => {
    expect(new PhalanxError('quorum_timeout', { round: 3, kind: 'model' }).message).toBe(
      'quorum_timeout (round=3, kind=model)',
    )
    expect(new PhalanxError('empty', {}).message).toBe('empty')
    expect(new PhalanxError('x', { a: 1 }, { message: 'for people' }).message).toBe('for people')
  })

  it('sets the details as its own properties, and the subclass its name', () => {
    const error = new RoundError('round_late', { round: 4, sender: 's1' })
    expect(error).toMatchObject({ name: 'RoundError', code: 'round_late', round: 4, sender: 's1' })
    expect(error.details).toEqual({ round: 4, sender: 's1' })
    expect(error).toBeInstanceOf(Error)
  })

  it('does not let a detail shadow a property of the error', () => {
    const error = new PhalanxError('c', { message: 'detail', code: 'other', name: 'n' })
    expect(error.message).not.toBe('detail')
    expect(error.code).toBe('c')
    expect(error.details.code).toBe('other')
  })

  it('keeps its cause, and serialises it', () => {
    const inner = new PhalanxError('inner', { n: 1 })
    const outer = new PhalanxError('outer', {}, { cause: inner })
    expect(outer.cause).toBe(inner)
    expect(JSON.parse(JSON.stringify(outer)).cause).toMatchObject({ code: 'inner', details: { n: 1 } })
    const plain = new PhalanxError('outer', {}, { cause: new TypeError('bad') })
    expect(plain.toJSON().cause).toEqual({ name: 'TypeError', message: 'bad' })
    expect('cause' in new PhalanxError('none', {}).toJSON()).toBe(false)
  })

  it('is rebuilt from its JSON with name, code, details and message', () => {
    const error = new RoundError('round_early', { round: 9, sender: 'w2' }, { message: 'early' })
    const rebuilt = fromJSON(JSON.parse(JSON.stringify(error)))
    expect(rebuilt).toMatchObject({ name: 'RoundError', code: 'round_early', message: 'early', round: 9 })
    expect(isPhalanxError(rebuilt, 'round_early')).toBe(true)
  })
})

describe('isPhalanxError', () => {
  it.each<{ name: string; error: unknown; code?: string | string[]; expected: boolean }>([
    { name: 'any code', error: new PhalanxError('a', {}), expected: true },
    { name: 'its code', error: new PhalanxError('a', {}), code: 'a', expected: true },
    { name: 'another code', error: new PhalanxError('a', {}), code: 'b', expected: false },
    { name: 'one of its codes', error: new PhalanxError('a', {}), code: ['b', 'a'], expected: true },
    { name: 'none of its codes', error: new PhalanxError('a', {}), code: ['b', 'c'], expected: false },
    // The reason this guard exists: a plain error that only looks like one is not one.
    {
      name: 'a look-alike by name',
      error: Object.assign(new Error('x'), { name: 'PhalanxError', code: 'a' }),
      code: 'a',
      expected: false,
    },
    { name: 'not an error', error: { code: 'a' }, code: 'a', expected: false },
    // What the brand is for: an error from another copy of this module (a dist beside the source).
    {
      name: 'one from another copy of the module',
      error: Object.assign(new Error('x'), { code: 'a', [Symbol.for('@phalanx/errors.PhalanxError')]: true }),
      code: 'a',
      expected: true,
    },
    { name: 'undefined', error: undefined, expected: false },
  ])('$name', ({ error, code, expected }) => {
    expect(code === undefined ? isPhalanxError(error) : isPhalanxError(error, code)).toBe(expected)
  })
})

describe('toJson', () => {
  it.each<[string, unknown, Json]>([
    ['a finite number', 1.5, 1.5],
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['undefined', undefined, null],
    ['a bigint', 10n, '10'],
    ['an array', [1, undefined, 'a'], [1, null, 'a']],
    // biome-ignore lint/suspicious/noSparseArray: the hole is the case
    ['a sparse array', [1, , 2], [1, null, 2]],
    ['an object', { a: Number.NEGATIVE_INFINITY, b: { c: true } }, { a: '-Infinity', b: { c: true } }],
    ['a typed array', new Float32Array(2), 'Float32Array(8 bytes)'],
    ['an error', new RangeError('r'), { name: 'RangeError', message: 'r' }],
  ])('%s', (_name, value, expected) => {
    expect(toJson(value)).toEqual(expected)
  })

  it('gives what JSON gives back unchanged, for any value', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const converted = toJson(value)
        expect(JSON.parse(JSON.stringify(converted))).toEqual(converted)
      }),
    )
  })
})

describe('textOf', () => {
  it.each<[string, unknown, string]>([
    ['a number', 1.5, '1.5'],
    ['NaN', Number.NaN, 'NaN'],
    ['an array', [1, 2], '1,2'],
    ['an object whose toString is not a function', { toString: 1 }, '{"toString":1}'],
  ])('%s', (_name, value, expected) => {
    expect(textOf(value)).toBe(expected)
  })

  it('never throws, for any value', () => {
    fc.assert(fc.property(fc.anything(), (value) => typeof textOf(value) === 'string'))
  })
})
