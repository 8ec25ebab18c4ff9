import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type KardamDecision, KardamFilter, type KardamSubmission, kardamDampening } from '../src/kardam.js'
import { createRandom } from '../src/random.js'

/** One-dimensional model whose value at step s is s, so ‖x_a − x_b‖ = |a − b|. */
const at = (worker: number, step: number, gradient: number[]): KardamSubmission => ({
  worker,
  step,
  gradient: Float32Array.from(gradient),
  model: Float32Array.from([step]),
})

describe('Kardam configuration', () => {
  it('defaults: inverse dampening, a frequency window of 2f, one gradient per worker in it, 2n coefficients', () => {
    const kardam = new KardamFilter({ n: 10, f: 3 })
    expect(kardam).toMatchObject({
      dampening: { kind: 'inverse' },
      frequencyWindow: 6,
      maxPerWorker: 1,
      coefficientWindow: 20,
    })
  })

  it.each([
    ['n < 3f+1', { n: 9, f: 3 }, 'BoundError'],
    ['f < 0', { n: 4, f: -1 }, 'InvalidOptionError'],
    ['n fractional', { n: 4.5, f: 1 }, 'InvalidOptionError'],
    ['α ≤ 0', { n: 4, f: 1, dampening: { kind: 'exponential', alpha: 0 } }, 'InvalidOptionError'],
    ['maxPerWorker 0', { n: 4, f: 1, maxPerWorker: 0 }, 'InvalidOptionError'],
    ['coefficientWindow 0', { n: 4, f: 1, coefficientWindow: 0 }, 'InvalidOptionError'],
  ] as const)('%s is refused with a named error', (_name, init, errorName) => {
    expect(() => new KardamFilter(init)).toThrow(expect.objectContaining({ name: errorName }))
  })

  it('the bound error names n, f and the bound', () => {
    expect(() => new KardamFilter({ n: 6, f: 2 })).toThrow(
      expect.objectContaining({ rule: 'kardam', n: 6, f: 2, bound: 'n ≥ 3f+1' }),
    )
  })

  it.each([
    [{ kind: 'inverse' }, 0, 1],
    [{ kind: 'inverse' }, 3, 0.25],
    [{ kind: 'exponential', alpha: 0.5 }, 2, Math.exp(-1)],
    [{ kind: 'exponential', alpha: 0.5 }, 0, 1],
    [{ kind: 'none' }, 7, 1],
  ] as const)('Λ(τ) for %o at τ = %i is %d', (dampening, staleness, weight) => {
    expect(kardamDampening(dampening, staleness)).toBeCloseTo(weight, 15)
  })
})

describe('Kardam on a hand-computed sequence (n = 4, f = 1, model at step s is [s])', () => {
  const kardam = new KardamFilter({ n: 4, f: 1 })
  // Each row: submission, server step, expected decision. Coefficients by hand:
  // K = |g − g_ref| / |step − step_ref|, g_ref the latest accepted at another step.
  const steps: [string, KardamSubmission, number, Partial<KardamDecision>][] = [
    [
      'first gradient: no reference, taken',
      at(0, 0, [10]),
      0,
      { accepted: true, reason: 'no-reference', coefficient: undefined, weight: 1 },
    ],
    [
      // ref (step 0, g 10): K = |12 − 10| / 1 = 2; one coefficient ≤ f: no robust quantile yet.
      'second: K = 2, warm-up',
      at(1, 1, [12]),
      1,
      { accepted: true, reason: 'warmup', coefficient: 2, weight: 1 },
    ],
    [
      // Same step as the newest reference, so ref is (0, 10): K = 3. Coefficients {2, 3}:
      // threshold = the (m−f)-th = 1st smallest = 2 < 3.
      'K = 3 is the largest of two: Lipschitz-rejected',
      at(2, 1, [13]),
      2,
      { accepted: false, reason: 'lipschitz', coefficient: 3, threshold: 2, staleness: 1, weight: 0 },
    ],
    [
      // ref (1, 12): K = 0.5. Coefficients {2, 3, 0.5}: threshold = 2nd smallest = 2.
      'K = 0.5 passes',
      at(3, 2, [12.5]),
      2,
      { accepted: true, reason: 'accepted', coefficient: 0.5, threshold: 2, weight: 1 },
    ],
    [
      // ref (2, 12.5): K = 0.1 passes, but worker 3 supplied the last accepted gradient and
      // the window of 2f = 2 allows one per worker.
      'the same worker twice in a row: frequency-rejected',
      at(3, 3, [12.4]),
      3,
      { accepted: false, reason: 'frequency', staleness: 0, weight: 0 },
    ],
    [
      // ref (2, 12.5): K = 1.5 / |1 − 2| = 1.5. Coefficients {w1 2, w2 3, w3 0.1, w0 1.5}:
      // threshold = 3rd smallest = 2. Staleness 3 − 1 = 2 → Λ = 1/3.
      'a stale gradient passes and is dampened by 1/(τ+1)',
      at(0, 1, [11]),
      3,
      { accepted: true, reason: 'accepted', coefficient: 1.5, threshold: 2, staleness: 2, weight: 1 / 3 },
    ],
    ['a step from the future', at(1, 5, [12]), 3, { accepted: false, reason: 'future-step', staleness: -2 }],
    ['a NaN gradient', at(2, 3, [Number.NaN]), 3, { accepted: false, reason: 'non-finite' }],
    [
      'a gradient of the wrong length',
      { worker: 2, step: 3, gradient: new Float32Array(2), model: Float32Array.from([3]) },
      3,
      { accepted: false, reason: 'dimension' },
    ],
  ]
  it.each(steps)('%s', (_name, submission, currentStep, expected) => {
    const decision = kardam.consider(submission, currentStep)
    expect(decision).toMatchObject(expected)
    if (expected.coefficient !== undefined) expect(decision.coefficient).toBeCloseTo(expected.coefficient, 5)
  })

  it('caller mistakes throw named errors', () => {
    expect(() => kardam.consider(at(4, 0, [1]), 3)).toThrow(
      expect.objectContaining({ name: 'UnknownWorkerError', worker: 4, n: 4 }),
    )
    expect(() =>
      kardam.consider({ worker: 0, step: 0, gradient: new Float32Array(2), model: new Float32Array(2) }, 3),
    ).toThrow(expect.objectContaining({ name: 'DimensionMismatchError' }))
    expect(() => kardam.consider(at(0, 0.5, [1]), 3)).toThrow(
      expect.objectContaining({ name: 'InvalidOptionError' }),
    )
  })
})

