/**
 * Datasets are kept compact: one Float32Array of features (row-major, one sample after the
 * other) and one Int32Array of class labels (or Float32Array of regression targets). A batch
 * is simply a small dataset.
 */
import { createRandom, type Random, shuffledIndices } from '@phalanx/aggregation'
import { InvalidModelOptionError } from '../errors.js'

interface DatasetBase {
  /** Where the samples came from, e.g. 'mnist/train'. */
  readonly name: string
  /** Number of samples. */
  readonly size: number
  /** Shape of one sample, e.g. [28, 28, 1] or [d]. */
  readonly featureShape: readonly number[]
  /** size × prod(featureShape) values, sample-major. */
  readonly features: Float32Array
}

export interface ClassificationDataset extends DatasetBase {
  readonly task: 'classification'
  /** Number of classes; labels are in [0, classes). */
  readonly classes: number
  readonly labels: Int32Array
}

export interface RegressionDataset extends DatasetBase {
  readonly task: 'regression'
  readonly targets: Float32Array
}

export type Dataset = ClassificationDataset | RegressionDataset

/** A training/test pair as every loader returns it. */
export interface DatasetSplit<D extends Dataset = Dataset> {
  readonly train: D
  readonly test: D
}

/** Number of values in one sample. */
export function featureSize(dataset: Pick<Dataset, 'featureShape'>): number {
  return dataset.featureShape.reduce((a, b) => a * b, 1)
}

/** A new dataset holding the samples at `indices`, in that order (copies the data). */
export function subset<D extends Dataset>(dataset: D, indices: ArrayLike<number>, name = dataset.name): D {
  const width = featureSize(dataset)
  const features = new Float32Array(indices.length * width)
  for (let i = 0; i < indices.length; i++) {
    const from = indices[i]! * width
    features.set(dataset.features.subarray(from, from + width), i * width)
  }
  if (dataset.task === 'classification') {
    const labels = new Int32Array(indices.length)
    for (let i = 0; i < indices.length; i++) labels[i] = dataset.labels[indices[i]!]!
    return { ...dataset, name, size: indices.length, features, labels }
  }
  const targets = new Float32Array(indices.length)
  for (let i = 0; i < indices.length; i++) targets[i] = dataset.targets[indices[i]!]!
  return { ...dataset, name, size: indices.length, features, targets }
}

/** Draws batches without replacement within an epoch, reshuffling (seeded) at each epoch. */
export interface BatchSampler<D extends Dataset = Dataset> {
  next(): D
  /** Completed passes over the data. */
  readonly epoch: number
}

export interface BatchSamplerInit {
  readonly batchSize: number
  readonly seed: number
}

export function createBatchSampler<D extends Dataset>(dataset: D, init: BatchSamplerInit): BatchSampler<D> {
  if (!Number.isInteger(init.batchSize) || init.batchSize < 1) {
    throw new InvalidModelOptionError({
      option: 'batchSize',
      value: init.batchSize,
      requirement: 'an integer ≥ 1',
    })
  }
  if (dataset.size < 1) {
    throw new InvalidModelOptionError({
      option: 'dataset.size',
      value: dataset.size,
      requirement: 'at least one sample',
    })
  }
  const random: Random = createRandom(init.seed)
  // A batch larger than the shard takes the whole shard, as a worker with little data would.
  const batchSize = Math.min(init.batchSize, dataset.size)
  let order = shuffledIndices(dataset.size, random)
  let position = 0
  let epoch = 0
  return {
    get epoch() {
      return epoch
    },
    next() {
      if (position + batchSize > dataset.size) {
        order = shuffledIndices(dataset.size, random)
        position = 0
        epoch++
      }
      const indices = order.slice(position, position + batchSize)
      position += batchSize
      return subset(dataset, indices)
    },
  }
}
