/**
 * The four architectures, written with tfjs-core ops (no tfjs-layers): each fixes its
 * parameter layout, so the flat vector means the same on every node and backend.
 */
import { createRandom } from '@phalanx/aggregation'
import type * as tf from '@tensorflow/tfjs-core'
import { InvalidModelOptionError, UnknownModelError } from './errors.js'
import { type Architecture, createLayout, createTfModel, initialParameters, type Model } from './model.js'
import { tfjs } from './tf.js'

export const modelNames = ['logistic', 'mlp', 'cnn', 'linear'] as const
export type ModelName = (typeof modelNames)[number]

export interface ModelInit {
  /** Seed of the initial parameters. */
  readonly seed?: number
  /** logistic, mlp: values per input sample (28·28 for MNIST). */
  readonly inputSize?: number
  /** logistic, mlp, cnn: number of classes. */
  readonly classes?: number
  /** mlp: sizes of the hidden ReLU layers. */
  readonly hidden?: readonly number[]
  /** cnn: side of the square single-channel input (must be divisible by 4: two 2×2 poolings). */
  readonly imageSize?: number
  /** cnn: output channels of the two 5×5 convolutions. */
  readonly channels?: readonly [number, number]
  /** linear: input dimension d. */
  readonly dimension?: number
}

export const modelDefaults = {
  seed: 0,
  inputSize: 28 * 28,
  classes: 10,
  // 784-128-10 is the usual small MNIST MLP (≈ 97–98% on full MNIST), 101,770 parameters.
  hidden: [128] as readonly number[],
  imageSize: 28,
  // 8 and 16 channels keep the CNN at 11,274 parameters and ~14 ms per batch-32 gradient on WASM.
  channels: [8, 16] as readonly [number, number],
  // The synthetic dataset's default d, so the two fit without configuration.
  dimension: 100,
} as const

/** Creates a model by name; throws UnknownModelError on a name outside `modelNames`. */
export function createModel(name: string, init: ModelInit = {}): Model {
  switch (name as ModelName) {
    case 'logistic':
      return logisticRegression(init)
    case 'mlp':
      return mlp(init)
    case 'cnn':
      return cnn(init)
    case 'linear':
      return linearRegression(init)
    default:
      throw new UnknownModelError({ model: name, known: modelNames })
  }
}

function positiveInteger(option: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new InvalidModelOptionError({ option, value, requirement: 'an integer ≥ 1' })
  }
  return value
}

function build(architecture: Architecture, seed: number): Model {
  return createTfModel(architecture, initialParameters(architecture.layout, createRandom(seed)))
}

/** Multinomial logistic regression: softmax(xW + b). */
export function logisticRegression(init: ModelInit = {}): Model {
  const inputSize = positiveInteger('inputSize', init.inputSize ?? modelDefaults.inputSize)
  const classes = positiveInteger('classes', init.classes ?? modelDefaults.classes)
  const layout = createLayout([
    {
      name: 'weights',
      shape: [inputSize, classes],
      init: { kind: 'glorot', fanIn: inputSize, fanOut: classes },
    },
    { name: 'bias', shape: [classes], init: { kind: 'zeros' } },
  ])
  return build(
    {
      name: 'logistic',
      task: 'classification',
      inputShape: [inputSize],
      classes,
      layout,
      forward: ([w, b], x) => {
        const tf = tfjs()
        return tf.add(tf.matMul(tf.reshape(x, [-1, inputSize]), w as tf.Tensor2D), b!)
      },
    },
    init.seed ?? modelDefaults.seed,
  )
}

