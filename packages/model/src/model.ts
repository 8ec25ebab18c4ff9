/**
 * A model seen from outside is a fixed parameter layout and three pure functions of a flat
 * Float32Array of parameters: its gradient on a batch, its loss, and its evaluation on a
 * dataset. Tensors live only inside one call (tf.tidy), so any number of calls leaves the
 * engine's tensor count where it was.
 */
import type { Random } from '@phalanx/aggregation'
import type * as tf from '@tensorflow/tfjs-core'
import type { Dataset } from './data/dataset.js'
import { featureSize } from './data/dataset.js'
import { BatchShapeError, ParameterLengthError } from './errors.js'
import { registerModelGradients } from './gradients.js'
import { tfjs } from './tf.js'

/** How one named tensor's initial values are drawn. */
export type Initializer =
  /** Uniform in ±√(6/(fanIn+fanOut)) (Glorot & Bengio 2010), for layers followed by softmax or nothing. */
  | { readonly kind: 'glorot'; readonly fanIn: number; readonly fanOut: number }
  /** Normal with variance 2/fanIn (He et al. 2015), for layers followed by ReLU. */
  | { readonly kind: 'he'; readonly fanIn: number }
  | { readonly kind: 'zeros' }

export interface ParameterEntry {
  readonly name: string
  readonly shape: readonly number[]
  /** Index of this tensor's first value in the flat vector. */
  readonly offset: number
  readonly size: number
  readonly init: Initializer
}

/** The flat vector is the concatenation of these tensors, row-major, in this order. */
export interface ParameterLayout {
  readonly entries: readonly ParameterEntry[]
  /** Length of the flat vector (the model's dimension d). */
  readonly size: number
}

export interface Evaluation {
  /** Mean loss over the dataset (cross-entropy, or half squared error for regression). */
  readonly loss: number
  /** Fraction of samples classified correctly; undefined for regression. */
  readonly accuracy: number | undefined
}

export interface EvaluateOptions {
  /** Samples per forward pass: bounds memory, does not change the result. */
  readonly batchSize?: number
}

export interface Model {
  readonly name: string
  readonly task: 'classification' | 'regression'
  /** Shape of one input sample; a batch's featureShape must have the same number of values. */
  readonly inputShape: readonly number[]
  /** Number of classes (classification only). */
  readonly classes: number | undefined
  readonly layout: ParameterLayout
  /** Length of the flat parameter vector. */
  readonly dimension: number
  /** The initial parameters drawn from the creation seed (a fresh copy each call). */
  parameters(): Float32Array
  /** Gradient of the mean loss over `batch` at `params`, as one flat vector in layout order. */
  gradient(params: Float32Array, batch: Dataset): Float32Array
  /** Mean loss over `batch` and its gradient, from one backward pass. */
  lossAndGradient(
    params: Float32Array,
    batch: Dataset,
  ): { readonly loss: number; readonly gradient: Float32Array }
  /** Mean loss over `batch` (no gradient). */
  loss(params: Float32Array, batch: Dataset): number
  /** Loss and accuracy over a whole dataset, evaluated in batches. */
  evaluate(params: Float32Array, dataset: Dataset, options?: EvaluateOptions): Evaluation
}

/** What an architecture supplies; `createTfModel` turns it into a Model. */
export interface Architecture {
  readonly name: string
  readonly task: 'classification' | 'regression'
  readonly inputShape: readonly number[]
  readonly classes: number | undefined
  readonly layout: ParameterLayout
  /** Outputs for a batch x of shape [B, ...inputShape]: logits [B, classes] or predictions [B]. */
  forward(weights: readonly tf.Tensor[], x: tf.Tensor): tf.Tensor
}

export const evaluateDefaults = {
  // 1,000 MNIST images are ~3 MB of input plus activations: small for WASM's heap, few calls.
  batchSize: 1_000,
} as const

