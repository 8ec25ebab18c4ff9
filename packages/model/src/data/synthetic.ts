/**
 * Synthetic linear regression: x ~ N(0, I_d), y = w*·x + b* + noise·N(0, 1), with w* ~ N(0, I_d/d)
 * so that Var(w*·x) ≈ 1 whatever d is (the signal-to-noise ratio is then set by `noise` alone).
 */
import { createRandom } from '@phalanx/aggregation'
import { InvalidModelOptionError } from '../errors.js'
import type { DatasetSplit, RegressionDataset } from './dataset.js'

export interface SyntheticRegressionInit {
  readonly dimension: number
  readonly trainSize?: number
  readonly testSize?: number
  /** Standard deviation of the label noise. */
  readonly noise?: number
  readonly seed?: number
}

export interface SyntheticRegression extends DatasetSplit<RegressionDataset> {
  /** The true weights w* followed by the true bias b*: the optimum of the noiseless problem. */
  readonly trueParameters: Float32Array
}

const syntheticDefaults = { trainSize: 2_000, testSize: 500, noise: 0.1, seed: 1 }

export function syntheticLinearRegression(init: SyntheticRegressionInit): SyntheticRegression {
  const { dimension } = init
  const trainSize = init.trainSize ?? syntheticDefaults.trainSize
  const testSize = init.testSize ?? syntheticDefaults.testSize
  const noise = init.noise ?? syntheticDefaults.noise
  const seed = init.seed ?? syntheticDefaults.seed
  if (!Number.isInteger(dimension) || dimension < 1) {
    throw new InvalidModelOptionError({
      option: 'dimension',
      value: dimension,
      requirement: 'an integer ≥ 1',
    })
  }
  if (!(noise >= 0)) throw new InvalidModelOptionError({ option: 'noise', value: noise, requirement: '≥ 0' })
  const random = createRandom(seed)
  const trueParameters = new Float32Array(dimension + 1)
  const scale = 1 / Math.sqrt(dimension)
  for (let j = 0; j < dimension; j++) trueParameters[j] = random.normal() * scale
  trueParameters[dimension] = random.normal() * 0.1
  const make = (size: number, name: string): RegressionDataset => {
    const features = new Float32Array(size * dimension)
    const targets = new Float32Array(size)
    for (let i = 0; i < size; i++) {
      let y = trueParameters[dimension]!
      for (let j = 0; j < dimension; j++) {
        const x = random.normal()
        features[i * dimension + j] = x
        y += trueParameters[j]! * x
      }
      targets[i] = y + noise * random.normal()
    }
    return { name, task: 'regression', size, featureShape: [dimension], features, targets }
  }
  return {
    train: make(trainSize, `synthetic-${dimension}/train`),
    test: make(testSize, `synthetic-${dimension}/test`),
    trueParameters,
  }
}
