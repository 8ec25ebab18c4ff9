/**
 * Splitting a training set across n workers, seeded and reproducible:
 * - iid: a shuffled split into n near-equal parts;
 * - dirichlet: for each class, proportions p ~ Dir(α·1_n) decide how its samples are spread
 *   (Hsu et al. 2019); small α (0.1) gives very skewed workers, large α (100) nearly iid;
 * - shards: samples sorted by label, cut into n·shardsPerWorker shards, each worker gets
 *   shardsPerWorker random shards (McMahan et al. 2017): with 2, most workers see two classes.
 */
import { createRandom, type Random, shuffledIndices } from '@phalanx/aggregation'
import { InvalidModelOptionError, PartitionError } from '../errors.js'
import { type ClassificationDataset, type Dataset, subset } from './dataset.js'

export type PartitionInit =
  | { readonly scheme: 'iid'; readonly workers: number; readonly seed: number }
  | {
      readonly scheme: 'dirichlet'
      readonly workers: number
      readonly seed: number
      readonly alpha: number
      /** Redraw until every worker has at least this many samples (default 1). */
      readonly minSamplesPerWorker?: number
    }
  | {
      readonly scheme: 'shards'
      readonly workers: number
      readonly seed: number
      readonly shardsPerWorker?: number
    }

export const partitionDefaults = {
  minSamplesPerWorker: 1,
  // Two shards per worker is the setting of McMahan et al. (FedAvg), the usual pathological non-iid case.
  shardsPerWorker: 2,
  // A draw leaving a worker under minSamplesPerWorker is redrawn; this many failures means α or n is hopeless.
  dirichletAttempts: 1_000,
} as const

/** The samples of each worker's shard, as datasets named `<name>/worker-<i>`. */
export function partition<D extends Dataset>(dataset: D, init: PartitionInit): D[] {
  const { workers, seed } = init
  if (!Number.isInteger(workers) || workers < 1) {
    throw new InvalidModelOptionError({ option: 'workers', value: workers, requirement: 'an integer ≥ 1' })
  }
  if (dataset.size < workers) {
    throw new PartitionError({
      scheme: init.scheme,
      workers,
      samples: dataset.size,
      problem: 'fewer samples than workers',
    })
  }
  const random = createRandom(seed)
  let assignment: number[][]
  switch (init.scheme) {
    case 'iid':
      assignment = splitEvenly(shuffledIndices(dataset.size, random), workers)
      break
    case 'dirichlet':
      assignment = dirichletAssignment(
        requireClassification(dataset, 'dirichlet'),
        workers,
        init.alpha,
        init.minSamplesPerWorker ?? partitionDefaults.minSamplesPerWorker,
        random,
      )
      break
    case 'shards':
      assignment = shardAssignment(
        requireClassification(dataset, 'shards'),
        workers,
        init.shardsPerWorker ?? partitionDefaults.shardsPerWorker,
        random,
      )
      break
  }
  return assignment.map((indices, worker) => subset(dataset, indices, `${dataset.name}/worker-${worker}`))
}

function requireClassification(dataset: Dataset, scheme: string): ClassificationDataset {
  if (dataset.task !== 'classification') {
    throw new PartitionError({
      scheme,
      workers: 0,
      samples: dataset.size,
      problem: `needs class labels, ${dataset.name} is a regression dataset`,
    })
  }
  return dataset
}

function splitEvenly(order: readonly number[], parts: number): number[][] {
  const result: number[][] = []
  for (let p = 0; p < parts; p++) {
    result.push(
      order.slice(Math.floor((p * order.length) / parts), Math.floor(((p + 1) * order.length) / parts)),
    )
  }
  return result
}

function indicesByClass(dataset: ClassificationDataset, random: Random): number[][] {
  const byClass: number[][] = Array.from({ length: dataset.classes }, () => [])
  for (let i = 0; i < dataset.size; i++) byClass[dataset.labels[i]!]!.push(i)
  return byClass.map((indices) => shuffledIndices(indices.length, random).map((i) => indices[i]!))
}

/** Marsaglia–Tsang gamma sampler; α < 1 is boosted through Gamma(α+1)·U^(1/α). */
function sampleGamma(alpha: number, random: Random): number {
  if (alpha < 1) {
    let u = 0
    while (u === 0) u = random.next()
    return sampleGamma(alpha + 1, random) * u ** (1 / alpha)
  }
  const d = alpha - 1 / 3
  const c = 1 / Math.sqrt(9 * d)
  for (;;) {
    let x: number
    let v: number
    do {
      x = random.normal()
      v = 1 + c * x
    } while (v <= 0)
    v = v * v * v
    const u = random.next()
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v
  }
}

function dirichletAssignment(
  dataset: ClassificationDataset,
  workers: number,
  alpha: number,
  minSamples: number,
  random: Random,
): number[][] {
  if (!(alpha > 0) || !Number.isFinite(alpha)) {
    throw new InvalidModelOptionError({ option: 'alpha', value: alpha, requirement: 'a finite number > 0' })
  }
  if (minSamples * workers > dataset.size) {
    throw new PartitionError({
      scheme: 'dirichlet',
      workers,
      samples: dataset.size,
      problem: `cannot give each worker ${minSamples} samples`,
    })
  }
  const byClass = indicesByClass(dataset, random)
  for (let attempt = 0; attempt < partitionDefaults.dirichletAttempts; attempt++) {
    const assignment: number[][] = Array.from({ length: workers }, () => [])
    for (const indices of byClass) {
      const weights = Array.from({ length: workers }, () => sampleGamma(alpha, random))
      const total = weights.reduce((a, b) => a + b, 0)
      let start = 0
      let cumulative = 0
      for (let w = 0; w < workers; w++) {
        cumulative += weights[w]!
        // The last worker takes the remainder so rounding never drops a sample.
        const end = w === workers - 1 ? indices.length : Math.round((cumulative / total) * indices.length)
        for (let k = start; k < end; k++) assignment[w]!.push(indices[k]!)
        start = Math.max(start, end)
      }
    }
    if (assignment.every((indices) => indices.length >= minSamples)) return assignment
  }
  throw new PartitionError({
    scheme: 'dirichlet',
    workers,
    samples: dataset.size,
    problem: `no draw in ${partitionDefaults.dirichletAttempts} gave every worker ≥ ${minSamples} samples at α = ${alpha}`,
  })
}

function shardAssignment(
  dataset: ClassificationDataset,
  workers: number,
  shardsPerWorker: number,
  random: Random,
): number[][] {
  if (!Number.isInteger(shardsPerWorker) || shardsPerWorker < 1) {
    throw new InvalidModelOptionError({
      option: 'shardsPerWorker',
      value: shardsPerWorker,
      requirement: 'an integer ≥ 1',
    })
  }
  const shardCount = workers * shardsPerWorker
  if (shardCount > dataset.size) {
    throw new PartitionError({
      scheme: 'shards',
      workers,
      samples: dataset.size,
      problem: `${shardCount} shards need at least as many samples`,
    })
  }
  // Shuffle within each class first so a shard is a random sample of its labels, not the file order.
  const sorted = indicesByClass(dataset, random).flat()
  const shards = splitEvenly(sorted, shardCount)
  const shardOrder = shuffledIndices(shardCount, random)
  return Array.from({ length: workers }, (_, w) =>
    shardOrder.slice(w * shardsPerWorker, (w + 1) * shardsPerWorker).flatMap((s) => shards[s]!),
  )
}
