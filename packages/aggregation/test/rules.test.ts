/**
 * Hand-computed cases for every rule and pre-aggregator. The comment above each case is the
 * arithmetic that gives its expected value.
 */
import { describe, expect, it } from 'vitest'
import {
  arc,
  average,
  bucketing,
  bulyan,
  centeredClipping,
  clip,
  geometricMedian,
  krum,
  krumSelect,
  mda,
  mdaSelect,
  meamed,
  median,
  multiKrum,
  nnm,
  preAggregatorNames,
  ruleNames,
  trimmedMean,
} from '../src/index.js'

const v = (...rows: number[][]): Float32Array[] => rows.map((row) => Float32Array.from(row))

function expectVector(actual: Float32Array, expected: readonly number[]): void {
  expect(actual).toBeInstanceOf(Float32Array)
  expect(actual.length).toBe(expected.length)
  expected.forEach((value, k) => {
    expect(actual[k]).toBeCloseTo(value, 5)
  })
}

interface RuleCase {
  readonly name: string
  readonly run: () => Float32Array
  readonly expected: readonly number[]
}

const ruleCases: RuleCase[] = [
  // (1+3+5)/3 = 3, (2+4+9)/3 = 5
  { name: 'average of three', run: () => average(v([1, 2], [3, 4], [5, 9])), expected: [3, 5] },
  { name: 'average of one', run: () => average(v([7, -1])), expected: [7, -1] },
  // sorted 1,3,5 → 3
  { name: 'median odd n', run: () => median(v([1], [5], [3])), expected: [3] },
  // coord 0 sorted 1,2,4,100 → (2+4)/2 = 3; coord 1 sorted 0,2,8,10 → (2+8)/2 = 5
  {
    name: 'median even n',
    run: () => median(v([1, 10], [4, 2], [2, 8], [100, 0]), { f: 1 }),
    expected: [3, 5],
  },
  // n = 1: the value itself
  { name: 'median of one', run: () => median(v([2.5, -3])), expected: [2.5, -3] },
  // coord 0: drop 1 and 100 → (2+3+4)/3 = 3; coord 1: drop −5 and 20 → (0+5+10)/3 = 5
  {
    name: 'trimmedMean f=1',
    run: () => trimmedMean(v([1, 20], [2, -5], [3, 0], [4, 5], [100, 10]), { f: 1 }),
    expected: [3, 5],
  },
  // f = 0: plain mean (1+2+6)/3 = 3
  { name: 'trimmedMean f=0', run: () => trimmedMean(v([1], [2], [6]), { f: 0 }), expected: [3] },
  // 2,3,4 left after dropping 1,100 and 1,... f=2 of 5 leaves only the median 3
  { name: 'trimmedMean f=2', run: () => trimmedMean(v([1], [2], [3], [4], [100]), { f: 2 }), expected: [3] },
  // median 3; distances 2,1,0,7,8 → keep 1,2,3 → 2
  { name: 'meamed f=2', run: () => meamed(v([1], [2], [3], [10], [11]), { f: 2 }), expected: [2] },
  // median 4; distances 4,2,0,2,4: the tie between 0 and 8 keeps the smaller → (0+2+4+6)/4 = 3
  {
    name: 'meamed tie keeps smaller',
    run: () => meamed(v([0], [2], [4], [6], [8]), { f: 1 }),
    expected: [3],
  },
  // even n: median 2.5; distances 1.5,0.5,0.5,4.5 → keep 1,2,3 → 2
  { name: 'meamed even n', run: () => meamed(v([1], [2], [3], [7]), { f: 1 }), expected: [2] },
  // one step from 0: norms 5,1,0 → β = 0.2, 1, 1/0.1 = 10; z = (0.2·[3,4] + [0,1]) / 11.2
  {
    name: 'geometricMedian one iteration',
    run: () => geometricMedian(v([3, 4], [0, 1], [0, 0]), { iterations: 1 }),
    expected: [0.6 / 11.2, 1.8 / 11.2],
  },
  // symmetric around 0: every iteration stays at 0
  {
    name: 'geometricMedian symmetric',
    run: () => geometricMedian(v([1, 0], [-1, 0], [0, 1], [0, -1]), { f: 1 }),
    expected: [0, 0],
  },
  // from start [1,1]: distances all √2·... equal by symmetry of ±1 offsets → mean [1,1]
  {
    name: 'geometricMedian custom start',
    run: () =>
      geometricMedian(v([2, 1], [0, 1], [1, 2], [1, 0]), { start: Float32Array.from([1, 1]), nu: 0.5 }),
    expected: [1, 1],
  },
  // scores (2 nearest, squared): 0→1+4=5, 1→1+1=2, 2→1+1=2, 3→1+4=5, 100→9409+9604; tie 1/2 → index 1
  {
    name: 'krum picks lowest score, lowest index on tie',
    run: () => krum(v([0], [1], [2], [3], [100]), { f: 1 }),
    expected: [1],
  },
  // same scores; m = n−f = 4 lowest: 1,2,0,3 → (0+1+2+3)/4
  {
    name: 'multiKrum default m',
    run: () => multiKrum(v([0], [1], [2], [3], [100]), { f: 1 }),
    expected: [1.5],
  },
  // m = 3: indices 1,2 then 0 (score 5, lower index than 3) → (1+2+0)/3
  {
    name: 'multiKrum m=3',
    run: () => multiKrum(v([0], [1], [2], [3], [100]), { f: 1, m: 3 }),
    expected: [1],
  },
  // Iterated Krum picks 2, 1, 3, 0, 4 (see bulyanSelect); median of {0..4} is 2; β = 3 closest: 1,2,3 → 2
  {
    name: 'bulyan',
    run: () => bulyan(v([0], [1], [2], [3], [4], [50], [100]), { f: 1 }),
    expected: [2],
  },
  // subsets of 3: {0,1,3} diameter 9, {0,1,10} 100, {0,3,10} 100, {1,3,10} 81 → mean 4/3
  { name: 'mda', run: () => mda(v([0], [1], [3], [10]), { f: 1 }), expected: [4 / 3] },
  // x1 − v = [3,4], ‖·‖ = 5 → scaled to [0.6,0.8]; x2 − v = 0; v = [0.6,0.8]/2
  {
    name: 'centeredClipping one iteration',
    run: () => centeredClipping(v([3, 4], [0, 0]), { tau: 1, iterations: 1 }),
    expected: [0.3, 0.4],
  },
  // second step from [0.3,0.4]: [2.7,3.6]/4.5 = [0.6,0.8]; [−0.3,−0.4] (norm 0.5 ≤ τ); v += [0.3,0.4]/2
  {
    name: 'centeredClipping two iterations',
    run: () => centeredClipping(v([3, 4], [0, 0]), { tau: 1, iterations: 2 }),
    expected: [0.45, 0.6],
  },
  // τ large: plain mean reached in one step from 0
  {
    name: 'centeredClipping large tau is the mean',
    run: () => centeredClipping(v([3, 4], [1, 0]), { tau: 100, iterations: 1 }),
    expected: [2, 2],
  },
]

