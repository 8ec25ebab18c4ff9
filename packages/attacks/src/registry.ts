import { optimalAlie, optimalIpm } from './optimal.js'
import { requireCount } from './options.js'
import { dropCoordinates, modelShift, randomModel, scaledModel } from './server.js'
import type {
  AlieOptions,
  DropCoordinatesOptions,
  GaussianOptions,
  HiddenShiftOptions,
  IpmOptions,
  MimicOptions,
  ModelShiftOptions,
  NonFiniteOptions,
  OptimalAlieOptions,
  OptimalIpmOptions,
  RandomModelOptions,
  ScaledModelOptions,
  SignFlipOptions,
  VectorAttack,
} from './types.js'
import { alie, gaussian, hiddenShift, ipm, mimic, nonFinite, signFlip } from './worker.js'

/**
 * Each worker attack's name and its options, so a config can pick one by name, typed. Names
 * are the kebab-case ones of the cluster config (`@phalanx/node`'s workerAttackNames);
 * label flipping, silence and equivocation are protocol behaviours, not vectors, so they are
 * not here.
 */
export interface WorkerAttackOptions {
  'sign-flip': SignFlipOptions
  gaussian: GaussianOptions
  ipm: IpmOptions
  alie: AlieOptions
  mimic: MimicOptions
  'non-finite': NonFiniteOptions
  'hidden-shift': HiddenShiftOptions
  'optimal-alie': OptimalAlieOptions
  'optimal-ipm': OptimalIpmOptions
}

export type WorkerAttackName = keyof WorkerAttackOptions

/** A worker attack picked by name with its options, e.g. `{ name: 'ipm', options: { epsilon: 0.5 } }`. */
export type WorkerAttackConfig = {
  [K in WorkerAttackName]: { name: K; options: WorkerAttackOptions[K] }
}[WorkerAttackName]

export const workerAttacks: { readonly [K in WorkerAttackName]: VectorAttack<WorkerAttackOptions[K]> } = {
  'sign-flip': signFlip,
  gaussian,
  ipm,
  alie,
  mimic,
  'non-finite': nonFinite,
  'hidden-shift': hiddenShift,
  'optimal-alie': (honest, options) => optimalAlie(honest, options).vector,
  'optimal-ipm': (honest, options) => optimalIpm(honest, options).vector,
}

export const workerAttackNames = Object.keys(workerAttacks) as readonly WorkerAttackName[]

/**
 * Each server attack's name and options: the vector-shaped ones of the cluster config's
 * serverAttackNames (equivocation, stale replay and crash are protocol behaviours).
 */
export interface ServerAttackOptions {
  random: RandomModelOptions
  reversed: Omit<ScaledModelOptions, 'factor'>
  scaled: ScaledModelOptions
  'drop-coordinates': DropCoordinatesOptions
  shift: ModelShiftOptions
}

export type ServerAttackName = keyof ServerAttackOptions

export type ServerAttackConfig = {
  [K in ServerAttackName]: { name: K; options: ServerAttackOptions[K] }
}[ServerAttackName]

export const serverAttacks: { readonly [K in ServerAttackName]: VectorAttack<ServerAttackOptions[K]> } = {
  random: randomModel,
  reversed: (honest, options) => scaledModel(honest, { ...options, factor: -1 }),
  scaled: scaledModel,
  'drop-coordinates': dropCoordinates,
  shift: modelShift,
}

export const serverAttackNames = Object.keys(serverAttacks) as readonly ServerAttackName[]

/** Runs one worker attack by name. */
export function runWorkerAttack<K extends WorkerAttackName>(
  name: K,
  honest: readonly Float32Array[],
  options: WorkerAttackOptions[K],
): Float32Array {
  const attack: VectorAttack<WorkerAttackOptions[K]> = workerAttacks[name]
  return attack(honest, options)
}

/**
 * The f Byzantine vectors of a round. Colluding workers gain nothing from sending different
 * vectors under the attacks here (identical copies are what pulls Krum-like scores and
 * coordinate ranks hardest), so the attack is crafted once and each of the f workers gets
 * its own copy of it: no two inputs share a buffer, so a rule that wrongly mutated one
 * could not silently change the others.
 */
export function byzantineVectors<K extends WorkerAttackName>(
  config: { name: K; options: WorkerAttackOptions[K] },
  honest: readonly Float32Array[],
  f: number,
): Float32Array[] {
  requireCount('byzantineVectors', 'f', f)
  const vector = runWorkerAttack(config.name, honest, config.options)
  return Array.from({ length: f }, () => Float32Array.from(vector))
}
