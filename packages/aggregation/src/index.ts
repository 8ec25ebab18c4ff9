/**
 * @phalanx/aggregation — Byzantine-resilient gradient aggregation over Float32Array: pure
 * functions, no I/O, the exact definitions of the design brief. Rules take n inputs (up to f
 * Byzantine) and return a new vector; pre-aggregators return new vectors; every call outside
 * a rule's bound, or with bad input, throws a named error from `errors.ts`.
 *
 * @example
 * ```ts
 * import { compose, krum, rules, isRuleName } from '@phalanx/aggregation'
 *
 * const aggregate = krum(gradients, { f: 2 }) // needs n ≥ 2f+3
 * const name = 'median'
 * if (isRuleName(name) && rules[name].bound(gradients.length, 2)) rules[name].aggregate(gradients, { f: 2 })
 * const nnmKrum = compose({ name: 'nnm', options: { f: 2 } }, rules.krum)
 * nnmKrum(gradients, { f: 2 })
 * ```
 *
 * Speed: pairwise distances come from one blocked Gram matrix and coordinate-wise rules from
 * sorting networks, both as WASM SIMD kernels over cache-resident tiles (portable JS kernels
 * where WASM SIMD is missing; `setKernelBackend('js')` forces them). Async multi-threaded
 * variants of Krum, Multi-Krum, Bulyan, median, trimmed mean and meamed live in the subpath
 * `@phalanx/aggregation/parallel` (worker_threads; kept out of this entry point so importing
 * the rules starts no threads and needs no Node-only module).
 */
export type { CoordinateMode } from './coordinatewise.js'
export { CANCELLATION_GUARD, type DistanceMatrix, pairwiseSquaredDistances } from './distances.js'
export {
  type AggregationErrorCode,
  aggregationErrorCodes,
  BoundError,
  DimensionMismatchError,
  EmptyInputError,
  InvalidOptionError,
  NonFiniteInputError,
  SubsetLimitError,
  UnknownWorkerError,
} from './errors.js'
export {
  type KardamDampening,
  type KardamDecision,
  KardamFilter,
  type KardamInit,
  type KardamReason,
  type KardamSubmission,
  kardamDampening,
} from './kardam.js'
export type {
  ArcOptions,
  AverageOptions,
  BucketingOptions,
  BulyanOptions,
  CenteredClippingOptions,
  ClipOptions,
  FOptions,
  GeometricMedianOptions,
  KrumOptions,
  MdaOptions,
  MeamedOptions,
  MedianOptions,
  MultiKrumOptions,
  NnmOptions,
  OptionalFOptions,
  TrimmedMeanOptions,
} from './options.js'
export { defaults } from './options.js'
export { arc, bucketing, clip, nnm } from './pre.js'
export type { Random } from './random.js'
export { createRandom, shuffledIndices } from './random.js'
export type {
  Aggregate,
  PreAggregate,
  PreAggregatorContext,
  PreAggregatorName,
  PreAggregatorOptionsMap,
  PreAggregatorSetting,
  PreStep,
  RuleContext,
  RuleEntry,
  RuleName,
  RuleOptionsMap,
} from './registry.js'
export {
  compose,
  isPreAggregatorName,
  isRuleName,
  preAggregatorNames,
  preAggregatorSettings,
  preAggregators,
  ruleNames,
  rules,
} from './registry.js'
export { average, meamed, median, trimmedMean } from './rules/coordinate.js'
export { centeredClipping, geometricMedian } from './rules/iterative.js'
export { bulyan, bulyanSelect, type KrumSelection, krum, krumSelect, multiKrum } from './rules/krum.js'
export { binomial, type MdaSelection, mda, mdaSelect } from './rules/mda.js'
export { momentumStep, sgdStep } from './step.js'
export { type Bound, bounds } from './validate.js'
export { l2Distance } from './vector.js'
export { kernelBackend, setKernelBackend, wasmSimdAvailable } from './wasm/kernels.js'