describe('rules on hand-computed cases', () => {
  // Moved from registry.test.ts: a new rule adds its name here and its cases above.
  it('the registry lists every rule once, and each has a hand-computed case', () => {
    expect([...ruleNames].sort()).toEqual(
      [
        'average',
        'bulyan',
        'centeredClipping',
        'geometricMedian',
        'krum',
        'mda',
        'meamed',
        'median',
        'multiKrum',
        'trimmedMean',
      ].sort(),
    )
    for (const name of ruleNames) {
      expect(ruleCases.some((c) => c.name.split(' ')[0] === name)).toBe(true)
    }
  })

  it.each(ruleCases)('$name', ({ run, expected }) => {
    expectVector(run(), expected)
  })

  it('krumSelect reports the scores', () => {
    const { index, scores } = krumSelect(v([0], [1], [2], [3], [100]), { f: 1 })
    expect(index).toBe(1)
    expect([...scores]).toEqual([5, 2, 2, 5, 9409 + 9604])
  })

  it('mdaSelect reports the exact subset and its diameter', () => {
    expect(mdaSelect(v([0], [1], [3], [10]), { f: 1 })).toEqual({
      selected: [0, 1, 2],
      diameter: 9,
      method: 'exact',
    })
  })

  it('mda approximates only when asked, and says so', () => {
    const inputs = v([0], [1], [3], [10], [11])
    const selection = mdaSelect(inputs, { f: 2, maxSubsets: 2, approximate: true })
    // greedy: diameter (0,11); removing 0 leaves (1,11) = 100, removing 11 leaves (0,10) = 100:
    // a tie removes the later index (11). Then diameter (0,10): removing 0 leaves 81, removing
    // 10 leaves 9 → remove 10. Kept 0,1,3 with diameter 9.
    expect(selection).toEqual({ selected: [0, 1, 2], diameter: 9, method: 'greedy' })
    expectVector(mda(inputs, { f: 2, maxSubsets: 2, approximate: true }), [4 / 3])
  })
})

