import { optimalAlie, optimalIpm } from './optimal.js'
import { requireCount } from './options.js'
import { dropCoordinates, modelShift, randomModel, scaledModel } from './server.js'
import type {
  AttackContext,
  OptimalAlieOptions,
  OptimalIpmOptions,
  ScaledModelOptions,
  VectorAttack,
} from './types.js'
import { alie, gaussian, hiddenShift, ipm, mimic, nonFinite, signFlip } from './worker.js'

/**
 * The one list of the vector attacks: an attack is known by its name here, and nowhere else.
 * `@phalanx/node` builds its config choices, its Byzantine behaviours, the single-process
 * reference's attackers and the chaos `corrupt` command from these tables, so a new attack is
 * its function, its entry here and its test. Label flipping, silence, equivocation, stale
 * replay and crash are protocol behaviours (what is sent to whom, and when), so they live with
 * the node, not here.
 */
export interface AttackEntry<Options> {
  /** The attack: a pure function of the honest vectors of the round. */
  readonly attack: VectorAttack<Options>
  /**
   * Its options for one attacker in one round of a cluster (`context`): the defaults of the
   * attack as the cluster runs it. The node may override the strength (`@phalanx/node`'s
   * attack strength fields).
   */
  readonly options: (context: AttackContext) => NoInfer<Options>
  /** One line for `--help` and the docs. */
  readonly description: string
}

export interface ServerAttackEntry<Options> extends AttackEntry<Options> {
  /**
   * What a Byzantine server gives the attack as the honest vectors: its own honest model
   * (`own`), or its own models of the last rounds (`history`: what it knows of the honest
   * spread, as a server keeps no other server's model).
   */
  readonly reads: 'own' | 'history'
}

/** Infers an entry's options type from its attack, so an entry is written once. */
const workerAttack = <Options>(entry: AttackEntry<Options>): AttackEntry<Options> => entry
const serverAttack = <Options>(entry: ServerAttackEntry<Options>): ServerAttackEntry<Options> => entry

/**
 * The strengths a worker attack runs with unless told otherwise: the one place they are written
 * (the config's `signFlipScale`, `gaussianSigma` and `ipmEpsilon` default to them).
 */
export const workerAttackDefaults = {
  /** −1·mean(honest): the plain sign flip. */
  signFlipScale: 1,
  /** Far outside honest gradients (coordinates of order 0.01–1), so one such vector swamps a mean. */
  gaussianSigma: 200,
  /** A small ε keeps the Byzantine vectors near the honest ones, the regime IPM targets. */
  ipmEpsilon: 0.5,
} as const

export const workerAttacks = {
  'sign-flip': workerAttack({
    attack: signFlip,
    options: () => ({ scale: workerAttackDefaults.signFlipScale }),
    description: 'sends −scale·mean(honest)',
  }),
  gaussian: workerAttack({
    attack: gaussian,
    // The node sets σ from its config (gaussianSigma), as it does every strength.
    options: (context) => ({ sigma: workerAttackDefaults.gaussianSigma, seed: context.seed }),
    description: 'sends N(0, σ²) noise per coordinate',
  }),
  ipm: workerAttack({
    attack: ipm,
    options: () => ({ epsilon: workerAttackDefaults.ipmEpsilon }),
    description: 'inner-product manipulation: sends −ε·mean(honest)',
  }),
  alie: workerAttack({
    attack: alie,
    options: (context) => ({ f: context.f, n: context.n }),
    description: 'a little is enough: mean − z·std per coordinate (z from the paper’s formula)',
  }),
  mimic: workerAttack({
    attack: mimic,
    options: () => ({ target: 0 }),
    description: 'copies one honest worker’s gradient',
  }),
  'non-finite': workerAttack({
    attack: nonFinite,
    options: () => ({ kind: 'nan' as const }),
    description: 'sends NaN vectors (every honest node must drop them)',
  }),
  'hidden-shift': workerAttack({
    attack: hiddenShift,
    options: () => ({}),
    description: 'the honest mean moved by scale·√(Σ Var) along one coordinate',
  }),
  'optimal-alie': workerAttack({
    attack: (honest, options: OptimalAlieOptions) => optimalAlie(honest, options).vector,
    options: (context) => ({ rule: context.rule, f: context.f, n: context.n }),
    description: 'ALIE with z found by line search against the servers’ rule',
  }),
  'optimal-ipm': workerAttack({
    attack: (honest, options: OptimalIpmOptions) => optimalIpm(honest, options).vector,
    options: (context) => ({ rule: context.rule, f: context.f }),
    description: 'IPM with ε found by line search against the servers’ rule',
  }),
}

type OptionsOf<Entry> = Entry extends { readonly attack: VectorAttack<infer Options> }
  ? Exclude<Options, undefined>
  : never

/** Each worker attack's options, by name (from its entry). */
export type WorkerAttackOptions = { [K in keyof typeof workerAttacks]: OptionsOf<(typeof workerAttacks)[K]> }

export type WorkerAttackName = keyof WorkerAttackOptions

/** A worker attack picked by name with its options, e.g. `{ name: 'ipm', options: { epsilon: 0.5 } }`. */
export type WorkerAttackConfig = {
  [K in WorkerAttackName]: { name: K; options: WorkerAttackOptions[K] }
}[WorkerAttackName]

export const workerAttackNames = Object.keys(workerAttacks) as readonly WorkerAttackName[]

export const serverAttacks = {
  random: serverAttack({
    attack: randomModel,
    reads: 'own',
    options: (context) => ({ seed: context.seed, sigma: 1 }),
    description: 'a model of N(0, 1) coordinates',
  }),
  reversed: serverAttack({
    attack: (honest, options: Omit<ScaledModelOptions, 'factor'>) =>
      scaledModel(honest, { ...options, factor: -1 }),
    reads: 'own',
    options: () => ({}),
    description: 'its model times −1',
  }),
  scaled: serverAttack({
    attack: scaledModel,
    reads: 'own',
    options: () => ({ factor: 100 }),
    description: 'its model times 100',
  }),
  'drop-coordinates': serverAttack({
    attack: dropCoordinates,
    reads: 'own',
    options: (context) => ({ fraction: 0.5, seed: context.seed }),
    description: 'its model with half the coordinates set to 0',
  }),
  shift: serverAttack({
    attack: modelShift,
    reads: 'history',
    options: (context) => ({ f: context.f, n: context.n }),
    description: 'ALIE on models: mean − z·std of the models it has seen (small, coordinated)',
  }),
}

/** Each server attack's options, by name (from its entry). */
export type ServerAttackOptions = { [K in keyof typeof serverAttacks]: OptionsOf<(typeof serverAttacks)[K]> }

export type ServerAttackName = keyof ServerAttackOptions

export type ServerAttackConfig = {
  [K in ServerAttackName]: { name: K; options: ServerAttackOptions[K] }
}[ServerAttackName]

export const serverAttackNames = Object.keys(serverAttacks) as readonly ServerAttackName[]

/** Runs one worker attack by name. */
export function runWorkerAttack<K extends WorkerAttackName>(
  name: K,
  honest: readonly Float32Array[],
  options: WorkerAttackOptions[K],
): Float32Array {
  const attack = workerAttacks[name].attack as VectorAttack<WorkerAttackOptions[K]>
  return attack(honest, options)
}

/** Runs one server attack by name. */
export function runServerAttack<K extends ServerAttackName>(
  name: K,
  honest: readonly Float32Array[],
  options: ServerAttackOptions[K],
): Float32Array {
  const attack = serverAttacks[name].attack as VectorAttack<ServerAttackOptions[K]>
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
