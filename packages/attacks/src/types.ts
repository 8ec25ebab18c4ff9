/**
 * Shapes shared by every attack. Interfaces live here, implementations in worker.ts,
 * server.ts and optimal.ts.
 */

/**
 * Any aggregation rule with the `@phalanx/aggregation` signature, e.g. `krum` or `median`.
 * The optimal attacks take one as the rule they are tuned against.
 */
export type AggregationRule = (inputs: readonly Float32Array[], options: { f: number }) => Float32Array

/**
 * A worker attack: a pure function of the honest vectors of the round (the threat model lets
 * colluding Byzantine workers read them before sending). It never mutates them and always
 * returns a new array.
 */
/**
 * Where an attack runs: one attacker of a cluster in one round. A registry entry turns it into
 * the attack's options, so the cluster, the single-process reference and a chaos switch give
 * every attack the same inputs.
 */
export interface AttackContext {
  /** Nodes of the attacked kind, Byzantine included: n workers, or N servers. */
  readonly n: number
  /** Byzantine ones among them: f, or F. */
  readonly f: number
  /** Seed of this attacker and round (attacks that draw random numbers start from it). */
  readonly seed: number
  /** The rule the honest side aggregates with: what the optimal attacks are tuned against. */
  readonly rule: AggregationRule
}

export type VectorAttack<Options> = (honest: readonly Float32Array[], options: Options) => Float32Array

export interface SignFlipOptions {
  /** Multiplier of the flipped vector (default 1: exactly −mean). */
  scale?: number
  /** Flip this vector instead of the honest mean (e.g. the attacker's own honest gradient). */
  of?: Float32Array
}

export interface GaussianOptions {
  /** Mean of every coordinate (default 0). */
  mu?: number
  /** Standard deviation of every coordinate. */
  sigma: number
  /** Seed of the generator: the same seed gives the same vector. */
  seed: number
}

export interface IpmOptions {
  /** The attack sends −ε·mean(honest). */
  epsilon: number
}

export interface AlieOptions {
  /** Number of Byzantine workers (used by the z formula). */
  f: number
  /** Total number of workers, Byzantine included (default honest.length + f). */
  n?: number
  /** Number of standard deviations to move; default Φ⁻¹((n−s)/n) with s = ⌊n/2+1⌋−f. */
  z?: number
}

export interface MimicOptions {
  /** Index of the honest worker to copy. */
  target: number
}

export type NonFiniteKind = 'nan' | 'inf' | '-inf'

export interface NonFiniteOptions {
  kind: NonFiniteKind
}

export interface HiddenShiftOptions {
  /**
   * Length of the shift, in units of the honest spread √(Σ_j Var_j) (≈ √d·σ for isotropic
   * noise). Default 1: the attack vector is then as far from the honest mean in ℓ2 as a
   * typical honest vector, yet all of that distance sits in one coordinate.
   */
  scale?: number
  /** Coordinate to shift; default the one of largest honest variance. */
  coordinate?: number
  /** Direction of the shift; default against the honest mean's sign there (+1 when it is 0). */
  sign?: 1 | -1
}

/** Options of the line-search attacks; `scale` is z for ALIE and ε for IPM. */
export interface LineSearchOptions {
  /** The rule the attack is tuned against. */
  rule: AggregationRule
  /** Number of Byzantine workers; f copies of the attack vector join the honest ones. */
  f: number
  /** Interval searched for the scale, [low, high]. */
  range?: readonly [number, number]
  /** Maximum number of rule evaluations (default 24). */
  budget?: number
}

export interface OptimalAlieOptions extends LineSearchOptions {
  /** Total number of workers for the start z (default honest.length + f). */
  n?: number
  /** Start of the search, always evaluated (default ALIE's formula z, or 1 when undefined). */
  start?: number
}

export interface OptimalIpmOptions extends LineSearchOptions {
  /** Start of the search, always evaluated (default 0.1, the IPM paper's small ε). */
  start?: number
}

/** What a line-search attack found. */
export interface LineSearchResult {
  /** The attack vector at the best scale found. */
  vector: Float32Array
  /** The best scale found (z or ε). */
  scale: number
  /** ‖rule(honest ∪ f copies) − mean(honest)‖₂ at that scale. */
  objective: number
  /** Objective at the start scale, for comparison. */
  startObjective: number
  /** How many times the rule was called. */
  evaluations: number
}

export interface RandomModelOptions {
  /** Standard deviation of every coordinate (default 1). */
  sigma?: number
  /** Mean of every coordinate (default 0). */
  mu?: number
  seed: number
}

export interface ScaledModelOptions {
  /** Multiplier: −1 sends the reversed model, 0 the zero model. */
  factor: number
  /** Scale this model instead of the mean of the honest ones (e.g. the server's own). */
  of?: Float32Array
}

export interface DropCoordinatesOptions {
  /** Fraction of the coordinates set to 0, in [0, 1]. */
  fraction: number
  seed: number
  /** Drop from this model instead of the mean of the honest ones. */
  of?: Float32Array
}

export interface ModelShiftOptions {
  /** Number of Byzantine servers F (used by the z formula). */
  f: number
  /** Total number of servers N (default honest.length + f). */
  n?: number
  /** Standard deviations to move each coordinate; default ALIE's formula. */
  z?: number
}
