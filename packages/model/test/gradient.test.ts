import { createRandom } from '@phalanx/aggregation'
import * as tf from '@tensorflow/tfjs-core'
import { beforeAll, describe, expect, it } from 'vitest'
import { createModel, type Dataset, initBackend, type Model } from '../src/index.js'
import { referenceLoss } from './reference.js'

beforeAll(async () => {
  await initBackend({ backend: 'wasm' })
})

const smallInit = { seed: 3, hidden: [12], dimension: 20, channels: [4, 6] as [number, number] }

function randomBatch(model: Model, size: number, seed: number): Dataset {
  const random = createRandom(seed)
  const width = model.inputShape.reduce((a, b) => a * b, 1)
  const features = Float32Array.from({ length: size * width }, () => random.normal())
  if (model.task === 'classification') {
    const labels = Int32Array.from({ length: size }, () => random.int(model.classes ?? 1))
    return {
      name: 'random',
      task: 'classification',
      classes: model.classes!,
      size,
      featureShape: [...model.inputShape],
      features,
      labels,
    }
  }
  const targets = Float32Array.from({ length: size }, () => random.normal())
  return { name: 'random', task: 'regression', size, featureShape: [...model.inputShape], features, targets }
}

/**
 * Two finite-difference checks, central differences both.
 *
 * 1. Against an independent float64 forward pass (test/reference.ts), step 1e-6: rounding in
 *    float64 (≈ 1e-16·L/1e-6 ≈ 1e-10) and truncation (≈ ε² ≈ 1e-12) are negligible, and a step
 *    that small crosses a ReLU or max-pool kink with negligible probability. What is left is
 *    tfjs computing in float32: sums of up to ~10⁴ products carry ≈ 1e-6 relative error, so
 *    |fd − g| ≤ 1e-5 + 1e-3·|fd| has a 10× margin, while a wrong transpose, a missing factor or
 *    a dropped term (errors of order |g|) fails it. Every tensor is checked on 12 coordinates.
 * 2. For the smooth models only, against the model's own float32 loss, step 1e-2: the loss
 *    (≈ 2.3) is off by ≲ 1e-6 relative, giving ≲ 1.2e-4 of noise; truncation ε²/6·|L‴| ≲ 5e-5.
 *    Hence |fd − g| ≤ 1e-3 + 2e-2·max(|fd|, |g|). (The ReLU/max-pool models are excluded here:
 *    measured, a hidden pre-activation 7e-4 from zero made the ±1e-2 difference of a whole
 *    column of the MLP's first layer meaningless, though the gradient matched float64 to 2e-8.)
 */
describe('gradient matches central finite differences on random parameters', () => {
  it.each(['linear', 'logistic', 'mlp', 'cnn'])('%s: against a float64 reference loss', (name) => {
    const model = createModel(name, smallInit)
    const random = createRandom(11)
    const params = model.parameters().map((v) => v + 0.05 * random.normal())
    const batch = randomBatch(model, 3, 12)
    const gradient = model.gradient(params, batch)
    expect(gradient).toHaveLength(model.dimension)
    const exact = Float64Array.from(params)
    // The forward passes agree before their derivatives are compared.
    expect(model.loss(params, batch)).toBeCloseTo(referenceLoss(model, exact, batch), 4)
    const step = 1e-6
    const failures: { tensor: string; index: number; finite: number; analytic: number }[] = []
    for (const entry of model.layout.entries) {
      for (let k = 0; k < Math.min(entry.size, 12); k++) {
        const j = entry.offset + (entry.size <= 12 ? k : random.int(entry.size))
        const shifted = Float64Array.from(exact)
        shifted[j] = exact[j]! + step
        const plus = referenceLoss(model, shifted, batch)
        shifted[j] = exact[j]! - step
        const finite = (plus - referenceLoss(model, shifted, batch)) / (2 * step)
        const analytic = gradient[j]!
        if (!(Math.abs(finite - analytic) <= 1e-5 + 1e-3 * Math.abs(finite))) {
          failures.push({ tensor: entry.name, index: j - entry.offset, finite, analytic })
        }
      }
    }
    expect(failures).toEqual([])
  })

  it.each(['linear', 'logistic'])('%s: against its own float32 loss', (name) => {
    const model = createModel(name, smallInit)
    const random = createRandom(21)
    const params = model.parameters().map((v) => v + 0.05 * random.normal())
    const batch = randomBatch(model, 4, 22)
    const gradient = model.gradient(params, batch)
    const step = 1e-2
    const failures: { index: number; finite: number; analytic: number }[] = []
    for (let k = 0; k < 40; k++) {
      const j = random.int(model.dimension)
      const shifted = params.slice()
      shifted[j] = params[j]! + step
      const plus = model.loss(shifted, batch)
      shifted[j] = params[j]! - step
      const finite = (plus - model.loss(shifted, batch)) / (2 * step)
      const analytic = gradient[j]!
      if (!(Math.abs(finite - analytic) <= 1e-3 + 2e-2 * Math.max(Math.abs(finite), Math.abs(analytic)))) {
        failures.push({ index: j, finite, analytic })
      }
    }
    expect(failures).toEqual([])
  })

  it.each(['linear', 'logistic', 'mlp', 'cnn'])(
    '%s: lossAndGradient agrees with loss and gradient',
    (name) => {
      const model = createModel(name, smallInit)
      const params = model.parameters()
      const batch = randomBatch(model, 5, 3)
      const both = model.lossAndGradient(params, batch)
      expect(both.loss).toBeCloseTo(model.loss(params, batch), 5)
      expect(both.gradient).toEqual(model.gradient(params, batch))
    },
  )
})