describe('Kardam references', () => {
  it("skips a reference whose model equals the candidate's (zero update): no coefficient from it", () => {
    const kardam = new KardamFilter({ n: 4, f: 1 })
    const zero = Float32Array.from([0])
    expect(
      kardam.consider({ worker: 0, step: 0, gradient: Float32Array.from([1]), model: zero }, 0).reason,
    ).toBe('no-reference')
    // Step 1 has the same model as step 0: ‖x₁ − x₀‖ = 0, so there is still no reference.
    expect(
      kardam.consider({ worker: 1, step: 1, gradient: Float32Array.from([5]), model: zero }, 1),
    ).toMatchObject({
      accepted: true,
      reason: 'no-reference',
      coefficient: undefined,
    })
    // Step 2 at model [2]: the newest reference (step 1, g = 5) gives K = |4 − 5| / 2 = 0.5.
    expect(
      kardam.consider(
        { worker: 2, step: 2, gradient: Float32Array.from([4]), model: Float32Array.from([2]) },
        2,
      ),
    ).toMatchObject({ accepted: true, reason: 'warmup', coefficient: 0.5 })
  })
})

/** Honest workers on Q(x) = ½‖x‖² (gradient x + N(0, σ²I)) and Byzantine ones sending `byzantine(x)`. */
function simulate(
  kardam: KardamFilter,
  options: {
    steps: number
    d: number
    sigma: number
    seed: number
    byzantine: (x: Float32Array) => Float32Array
  },
) {
  const { n, f } = kardam
  const random = createRandom(options.seed)
  let model = Float32Array.from({ length: options.d }, () => 1)
  const history = [model]
  const accepted: number[] = []
  let byzantineAccepted = 0
  let honestAccepted = 0
  for (let t = 0; t < options.steps; t++) {
    const worker = random.int(n)
    // Each worker computed on a model up to 3 steps old.
    const step = Math.max(0, history.length - 1 - random.int(4))
    const x = history[step]!
    const gradient =
      worker < f ? options.byzantine(x) : Float32Array.from(x, (v) => v + options.sigma * random.normal())
    const inputs = { worker, step, gradient, model: x }
    const before = Float32Array.from(gradient)
    const decision = kardam.consider(inputs, history.length - 1)
    expect(gradient).toEqual(before)
    if (!decision.accepted) {
      expect(decision.weight).toBe(0)
      continue
    }
    expect(decision.weight).toBeCloseTo(1 / (decision.staleness + 1), 12)
    accepted.push(worker)
    if (worker < f) byzantineAccepted++
    else honestAccepted++
    model = Float32Array.from(model, (v, j) => v - 0.1 * decision.weight * gradient[j]!)
    history.push(model)
  }
  return { model, accepted, byzantineAccepted, honestAccepted }
}

describe('Kardam under attack', () => {
  it('any 2f consecutive accepted gradients come from 2f different workers, so at least f are honest', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer(),
        (f, extra, seed) => {
          const n = 3 * f + 1 + extra
          const kardam = new KardamFilter({ n, f })
          const { accepted } = simulate(kardam, {
            steps: 200,
            d: 4,
            sigma: 0.1,
            seed,
            byzantine: (x) => Float32Array.from(x, (v) => -v),
          })
          for (let i = 0; i + 2 * f <= accepted.length; i++) {
            const window = accepted.slice(i, i + 2 * f)
            expect(new Set(window).size).toBe(2 * f)
            expect(window.filter((worker) => worker >= f).length).toBeGreaterThanOrEqual(f)
          }
        },
      ),
      { numRuns: 30 },
    )
  })

  it('filters out gradients that grow far faster than the honest ones and still converges', () => {
    const n = 10
    const f = 3
    const attack = createRandom(99)
    // Byzantine gradients: −x plus noise 20× the honest σ — their coefficients dwarf the honest ones.
    const result = simulate(new KardamFilter({ n, f }), {
      steps: 600,
      d: 20,
      sigma: 0.05,
      seed: 7,
      byzantine: (x) => Float32Array.from(x, (v) => -v + attack.normal()),
    })
    // Before any coefficient exists, the frequency filter alone lets a few in; after, none.
    expect(result.byzantineAccepted).toBeLessThanOrEqual(f)
    expect(result.honestAccepted).toBeGreaterThan(100)
    // Started at ‖x‖ = √20 ≈ 4.5; 100+ honest steps of 0.1·Λ shrink it below 0.5.
    expect(Math.hypot(...result.model)).toBeLessThan(0.5)
  })
})