/** Fully connected ReLU network: input → hidden… → classes. */
export function mlp(init: ModelInit = {}): Model {
  const inputSize = positiveInteger('inputSize', init.inputSize ?? modelDefaults.inputSize)
  const classes = positiveInteger('classes', init.classes ?? modelDefaults.classes)
  const hidden = (init.hidden ?? modelDefaults.hidden).map((h, i) => positiveInteger(`hidden[${i}]`, h))
  const widths = [inputSize, ...hidden, classes]
  const specs = widths.slice(1).flatMap((fanOut, i) => {
    const fanIn = widths[i]!
    const last = i === widths.length - 2
    return [
      {
        name: `dense${i}/weights`,
        shape: [fanIn, fanOut],
        init: last ? ({ kind: 'glorot', fanIn, fanOut } as const) : ({ kind: 'he', fanIn } as const),
      },
      { name: `dense${i}/bias`, shape: [fanOut], init: { kind: 'zeros' } as const },
    ]
  })
  const layers = widths.length - 1
  return build(
    {
      name: 'mlp',
      task: 'classification',
      inputShape: [inputSize],
      classes,
      layout: createLayout(specs),
      forward: (weights, x) => {
        const tf = tfjs()
        let h = tf.reshape(x, [-1, inputSize])
        for (let layer = 0; layer < layers; layer++) {
          h = tf.add(tf.matMul(h as tf.Tensor2D, weights[2 * layer] as tf.Tensor2D), weights[2 * layer + 1]!)
          if (layer < layers - 1) h = tf.relu(h)
        }
        return h
      },
    },
    init.seed ?? modelDefaults.seed,
  )
}

/** Linear regression ŷ = x·w + b, loss ½(ŷ − y)². */
export function linearRegression(init: ModelInit = {}): Model {
  const dimension = positiveInteger('dimension', init.dimension ?? modelDefaults.dimension)
  const layout = createLayout([
    { name: 'weights', shape: [dimension, 1], init: { kind: 'glorot', fanIn: dimension, fanOut: 1 } },
    { name: 'bias', shape: [1], init: { kind: 'zeros' } },
  ])
  return build(
    {
      name: 'linear',
      task: 'regression',
      inputShape: [dimension],
      classes: undefined,
      layout,
      forward: ([w, b], x) => {
        const tf = tfjs()
        return tf.reshape(tf.add(tf.matMul(tf.reshape(x, [-1, dimension]), w as tf.Tensor2D), b!), [-1])
      },
    },
    init.seed ?? modelDefaults.seed,
  )
}

const KERNEL = 5
const HALF = (KERNEL - 1) / 2

/**
 * dW of a stride-1 'same' convolution, itself computed as a convolution: with the batch
 * moved to the channel axis, dW[kh, kw, ci, co] = Σ_b,y,x xpad[b, y+kh, x+kw, ci]·dy[b, y, x, co]
 * is a 'valid' conv of xpad (batch ci, channels b) by dy (kernel H×W, in b, out co). The WASM
 * backend has no Conv2DBackpropFilter kernel, and this runs on XNNPACK's fast conv (measured
 * 3.6 ms vs 84 ms for an im2col of 25 slices, batch 32, first layer).
 */
function filterGradient(x: tf.Tensor4D, dy: tf.Tensor4D): tf.Tensor4D {
  const tf = tfjs()
  const padded = tf.pad(x, [
    [0, 0],
    [HALF, HALF],
    [HALF, HALF],
    [0, 0],
  ])
  const images = tf.transpose(padded, [3, 1, 2, 0]) as tf.Tensor4D
  const kernel = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D
  return tf.transpose(tf.conv2d(images, kernel, 1, 'valid'), [1, 2, 0, 3])
}

/**
 * dx of a stride-1 'same' convolution with an odd square kernel: the convolution of dy by the
 * filter rotated 180° with in/out channels swapped (2.3 ms vs 23 ms for conv2dTranspose on WASM).
 */
function inputGradient(dy: tf.Tensor4D, w: tf.Tensor4D): tf.Tensor4D {
  const tf = tfjs()
  return tf.conv2d(dy, tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D, 1, 'same')
}

/**
 * conv2d (5×5, stride 1, 'same') with a backward pass that works on every backend. The first
 * layer's input is data, whose gradient nobody reads: `withInputGradient: false` returns zeros
 * for it instead of paying for a convolution.
 */
function conv2dSame(withInputGradient: boolean) {
  const tf = tfjs()
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor4D
    const w = args[1] as tf.Tensor4D
    const save = args[2] as tf.GradSaveFunc
    save([x, w])
    return {
      value: tf.conv2d(x, w, 1, 'same'),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedW] = saved as [tf.Tensor4D, tf.Tensor4D]
        const dy4 = dy as tf.Tensor4D
        const dx = withInputGradient ? inputGradient(dy4, savedW) : tf.zerosLike(savedX)
        return [dx, filterGradient(savedX, dy4)]
      },
    }
  })
}