interface PreCase {
  readonly name: string
  readonly run: () => Float32Array[]
  readonly expected: readonly (readonly number[])[]
}

const preCases: PreCase[] = [
  // n−f = 2 nearest including itself: 0→{0,1}, 1→{1,0}, 5→{5,1}
  { name: 'nnm f=1', run: () => nnm(v([0], [1], [5]), { f: 1 }), expected: [[0.5], [0.5], [3]] },
  // f = 0: everyone becomes the mean
  {
    name: 'nnm f=0',
    run: () => nnm(v([0, 3], [3, 0]), { f: 0 }),
    expected: [
      [1.5, 1.5],
      [1.5, 1.5],
    ],
  },
  // seed 7 shuffles 4 indices to [1,3,2,0]: buckets {1,3}, {2,0} → (10+30)/2, (20+0)/2
  {
    name: 'bucketing s=2 seed 7',
    run: () => bucketing(v([0], [10], [20], [30]), { bucketSize: 2, seed: 7 }),
    expected: [[20], [10]],
  },
  // seed 42 shuffles 5 indices to [0,3,2,1,4]: buckets {0,3,2}, {1,4} → 50/3, 25
  {
    name: 'bucketing s=3 leaves a smaller last bucket',
    run: () => bucketing(v([0], [10], [20], [30], [40]), { bucketSize: 3, seed: 42 }),
    expected: [[50 / 3], [25]],
  },
  // s ≥ n: one bucket, the mean
  {
    name: 'bucketing s≥n',
    run: () => bucketing(v([0], [10], [20]), { bucketSize: 5, seed: 1 }),
    expected: [[10]],
  },
  // n=5, f=1: k = ⌊2·(1/5)·4⌋ = 1; norms 5,1,2,10,3 → clip [6,8] (norm 10) to the next norm 5 → [3,4]
  {
    name: 'arc clips the k largest to the (k+1)-th largest norm',
    run: () => arc(v([3, 4], [0, 1], [0, 2], [6, 8], [0, 3]), { f: 1 }),
    expected: [
      [3, 4],
      [0, 1],
      [0, 2],
      [3, 4],
      [0, 3],
    ],
  },
  // f = 0: k = 0, nothing clipped
  {
    name: 'arc f=0',
    run: () => arc(v([30, 40], [0, 1]), { f: 0 }),
    expected: [
      [30, 40],
      [0, 1],
    ],
  },
  // n=4, f=2: k = ⌊2·(2/4)·2⌋ = 2; norms 1,2,3,4 → clip the two largest to 2
  {
    name: 'arc f=2',
    run: () => arc(v([1], [-2], [3], [-4]), { f: 2 }),
    expected: [[1], [-2], [2], [-2]],
  },
  // ‖[3,4]‖ = 5 → scaled by 1/5; [0,0.5] under the bound stays
  {
    name: 'clip',
    run: () => clip(v([3, 4], [0, 0.5], [0, 0]), { maxNorm: 1 }),
    expected: [
      [0.6, 0.8],
      [0, 0.5],
      [0, 0],
    ],
  },
]

describe('pre-aggregators on hand-computed cases', () => {
  // Moved from registry.test.ts: a new pre-aggregator adds its name here and its cases above.
  it('the registry lists every pre-aggregator once, in order', () => {
    expect(preAggregatorNames).toEqual(['nnm', 'bucketing', 'arc', 'clip'])
  })

  it.each(preCases)('$name', ({ run, expected }) => {
    const out = run()
    expect(out.length).toBe(expected.length)
    out.forEach((row, i) => {
      expectVector(row, expected[i]!)
    })
  })
})
