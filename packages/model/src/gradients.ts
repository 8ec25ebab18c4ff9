/**
 * Gradient functions for the kernels our models differentiate through.
 *
 * Why this file exists: tfjs-core registers its gradients only from
 * `@tensorflow/tfjs-core/dist/register_all_gradients.js`, an ES module whose relative imports
 * have no file extension, which Node's ESM loader refuses (ERR_UNSUPPORTED_DIR_IMPORT); the
 * CommonJS bundle Node loads (`tf-core.node.js`) contains no gradient at all. So tf.grads on
 * plain tfjs-core in Node fails with "gradient function not found". These configs follow
 * tfjs-core's own (Apache-2.0) definitions for the cases our models use; a gradient already
 * registered (e.g. by the full tfjs-node package) is kept.
 */
import type * as tf from '@tensorflow/tfjs-core'
import { tfjs } from './tf.js'

type Saved = tf.Tensor[]

/** Sums dy over the axes along which `shape` was broadcast, then restores `shape`. */
function unbroadcast(dy: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const tf = tfjs()
  const axes = tf.backend_util.getReductionAxes([...shape], dy.shape)
  return tf.reshape(axes.length > 0 ? tf.sum(dy, axes) : dy, [...shape])
}

function pair(saved: Saved): [tf.Tensor, tf.Tensor] {
  return [saved[0]!, saved[1]!]
}

/** Built when first registered: the kernel names are tfjs-core's, which loads lazily (tf.ts). */
const configs = (tf: ReturnType<typeof tfjs>): tf.GradConfig[] => [
  {
    kernelName: tf.Add,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = pair(saved)
      return {
        a: () => unbroadcast(dy as tf.Tensor, a.shape),
        b: () => unbroadcast(dy as tf.Tensor, b.shape),
      }
    },
  },
  {
    kernelName: tf.Sub,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = pair(saved)
      return {
        a: () => unbroadcast(dy as tf.Tensor, a.shape),
        b: () => tf.neg(unbroadcast(dy as tf.Tensor, b.shape)),
      }
    },
  },
  {
    kernelName: tf.Multiply,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = pair(saved)
      return {
        a: () => unbroadcast(tf.mul(dy as tf.Tensor, tf.cast(b, 'float32')), a.shape),
        b: () => unbroadcast(tf.mul(dy as tf.Tensor, tf.cast(a, 'float32')), b.shape),
      }
    },
  },
  {
    kernelName: tf.RealDiv,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved) => {
      const [a, b] = pair(saved)
      return {
        a: () => unbroadcast(tf.div(dy as tf.Tensor, tf.cast(b, 'float32')), a.shape),
        b: () =>
          tf.neg(
            unbroadcast(
              tf.div(tf.mul(dy as tf.Tensor, tf.cast(a, 'float32')), tf.cast(tf.square(b), 'float32')),
              b.shape,
            ),
          ),
      }
    },
  },
  { kernelName: tf.Cast, gradFunc: (dy) => ({ x: () => tf.clone(dy as tf.Tensor) }) },
  { kernelName: tf.Identity, gradFunc: (dy) => ({ x: () => tf.clone(dy as tf.Tensor) }) },
  { kernelName: tf.Neg, gradFunc: (dy) => ({ x: () => tf.neg(dy as tf.Tensor) }) },
  {
    kernelName: tf.Sum,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0]!
      const axes = tf.util.parseAxisParam((attrs as unknown as tf.SumAttrs).axis, x.shape)
      const expanded = x.shape.map((size, axis) => (axes.includes(axis) ? 1 : size))
      return { x: () => tf.mul(tf.reshape(dy as tf.Tensor, expanded), tf.ones(x.shape, 'float32')) }
    },
  },
  {
    kernelName: tf.Square,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy as tf.Tensor, tf.mul(tf.cast(saved[0]!, 'float32'), 2)) }),
  },
  {
    kernelName: tf.Reshape,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.reshape(dy as tf.Tensor, saved[0]!.shape) }),
  },
  {
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({ x: () => tf.mul(dy as tf.Tensor, tf.cast(tf.step(saved[0]!), 'float32')) }),
  },
  {
    kernelName: tf.BatchMatMul,
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = pair(saved)
      const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs
      const d = dy as tf.Tensor
      if (!transposeA && !transposeB) {
        return { a: () => tf.matMul(d, b, false, true), b: () => tf.matMul(a, d, true, false) }
      }
      if (!transposeA && transposeB) {
        return { a: () => tf.matMul(d, b, false, false), b: () => tf.matMul(d, a, true, false) }
      }
      if (transposeA && !transposeB) {
        return { a: () => tf.matMul(b, d, false, true), b: () => tf.matMul(a, d, false, false) }
      }
      return { a: () => tf.matMul(b, d, true, true), b: () => tf.matMul(d, a, true, true) }
    },
  },
  {
    kernelName: tf.MaxPool,
    inputsToSave: ['x'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, y] = pair(saved)
      const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.MaxPoolAttrs
      return {
        x: () =>
          tf.engine().runKernel(tf.MaxPoolGrad, { dy: dy as tf.Tensor, input: x, output: y }, {
            filterSize,
            strides,
            pad,
            dimRoundingMode,
          } as unknown as tf.NamedAttrMap) as tf.Tensor,
      }
    },
  },
]

let registered = false

/** Registers the gradients missing from the engine; safe to call more than once. */
export function registerModelGradients(): void {
  if (registered) return
  const tf = tfjs()
  for (const config of configs(tf)) {
    if (tf.getGradient(config.kernelName) === undefined) tf.registerGradient(config)
  }
  registered = true
}