describe('model creation', () => {
  it.each([
    { name: 'logistic', init: {}, dimension: 784 * 10 + 10 },
    { name: 'mlp', init: {}, dimension: 784 * 128 + 128 + 128 * 10 + 10 },
    { name: 'mlp', init: { hidden: [32, 16] }, dimension: 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10 },
    { name: 'cnn', init: {}, dimension: 5 * 5 * 8 + 8 + 5 * 5 * 8 * 16 + 16 + 7 * 7 * 16 * 10 + 10 },
    { name: 'linear', init: { dimension: 7 }, dimension: 8 },
  ])('$name $init has $dimension parameters in its layout', ({ name, init, dimension }) => {
    const model = createModel(name, init)
    expect(model.dimension).toBe(dimension)
    expect(model.parameters()).toHaveLength(dimension)
    const last = model.layout.entries.at(-1)!
    expect(last.offset + last.size).toBe(dimension)
  })

  it('initial parameters are a function of the seed', () => {
    expect(createModel('mlp', { seed: 4 }).parameters()).toEqual(createModel('mlp', { seed: 4 }).parameters())
    expect(createModel('mlp', { seed: 4 }).parameters()).not.toEqual(
      createModel('mlp', { seed: 5 }).parameters(),
    )
  })

  it('He initialisation gives the first MLP layer variance 2/fanIn', () => {
    const model = createModel('mlp', { seed: 9 })
    const first = model.layout.entries[0]!
    const values = model.parameters().subarray(first.offset, first.offset + first.size)
    const variance = values.reduce((s, v) => s + v * v, 0) / values.length
    // 100,352 draws: the sample variance is within 1% of 2/784 with overwhelming probability.
    expect(variance).toBeGreaterThan((2 / 784) * 0.99)
    expect(variance).toBeLessThan((2 / 784) * 1.01)
  })
})

describe('no tensor outlives a call', () => {
  it('1,000 gradient calls across the four models leave tf.memory().numTensors unchanged', () => {
    const models = ['linear', 'logistic', 'mlp', 'cnn'].map((name) => createModel(name, smallInit))
    const batches = models.map((model, i) => randomBatch(model, 8, i))
    const params = models.map((model) => model.parameters())
    const before = tf.memory().numTensors
    for (let call = 0; call < 1_000; call++) {
      const i = call % models.length
      models[i]!.gradient(params[i]!, batches[i]!)
    }
    expect(tf.memory().numTensors).toBe(before)
    for (const [i, model] of models.entries()) {
      model.lossAndGradient(params[i]!, batches[i]!)
      model.loss(params[i]!, batches[i]!)
      model.evaluate(params[i]!, batches[i]!, { batchSize: 3 })
    }
    expect(tf.memory().numTensors).toBe(before)
  })

  it('a call that throws leaves no tensor behind either', () => {
    const model = createModel('logistic', {})
    const before = tf.memory().numTensors
    expect(() => model.gradient(new Float32Array(3), randomBatch(model, 2, 1))).toThrow()
    expect(tf.memory().numTensors).toBe(before)
  })
})

