import { UnknownDatasetError } from '../errors.js'
import type { DatasetSplit } from './dataset.js'
import { FASHION_MNIST_DEFAULT_DIR, loadFashionMnist } from './idx.js'
import { loadEmbeddedMnist } from './mnist.js'
import { syntheticLinearRegression } from './synthetic.js'

export const datasetNames = ['mnist', 'fashion-mnist', 'synthetic'] as const
export type DatasetName = (typeof datasetNames)[number]

export interface LoadDatasetInit {
  /** fashion-mnist: directory of the IDX files. */
  readonly fashionMnistDir?: string
  /** fashion-mnist: keep only the first samples of each set. */
  readonly trainLimit?: number
  readonly testLimit?: number
  /** synthetic: dimension d, label noise, sizes and seed. */
  readonly dimension?: number
  readonly noise?: number
  readonly trainSize?: number
  readonly testSize?: number
  readonly seed?: number
}

export const datasetDefaults = {
  fashionMnistDir: FASHION_MNIST_DEFAULT_DIR,
  // Small enough that a gradient is microseconds, large enough to show the attacks' effect.
  dimension: 100,
} as const

/** Loads a dataset by name; throws UnknownDatasetError on a name outside `datasetNames`. */
export async function loadDataset(name: string, init: LoadDatasetInit = {}): Promise<DatasetSplit> {
  switch (name as DatasetName) {
    case 'mnist':
      return loadEmbeddedMnist()
    case 'fashion-mnist':
      return loadFashionMnist({
        dir: init.fashionMnistDir ?? datasetDefaults.fashionMnistDir,
        ...(init.trainLimit === undefined ? {} : { trainLimit: init.trainLimit }),
        ...(init.testLimit === undefined ? {} : { testLimit: init.testLimit }),
      })
    case 'synthetic':
      return syntheticLinearRegression({ ...init, dimension: init.dimension ?? datasetDefaults.dimension })
    default:
      throw new UnknownDatasetError({ dataset: name, known: datasetNames })
  }
}