/** Builds a layout from (name, shape, init) triples, assigning offsets in order. */
export function createLayout(
  specs: readonly { readonly name: string; readonly shape: readonly number[]; readonly init: Initializer }[],
): ParameterLayout {
  let offset = 0
  const entries = specs.map((spec) => {
    const size = spec.shape.reduce((a, b) => a * b, 1)
    const entry: ParameterEntry = { name: spec.name, shape: [...spec.shape], offset, size, init: spec.init }
    offset += size
    return entry
  })
  return { entries, size: offset }
}

/** Draws initial parameters for a layout from a seeded random source. */
export function initialParameters(layout: ParameterLayout, random: Random): Float32Array {
  const params = new Float32Array(layout.size)
  for (const entry of layout.entries) {
    const { init } = entry
    const values = params.subarray(entry.offset, entry.offset + entry.size)
    if (init.kind === 'glorot') {
      const limit = Math.sqrt(6 / (init.fanIn + init.fanOut))
      for (let i = 0; i < values.length; i++) values[i] = (2 * random.next() - 1) * limit
    } else if (init.kind === 'he') {
      const std = Math.sqrt(2 / init.fanIn)
      for (let i = 0; i < values.length; i++) values[i] = random.normal() * std
    }
  }
  return params
}

/**
 * A model whose tensor code runs only when called: building one (its layout, dimension and
 * initial parameters) loads no TensorFlow.js, so a node knows its dimension and starts its data
 * plane before its backend is up (node-startup.ts). Its first gradient, loss or evaluation loads
 * tfjs-core and needs a backend ready (`initBackend`); without one tfjs-core throws that no backend
 * is registered.
 */
