/**
 * Label flipping, the data-poisoning attack a Byzantine worker applies to its own shard: it
 * then computes honest-looking gradients on wrong labels.
 */
import { InvalidModelOptionError } from '../errors.js'
import type { ClassificationDataset } from './dataset.js'

export interface LabelFlipInit {
  /**
   * New label of each old label: an array indexed by label, or a function. Default y → (classes−1)−y,
   * i.e. 9−y on digits (Fang et al. 2020; ByzFL's "LabelFlipping").
   */
  readonly map?: readonly number[] | ((label: number) => number)
}

export function flipLabels(dataset: ClassificationDataset, init: LabelFlipInit = {}): ClassificationDataset {
  const { classes } = dataset
  const map = init.map ?? ((label: number) => classes - 1 - label)
  const lookup = Array.from({ length: classes }, (_, label) =>
    typeof map === 'function' ? map(label) : map[label],
  )
  lookup.forEach((target, label) => {
    if (target === undefined || !Number.isInteger(target) || target < 0 || target >= classes) {
      throw new InvalidModelOptionError({
        option: `labelFlip.map[${label}]`,
        value: target,
        requirement: `an integer label in [0, ${classes})`,
      })
    }
  })
  const labels = dataset.labels.map((label) => lookup[label]!)
  return { ...dataset, name: `${dataset.name}/label-flipped`, labels }
}