/** Repeats each pixel of [b, h, w, c] into a 2×2 block: [b, 2h, 2w, c]. */
function upsample2(t: tf.Tensor4D): tf.Tensor4D {
  const tf = tfjs()
  // Nearest-neighbour resizing by exactly 2 maps output (y, x) to input (⌊y/2⌋, ⌊x/2⌋); it is a
  // native WASM kernel, unlike a 6-D tile (measured 117 ms per CNN gradient).
  return tf.image.resizeNearestNeighbor(t, [2 * t.shape[1], 2 * t.shape[2]])
}

/**
 * A 2×2 stride-2 max-pooling whose gradient routes dy to the window's maximum through a mask
 * (x == upsampled max) instead of the MaxPoolGrad kernel, which is slower on WASM (measured
 * 4.8 vs 2.6 ms, first layer, batch 32). Exact ties share the gradient instead of giving it to the first
 * maximum; after a ReLU the only ties with any probability are all-zero windows, whose
 * gradient the ReLU then zeroes anyway.
 */
function maxPool2() {
  const tf = tfjs()
  return tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor4D
    const save = args[1] as tf.GradSaveFunc
    const value = tf.maxPool(x, 2, 2, 'valid')
    save([x, value])
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [savedX, savedY] = saved as [tf.Tensor4D, tf.Tensor4D]
        const mask = tf.cast(tf.equal(savedX, upsample2(savedY)), 'float32')
        return tf.mul(mask, upsample2(dy as tf.Tensor4D))
      },
    }
  })
}

/** The CNN's custom-gradient ops, made once, at the first CNN forward pass (they need tfjs-core). */
let cnnOps:
  | {
      convOnData: ReturnType<typeof conv2dSame>
      convHidden: ReturnType<typeof conv2dSame>
      maxPool: ReturnType<typeof maxPool2>
    }
  | undefined
function cnnOpsOf() {
  cnnOps ??= { convOnData: conv2dSame(false), convHidden: conv2dSame(true), maxPool: maxPool2() }
  return cnnOps
}

/** conv5×5(c1)+ReLU → maxpool 2 → conv5×5(c2)+ReLU → maxpool 2 → dense(classes). */
export function cnn(init: ModelInit = {}): Model {
  const side = positiveInteger('imageSize', init.imageSize ?? modelDefaults.imageSize)
  if (side % 4 !== 0) {
    throw new InvalidModelOptionError({
      option: 'imageSize',
      value: side,
      requirement: 'divisible by 4 (two 2×2 poolings)',
    })
  }
  const classes = positiveInteger('classes', init.classes ?? modelDefaults.classes)
  const [c1, c2] = (init.channels ?? modelDefaults.channels).map((c, i) =>
    positiveInteger(`channels[${i}]`, c),
  ) as [number, number]
  const flat = (side / 4) * (side / 4) * c2
  const layout = createLayout([
    { name: 'conv0/filter', shape: [KERNEL, KERNEL, 1, c1], init: { kind: 'he', fanIn: KERNEL * KERNEL } },
    { name: 'conv0/bias', shape: [c1], init: { kind: 'zeros' } },
    {
      name: 'conv1/filter',
      shape: [KERNEL, KERNEL, c1, c2],
      init: { kind: 'he', fanIn: KERNEL * KERNEL * c1 },
    },
    { name: 'conv1/bias', shape: [c2], init: { kind: 'zeros' } },
    { name: 'dense/weights', shape: [flat, classes], init: { kind: 'glorot', fanIn: flat, fanOut: classes } },
    { name: 'dense/bias', shape: [classes], init: { kind: 'zeros' } },
  ])
  return build(
    {
      name: 'cnn',
      task: 'classification',
      inputShape: [side, side, 1],
      classes,
      layout,
      forward: ([f0, b0, f1, b1, w, b], x) => {
        const tf = tfjs()
        const { convOnData, convHidden, maxPool } = cnnOpsOf()
        const input = tf.reshape(x, [-1, side, side, 1]) as tf.Tensor4D
        const h0 = maxPool(tf.relu(tf.add(convOnData(input, f0!), b0!)) as tf.Tensor4D) as tf.Tensor4D
        const h1 = maxPool(tf.relu(tf.add(convHidden(h0, f1!), b1!)) as tf.Tensor4D)
        return tf.add(tf.matMul(tf.reshape(h1, [-1, flat]) as tf.Tensor2D, w as tf.Tensor2D), b!)
      },
    },
    init.seed ?? modelDefaults.seed,
  )
}
