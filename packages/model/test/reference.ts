/**
 * An independent float64 forward pass of the four architectures, in plain loops, written from
 * their definitions (not from the tfjs code): the finite differences of this loss are the
 * reference the tfjs gradients are checked against. float64 lets the step be 1e-6, which makes
 * crossing a ReLU or max-pool kink improbable and leaves rounding noise near 1e-10.
 */
import type { Dataset, Model } from '../src/index.js'

function tensor(model: Model, params: Float64Array, name: string): Float64Array {
  const entry = model.layout.entries.find((e) => e.name === name)
  if (entry === undefined) throw new Error(`no tensor ${name} in ${model.name}`)
  return params.subarray(entry.offset, entry.offset + entry.size)
}

/** x·W + b for one sample; W is [inputs, outputs] row-major. */
function dense(x: ArrayLike<number>, w: Float64Array, b: Float64Array): Float64Array {
  const outputs = b.length
  const y = Float64Array.from(b)
  for (let i = 0; i < x.length; i++) {
    const xi = x[i]!
    if (xi === 0) continue
    for (let o = 0; o < outputs; o++) y[o] = y[o]! + xi * w[i * outputs + o]!
  }
  return y
}

const relu = (v: Float64Array) => v.map((x) => Math.max(0, x))

function crossEntropy(logits: Float64Array, label: number): number {
  const max = Math.max(...logits)
  let sum = 0
  for (const l of logits) sum += Math.exp(l - max)
  return max + Math.log(sum) - logits[label]!
}

/** 'same' 5×5 stride-1 convolution of an [h, w, cin] image by a [5, 5, cin, cout] filter, plus bias. */
function conv(
  image: Float64Array,
  side: number,
  cin: number,
  filter: Float64Array,
  bias: Float64Array,
): Float64Array {
  const cout = bias.length
  const out = new Float64Array(side * side * cout)
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      for (let o = 0; o < cout; o++) {
        let s = bias[o]!
        for (let kh = 0; kh < 5; kh++) {
          const iy = y + kh - 2
          if (iy < 0 || iy >= side) continue
          for (let kw = 0; kw < 5; kw++) {
            const ix = x + kw - 2
            if (ix < 0 || ix >= side) continue
            for (let c = 0; c < cin; c++)
              s += image[(iy * side + ix) * cin + c]! * filter[((kh * 5 + kw) * cin + c) * cout + o]!
          }
        }
        out[(y * side + x) * cout + o] = s
      }
    }
  }
  return out
}

function maxPool2(image: Float64Array, side: number, channels: number): Float64Array {
  const half = side / 2
  const out = new Float64Array(half * half * channels)
  for (let y = 0; y < half; y++) {
    for (let x = 0; x < half; x++) {
      for (let c = 0; c < channels; c++) {
        let m = -Infinity
        for (let dy = 0; dy < 2; dy++) {
          for (let dx = 0; dx < 2; dx++)
            m = Math.max(m, image[((2 * y + dy) * side + 2 * x + dx) * channels + c]!)
        }
        out[(y * half + x) * channels + c] = m
      }
    }
  }
  return out
}

/** Mean loss of `model` at float64 `params` on `batch`. */
export function referenceLoss(model: Model, params: Float64Array, batch: Dataset): number {
  const width = model.inputShape.reduce((a, b) => a * b, 1)
  let total = 0
  for (let s = 0; s < batch.size; s++) {
    const x = batch.features.subarray(s * width, (s + 1) * width)
    if (batch.task === 'regression') {
      const y = dense(x, tensor(model, params, 'weights'), tensor(model, params, 'bias'))[0]!
      total += 0.5 * (y - batch.targets[s]!) ** 2
      continue
    }
    let logits: Float64Array
    if (model.name === 'logistic') {
      logits = dense(x, tensor(model, params, 'weights'), tensor(model, params, 'bias'))
    } else if (model.name === 'mlp') {
      const layers = model.layout.entries.length / 2
      let h: ArrayLike<number> = x
      for (let l = 0; l < layers; l++) {
        const z = dense(
          h,
          tensor(model, params, `dense${l}/weights`),
          tensor(model, params, `dense${l}/bias`),
        )
        h = l < layers - 1 ? relu(z) : z
      }
      logits = h as Float64Array
    } else {
      const side = model.inputShape[0]!
      const f0 = tensor(model, params, 'conv0/filter')
      const b0 = tensor(model, params, 'conv0/bias')
      const b1 = tensor(model, params, 'conv1/bias')
      const h0 = maxPool2(relu(conv(Float64Array.from(x), side, 1, f0, b0)), side, b0.length)
      const h1 = maxPool2(
        relu(conv(h0, side / 2, b0.length, tensor(model, params, 'conv1/filter'), b1)),
        side / 2,
        b1.length,
      )
      logits = dense(h1, tensor(model, params, 'dense/weights'), tensor(model, params, 'dense/bias'))
    }
    total += crossEntropy(logits, batch.labels[s]!)
  }
  return total / batch.size
}
