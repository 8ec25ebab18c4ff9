/**
 * @phalanx/model — TensorFlow.js models seen as one flat Float32Array of parameters and the
 * datasets they train on. The single-process trainer built on them is `@phalanx/lab`'s `train`.
 *
 * @example
 * ```ts
 * import { createModel, initBackend, loadDataset } from '@phalanx/model'
 *
 * await initBackend({ backend: 'auto', logger }) // tfjs-node → wasm → cpu
 * const { train: trainSet, test } = await loadDataset('mnist')
 * const model = createModel('mlp', { seed: 1 })
 * const g = model.gradient(model.parameters(), trainSet) // Float32Array of model.dimension
 * console.log(model.evaluate(model.parameters(), test).accuracy)
 * ```
 */

export type { BackendInfo, BackendInit, BackendName } from './backend.js'
export { backendInfo, backendNames, initBackend } from './backend.js'
export type {
  BatchSampler,
  BatchSamplerInit,
  ClassificationDataset,
  Dataset,
  DatasetSplit,
  RegressionDataset,
} from './data/dataset.js'
export { createBatchSampler, featureSize, subset } from './data/dataset.js'
export type { FashionMnistInit, ReadIdxOptions } from './data/idx.js'
export {
  FASHION_MNIST_DEFAULT_DIR,
  FASHION_MNIST_INSTALL_HINT,
  IDX_DEFAULTS,
  loadFashionMnist,
  readIdx,
} from './data/idx.js'
export { loadEmbeddedMnist, MNIST_SPLIT_SEED, MNIST_TRAIN_FRACTION } from './data/mnist.js'
export type { PartitionInit } from './data/partition.js'
export { partition, partitionDefaults } from './data/partition.js'
export type { LabelFlipInit } from './data/poison.js'
export { flipLabels } from './data/poison.js'
export type { DatasetName, LoadDatasetInit } from './data/registry.js'
export { datasetDefaults, datasetNames, loadDataset } from './data/registry.js'
export type { SyntheticRegression, SyntheticRegressionInit } from './data/synthetic.js'
export { syntheticLinearRegression } from './data/synthetic.js'
export {
  BackendUnavailableError,
  BatchShapeError,
  DatasetFileMissingError,
  DatasetTooLargeError,
  IdxFormatError,
  InvalidModelOptionError,
  type ModelErrorCode,
  modelErrorCodes,
  ParameterLengthError,
  PartitionError,
  UnknownDatasetError,
  UnknownModelError,
} from './errors.js'
export type {
  Architecture,
  EvaluateOptions,
  Evaluation,
  Initializer,
  Model,
  ParameterEntry,
  ParameterLayout,
} from './model.js'
export { createLayout, createTfModel, evaluateDefaults, initialParameters } from './model.js'
export type { ModelInit, ModelName } from './models.js'
export {
  cnn,
  createModel,
  linearRegression,
  logisticRegression,
  mlp,
  modelDefaults,
  modelNames,
} from './models.js'