describe('evaluate', () => {
  it('does not depend on its batch size', () => {
    const model = createModel('mlp', smallInit)
    const data = randomBatch(model, 37, 8)
    const whole = model.evaluate(model.parameters(), data, { batchSize: 1_000 })
    const pieces = model.evaluate(model.parameters(), data, { batchSize: 5 })
    expect(pieces.accuracy).toBe(whole.accuracy)
    expect(pieces.loss).toBeCloseTo(whole.loss, 5)
  })

  it('accuracy is the fraction of argmax hits (hand-made logistic model)', () => {
    const model = createModel('logistic', { inputSize: 2, classes: 2 })
    // weights = identity, bias = 0: the predicted class is the larger feature.
    const params = Float32Array.from([1, 0, 0, 1, 0, 0])
    const data: Dataset = {
      name: 'hand',
      task: 'classification',
      classes: 2,
      size: 4,
      featureShape: [2],
      features: Float32Array.from([2, 1, 0, 3, 5, 4, 1, 2]),
      labels: Int32Array.from([0, 1, 1, 1]),
    }
    // predictions 0, 1, 0, 1 vs labels 0, 1, 1, 1: three of four.
    expect(model.evaluate(params, data).accuracy).toBe(0.75)
  })
})

describe('bad input gets a named error', () => {
  const model = createModel('logistic', {})
  const good = randomBatch(model, 2, 1)

  it.each([
    {
      what: 'parameter vector too short',
      params: new Float32Array(10),
      batch: good,
      error: 'ParameterLengthError',
    },
    {
      what: 'parameter vector too long',
      params: new Float32Array(7_851),
      batch: good,
      error: 'ParameterLengthError',
    },
    {
      what: 'sample of the wrong size',
      params: model.parameters(),
      batch: { ...good, featureShape: [10, 10], features: new Float32Array(200) },
      error: 'BatchShapeError',
    },
    {
      what: 'features shorter than size × width',
      params: model.parameters(),
      batch: { ...good, features: new Float32Array(784) },
      error: 'BatchShapeError',
    },
    {
      what: 'label out of range',
      params: model.parameters(),
      batch: { ...good, labels: Int32Array.from([0, 10]) },
      error: 'BatchShapeError',
    },
    {
      what: 'regression batch for a classifier',
      params: model.parameters(),
      batch: {
        name: 'r',
        task: 'regression',
        size: 2,
        featureShape: [784],
        features: new Float32Array(1568),
        targets: new Float32Array(2),
      },
      error: 'BatchShapeError',
    },
  ] as { what: string; params: Float32Array; batch: Dataset; error: string }[])(
    '$what → $error',
    ({ params, batch, error }) => {
      expect(() => model.gradient(params, batch)).toThrow(expect.objectContaining({ name: error }))
      expect(() => model.evaluate(params, batch)).toThrow(expect.objectContaining({ name: error }))
    },
  )

  it('the message names the model and both lengths', () => {
    expect(() => model.gradient(new Float32Array(10), good)).toThrow(/logistic.*7850.*10/)
  })

  it.each(['resnet', '', 'MLP'])('unknown model %j → UnknownModelError listing the known ones', (name) => {
    expect(() => createModel(name)).toThrow(expect.objectContaining({ name: 'UnknownModelError' }))
    expect(() => createModel(name)).toThrow(/logistic, mlp, cnn, linear/)
  })

  it.each([
    { init: { hidden: [0] }, option: 'hidden[0]' },
    { init: { imageSize: 30 }, option: 'imageSize' },
    { init: { dimension: 1.5 }, option: 'dimension' },
  ])('invalid $option → InvalidModelOptionError', ({ init, option }) => {
    const name = option === 'imageSize' ? 'cnn' : option === 'dimension' ? 'linear' : 'mlp'
    expect(() => createModel(name, init)).toThrow(
      expect.objectContaining({ name: 'InvalidModelOptionError' }),
    )
  })
})
