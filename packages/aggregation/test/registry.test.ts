import { describe, expect, expectTypeOf, it } from 'vitest'
import {
  type Aggregate,
  compose,
  isPreAggregatorName,
  isRuleName,
  type KrumOptions,
  krum,
  type MultiKrumOptions,
  median,
  nnm,
  preAggregatorNames,
  preAggregatorSettings,
  preAggregators,
  type RuleEntry,
  ruleNames,
  rules,
} from '../src/index.js'

const v = (...rows: number[][]): Float32Array[] => rows.map((row) => Float32Array.from(row))

describe('registry', () => {
  // The list of the names is in rules.test.ts, beside each rule's hand-computed cases, so that
  // a new rule's test is one file.
  it('names each entry as its key, with bound text and paper', () => {
    for (const name of ruleNames) {
      expect(rules[name].name).toBe(name)
      expect(rules[name].boundText).toMatch(/^n ≥/)
      expect(rules[name].paper.length).toBeGreaterThan(0)
      // What a server runs it with: every rule is told the f it must tolerate.
      expect(rules[name].options({ f: 2 })).toMatchObject({ f: 2 })
    }
  })

  it.each([
    ['krum', 7, 2, true],
    ['krum', 6, 2, false],
    ['bulyan', 11, 2, true],
    ['bulyan', 10, 2, false],
    ['median', 5, 2, true],
    ['median', 4, 2, false],
    ['mda', 5, 2, true],
    ['average', 1, 5, true],
    ['centeredClipping', 1, 3, true],
  ] as const)('rules.%s.bound(%d, %d) = %s', (name, n, f, holds) => {
    expect(rules[name].bound(n, f)).toBe(holds)
  })

  it('isRuleName / isPreAggregatorName guard config strings', () => {
    expect(isRuleName('krum')).toBe(true)
    expect(isRuleName('toString')).toBe(false)
    expect(isRuleName('nnm')).toBe(false)
    expect(isPreAggregatorName('nnm')).toBe(true)
    expect(isPreAggregatorName('krum')).toBe(false)
  })

  it('keeps option types for literal names', () => {
    expectTypeOf(rules.krum).toEqualTypeOf<RuleEntry<'krum'>>()
    expectTypeOf(rules.multiKrum.aggregate).parameter(1).toEqualTypeOf<MultiKrumOptions>()
    expectTypeOf(rules.krum.aggregate).parameter(1).toEqualTypeOf<KrumOptions>()
    const typeOnly = (): unknown =>
      // @ts-expect-error tau is not a Krum option
      rules.krum.aggregate(v([0], [1], [2]), { f: 0, tau: 1 })
    expect(typeof typeOnly).toBe('function')
  })
})

describe('compose', () => {
  // inputs 0,1,5,6,100 with f = 1: NNM replaces each by the mean of its 4 nearest (itself
  // included): 0→{0,1,5,6}=3, 1→{1,0,5,6}=3, 5→{5,6,1,0}=3, 6→{6,5,1,0}=3, 100→{100,6,5,1}=28
  const inputs = v([0], [1], [5], [6], [100])

  it('applies a named pre-aggregator, then the rule', () => {
    const nnmKrum = compose({ name: 'nnm', options: { f: 1 } }, rules.krum)
    expectTypeOf(nnmKrum).toEqualTypeOf<Aggregate<KrumOptions>>()
    expect([...nnmKrum(inputs, { f: 1 })]).toEqual([3])
    expect([...nnmKrum(inputs, { f: 1 })]).toEqual([...krum(nnm(inputs, { f: 1 }), { f: 1 })])
  })

  it('chains several steps in order and accepts plain functions', () => {
    const clipThenMedian = compose(
      [{ name: 'clip', options: { maxNorm: 10 } }, (x) => x.map((y) => y.map((z) => z * 2))],
      median,
    )
    // clip: 100 → 10; doubled: 0,2,10,12,20 → median 10
    expect([...clipThenMedian(inputs, {})]).toEqual([10])
  })

  it('checks the rule bound on the pre-aggregated vectors', () => {
    const bucketsThenKrum = compose({ name: 'bucketing', options: { bucketSize: 2, seed: 1 } }, rules.krum)
    expect(() => bucketsThenKrum(inputs, { f: 1 })).toThrow(
      expect.objectContaining({ name: 'BoundError', n: 3 }),
    )
  })
})

describe('how a server runs each pre-aggregator', () => {
  const inputs = v([1, 0], [0, 1], [2, 2], [-1, 3], [5, -5])
  it.each(preAggregatorNames)('%s: its options run, and it leaves the number of vectors it says', (name) => {
    const setting = preAggregatorSettings[name] as {
      options: (context: { f: number; seed: number }) => unknown
      outputs: (n: number, options: unknown) => number
    }
    const options = setting.options({ f: 1, seed: 3 })
    const apply = preAggregators[name] as (x: readonly Float32Array[], o: unknown) => Float32Array[]
    expect(apply(inputs, options)).toHaveLength(setting.outputs(inputs.length, options))
  })

  it('bucketing in pairs leaves ⌈n/2⌉', () => {
    const options = preAggregatorSettings.bucketing.options({ f: 1, seed: 3 })
    expect(preAggregatorSettings.bucketing.outputs(5, options)).toBe(3)
  })
})