export function createTfModel(architecture: Architecture, initial: Float32Array): Model {
  /** tfjs-core with our gradients registered: what every function below computes with. */
  const engine = (): ReturnType<typeof tfjs> => {
    registerModelGradients()
    return tfjs()
  }
  const { name, task, layout, inputShape, classes } = architecture
  const inputSize = inputShape.reduce((a, b) => a * b, 1)

  const checkParams = (params: Float32Array): void => {
    if (params.length !== layout.size) {
      throw new ParameterLengthError({ model: name, expected: layout.size, actual: params.length })
    }
  }

  const checkBatch = (batch: Dataset): void => {
    const fail = (problem: string, expected: unknown, actual: unknown): never => {
      throw new BatchShapeError({ model: name, problem, expected, actual })
    }
    if (batch.task !== task) fail('task', task, batch.task)
    if (featureSize(batch) !== inputSize) {
      fail(
        `values per sample (model input ${inputShape.join('×')})`,
        inputSize,
        `${featureSize(batch)} (${batch.featureShape.join('×')})`,
      )
    }
    if (!Number.isInteger(batch.size) || batch.size < 1) fail('sample count', '≥ 1', batch.size)
    if (batch.features.length !== batch.size * inputSize) {
      fail('features length (size × values per sample)', batch.size * inputSize, batch.features.length)
    }
    if (batch.task === 'classification') {
      if (batch.labels.length !== batch.size) fail('labels length', batch.size, batch.labels.length)
      const limit = classes ?? 0
      for (const label of batch.labels) {
        if (!(label >= 0 && label < limit)) fail('label range', `[0, ${limit})`, label)
      }
    } else if (batch.targets.length !== batch.size) {
      fail('targets length', batch.size, batch.targets.length)
    }
  }

  const weightTensors = (params: Float32Array): tf.Tensor[] => {
    const tf = engine()
    return layout.entries.map((entry) =>
      tf.tensor(params.subarray(entry.offset, entry.offset + entry.size), [...entry.shape], 'float32'),
    )
  }

  /** Sum (not mean) of per-sample losses, so batched evaluation can add them up. */
  const lossSum = (output: tf.Tensor, batch: Dataset): tf.Scalar => {
    const tf = engine()
    if (batch.task === 'classification') {
      const oneHot = tf.oneHot(tf.tensor1d(batch.labels, 'int32'), classes ?? 0)
      return tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(output)))) as tf.Scalar
    }
    const residual = tf.sub(output, tf.tensor1d(batch.targets, 'float32'))
    return tf.mul(0.5, tf.sum(tf.square(residual)))
  }

  const inputOf = (batch: Dataset): tf.Tensor =>
    engine().tensor(batch.features, [batch.size, ...inputShape], 'float32')

  const lossAndGradient = (params: Float32Array, batch: Dataset) => {
    const tf = engine()
    checkParams(params)
    checkBatch(batch)
    const [lossTensor, flat] = tf.tidy(() => {
      const weights = weightTensors(params)
      const x = inputOf(batch)
      const { value, grads } = tf.valueAndGrads((...ws: tf.Tensor[]) =>
        tf.div(lossSum(architecture.forward(ws, x), batch), batch.size),
      )(weights)
      return [value, tf.concat(grads.map((g) => tf.reshape(g, [-1])))] as [tf.Tensor, tf.Tensor]
    })
    try {
      return { loss: lossTensor.dataSync()[0]!, gradient: flat.dataSync() as Float32Array }
    } finally {
      lossTensor.dispose()
      flat.dispose()
    }
  }

  const gradient = (params: Float32Array, batch: Dataset): Float32Array => {
    const tf = engine()
    checkParams(params)
    checkBatch(batch)
    const flat = tf.tidy(() => {
      const weights = weightTensors(params)
      const x = inputOf(batch)
      const grads = tf.grads((...ws: tf.Tensor[]) =>
        tf.div(lossSum(architecture.forward(ws, x), batch), batch.size),
      )(weights)
      return tf.concat(grads.map((g) => tf.reshape(g, [-1])))
    })
    try {
      return flat.dataSync() as Float32Array
    } finally {
      flat.dispose()
    }
  }

  const loss = (params: Float32Array, batch: Dataset): number => {
    const tf = engine()
    checkParams(params)
    checkBatch(batch)
    const value = tf.tidy(() =>
      tf.div(lossSum(architecture.forward(weightTensors(params), inputOf(batch)), batch), batch.size),
    )
    try {
      return value.dataSync()[0]!
    } finally {
      value.dispose()
    }
  }

  const evaluate = (params: Float32Array, dataset: Dataset, options: EvaluateOptions = {}): Evaluation => {
    const tf = engine()
    checkParams(params)
    checkBatch(dataset)
    const batchSize = options.batchSize ?? evaluateDefaults.batchSize
    const weights = weightTensors(params)
    let totalLoss = 0
    let correct = 0
    try {
      const width = inputSize
      for (let start = 0; start < dataset.size; start += batchSize) {
        const end = Math.min(dataset.size, start + batchSize)
        const count = end - start
        const chunk: Dataset =
          dataset.task === 'classification'
            ? {
                ...dataset,
                size: count,
                features: dataset.features.subarray(start * width, end * width),
                labels: dataset.labels.subarray(start, end),
              }
            : {
                ...dataset,
                size: count,
                features: dataset.features.subarray(start * width, end * width),
                targets: dataset.targets.subarray(start, end),
              }
        const [lossValue, correctValue] = tf.tidy(() => {
          const output = architecture.forward(weights, inputOf(chunk))
          const sum = lossSum(output, chunk)
          const hits =
            chunk.task === 'classification'
              ? tf.sum(tf.cast(tf.equal(tf.argMax(output, 1), tf.tensor1d(chunk.labels, 'int32')), 'int32'))
              : tf.scalar(0, 'int32')
          return [sum, hits] as [tf.Tensor, tf.Tensor]
        })
        try {
          totalLoss += lossValue.dataSync()[0]!
          correct += correctValue.dataSync()[0]!
        } finally {
          lossValue.dispose()
          correctValue.dispose()
        }
      }
    } finally {
      for (const w of weights) w.dispose()
    }
    return {
      loss: totalLoss / dataset.size,
      accuracy: task === 'classification' ? correct / dataset.size : undefined,
    }
  }

  return {
    name,
    task,
    inputShape,
    classes,
    layout,
    dimension: layout.size,
    parameters: () => initial.slice(),
    gradient,
    lossAndGradient,
    loss,
    evaluate,
  }
}
