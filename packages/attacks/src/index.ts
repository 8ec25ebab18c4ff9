/**
 * @phalanx/attacks — Byzantine behaviours as pure functions of the honest vectors of a round.
 * The threat model is omniscient: colluding Byzantine workers (or servers) read every honest
 * vector before sending, but cannot forge signatures. No attack mutates its inputs; each
 * returns a new Float32Array.
 *
 * @example
 * ```ts
 * import { krum } from '@phalanx/aggregation'
 * import { alie, byzantineVectors, optimalIpm } from '@phalanx/attacks'
 *
 * const attack = alie(honest, { f: 3 }) // z from the paper's formula
 * const round = [...honest, ...byzantineVectors({ name: 'ipm', options: { epsilon: 0.5 } }, honest, 3)]
 * const { vector, scale } = optimalIpm(honest, { rule: krum, f: 3 })
 * ```
 */

export {
  AlieZUndefinedError,
  type AttackErrorCode,
  attackErrorCodes,
  DimensionMismatchError,
  InvalidAttackOptionError,
  NoHonestVectorsError,
  ProbabilityOutOfRangeError,
} from './errors.js'
export { inverseNormalCdf } from './normal-quantile.js'
export { optimalAlie, optimalIpm } from './optimal.js'
export type {
  AttackEntry,
  ServerAttackConfig,
  ServerAttackEntry,
  ServerAttackName,
  ServerAttackOptions,
  WorkerAttackConfig,
  WorkerAttackName,
  WorkerAttackOptions,
} from './registry.js'
export {
  byzantineVectors,
  runServerAttack,
  runWorkerAttack,
  serverAttackNames,
  serverAttacks,
  workerAttackDefaults,
  workerAttackNames,
  workerAttacks,
} from './registry.js'
export { dropCoordinates, modelShift, randomModel, scaledModel } from './server.js'
export type {
  AggregationRule,
  AlieOptions,
  AttackContext,
  DropCoordinatesOptions,
  GaussianOptions,
  HiddenShiftOptions,
  IpmOptions,
  LineSearchOptions,
  LineSearchResult,
  MimicOptions,
  ModelShiftOptions,
  NonFiniteKind,
  NonFiniteOptions,
  OptimalAlieOptions,
  OptimalIpmOptions,
  RandomModelOptions,
  ScaledModelOptions,
  SignFlipOptions,
  VectorAttack,
} from './types.js'
export { alie, alieZ, gaussian, hiddenShift, ipm, mimic, nonFinite, signFlip } from './worker.js'
