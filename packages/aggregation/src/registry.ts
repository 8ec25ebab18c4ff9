/**
 * The rules by name, with their bounds, so a server can pick one from configuration with its
 * options type intact: `rules[name]` for a literal name is `RuleEntry<typeof name>`.
 */
import type {
  ArcOptions,
  AverageOptions,
  BucketingOptions,
  BulyanOptions,
  CenteredClippingOptions,
  ClipOptions,
  GeometricMedianOptions,
  KrumOptions,
  MdaOptions,
  MeamedOptions,
  MedianOptions,
  MultiKrumOptions,
  NnmOptions,
  TrimmedMeanOptions,
} from './options.js'
import { arc, bucketing, clip, nnm } from './pre.js'
import { average, meamed, median, trimmedMean } from './rules/coordinate.js'
import { centeredClipping, geometricMedian } from './rules/iterative.js'
import { bulyan, krum, multiKrum } from './rules/krum.js'
import { mda } from './rules/mda.js'
import { type Bound, bounds } from './validate.js'

/** Options of each rule, by name. */
export interface RuleOptionsMap {
  average: AverageOptions
  median: MedianOptions
  trimmedMean: TrimmedMeanOptions
  meamed: MeamedOptions
  geometricMedian: GeometricMedianOptions
  krum: KrumOptions
  multiKrum: MultiKrumOptions
  bulyan: BulyanOptions
  mda: MdaOptions
  centeredClipping: CenteredClippingOptions
}

export type RuleName = keyof RuleOptionsMap

/** A rule: n vectors in, one new vector out. */
export type Aggregate<Options> = (inputs: readonly Float32Array[], options: Options) => Float32Array

export interface RuleEntry<Name extends RuleName> {
  readonly name: Name
  readonly aggregate: Aggregate<RuleOptionsMap[Name]>
  /** Whether n inputs of which f Byzantine are within the rule's bound. */
  readonly bound: (n: number, f: number) => boolean
  /** The bound as text, as BoundError shows it, e.g. 'n ≥ 2f+3'. */
  readonly boundText: string
  /** The paper that defines the rule. */
  readonly paper: string
  /**
   * The options a server runs it with when a config names it: `{ f }` unless the entry says
   * otherwise (a rule with a required option gives its value here, with the reason).
   */
  readonly options: (context: RuleContext) => RuleOptionsMap[Name]
}

/** What a server knows when it builds a rule's options: f of its n−f gradients may be Byzantine. */
export interface RuleContext {
  readonly f: number
}

function entry<Name extends RuleName>(
  name: Name,
  aggregate: Aggregate<RuleOptionsMap[Name]>,
  bound: Bound,
  paper: string,
  options: (context: RuleContext) => RuleOptionsMap[Name] = ({ f }) => ({ f }) as RuleOptionsMap[Name],
): RuleEntry<Name> {
  return { name, aggregate, bound: bound.holds, boundText: bound.text, paper, options }
}

const yin2018 =
  'Yin et al., Byzantine-Robust Distributed Learning: Towards Optimal Statistical Rates, ICML 2018'
const blanchard2017 =
  'Blanchard et al., Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent, NeurIPS 2017'

export const rules: { readonly [Name in RuleName]: RuleEntry<Name> } = {
  average: entry('average', average, bounds.any, 'none (non-robust baseline)'),
  median: entry('median', median, bounds.majority, yin2018),
  trimmedMean: entry('trimmedMean', trimmedMean, bounds.majority, yin2018),
  meamed: entry(
    'meamed',
    meamed,
    bounds.majority,
    'Xie et al., Generalized Byzantine-tolerant SGD, arXiv:1802.10116',
  ),
  geometricMedian: entry(
    'geometricMedian',
    geometricMedian,
    bounds.majority,
    'Pillutla et al., Robust Aggregation for Federated Learning, IEEE TSP 2022',
  ),
  krum: entry('krum', krum, bounds.krum, blanchard2017),
  multiKrum: entry('multiKrum', multiKrum, bounds.krum, blanchard2017),
  bulyan: entry(
    'bulyan',
    bulyan,
    bounds.bulyan,
    'El Mhamdi et al., The Hidden Vulnerability of Distributed Learning in Byzantium, ICML 2018',
  ),
  mda: entry(
    'mda',
    mda,
    bounds.majority,
    'El Mhamdi et al., Distributed Momentum for Byzantine-resilient SGD, ICLR 2021',
  ),
  centeredClipping: entry(
    'centeredClipping',
    centeredClipping,
    bounds.any,
    'Karimireddy et al., Learning from History for Byzantine Robust Optimization, ICML 2021',
    // τ has the units of the gradients: the cluster's honest gradients (MNIST models, worker
    // momentum) have norms of order 1, so τ = 10 clips only blatant outliers, as the servers'
    // static `clip` pre-aggregation does.
    ({ f }) => ({ f, tau: 10 }),
  ),
}

export const ruleNames: readonly RuleName[] = Object.keys(rules) as RuleName[]

export function isRuleName(name: string): name is RuleName {
  return Object.hasOwn(rules, name)
}

/** Options of each pre-aggregator, by name. */
export interface PreAggregatorOptionsMap {
  nnm: NnmOptions
  bucketing: BucketingOptions
  arc: ArcOptions
  clip: ClipOptions
}

export type PreAggregatorName = keyof PreAggregatorOptionsMap

/** A pre-aggregator: n vectors in, new vectors out (n of them, or ⌈n/s⌉ for bucketing). */
export type PreAggregate<Options> = (inputs: readonly Float32Array[], options: Options) => Float32Array[]

export const preAggregators: {
  readonly [Name in PreAggregatorName]: PreAggregate<PreAggregatorOptionsMap[Name]>
} = {
  nnm,
  bucketing,
  arc,
  clip,
}

export const preAggregatorNames: readonly PreAggregatorName[] = Object.keys(
  preAggregators,
) as PreAggregatorName[]

/** What a server knows when it builds a pre-aggregator's options. */
export interface PreAggregatorContext extends RuleContext {
  /** The run's seed (bucketing shuffles with it). */
  readonly seed: number
}

export interface PreAggregatorSetting<Name extends PreAggregatorName> {
  /** The options a server runs it with when a config names it. */
  readonly options: (context: PreAggregatorContext) => PreAggregatorOptionsMap[Name]
  /** How many vectors it leaves of n (the rule's bound is checked on those). */
  readonly outputs: (n: number, options: PreAggregatorOptionsMap[Name]) => number
}

/** How a server runs each pre-aggregator, by name. */
export const preAggregatorSettings: { readonly [Name in PreAggregatorName]: PreAggregatorSetting<Name> } = {
  nnm: { options: ({ f }) => ({ f }), outputs: (n) => n },
  // Buckets of two halve the inputs the rule sees; the bound is checked on ⌈n/2⌉.
  bucketing: {
    options: ({ seed }) => ({ bucketSize: 2, seed }),
    outputs: (n, options) => Math.ceil(n / options.bucketSize),
  },
  arc: { options: ({ f }) => ({ f }), outputs: (n) => n },
  // The cluster's honest gradients (MNIST models) have norms of order 1; 10 only cuts off
  // blatant outliers.
  clip: { options: () => ({ maxNorm: 10 }), outputs: (n) => n },
}

export function isPreAggregatorName(name: string): name is PreAggregatorName {
  return Object.hasOwn(preAggregators, name)
}

/** A pre-aggregation step with its options bound: a named one from config, or any function. */
export type PreStep =
  | {
      readonly [Name in PreAggregatorName]: {
        readonly name: Name
        readonly options: PreAggregatorOptionsMap[Name]
      }
    }[PreAggregatorName]
  | ((inputs: readonly Float32Array[]) => Float32Array[])

function runStep(step: PreStep, inputs: readonly Float32Array[]): Float32Array[] {
  if (typeof step === 'function') return step(inputs)
  // The union's name/options pairing is checked where the step is built; here it only dispatches.
  const apply = preAggregators[step.name] as PreAggregate<unknown>
  return apply(inputs, step.options)
}

/**
 * A rule-shaped function that applies the pre-aggregation step(s), in order, then the rule:
 * `compose({ name: 'nnm', options: { f } }, rules.krum)(inputs, { f })`. The rule's bound is
 * then checked on the pre-aggregated vectors (bucketing leaves ⌈n/s⌉ of them).
 */
export function compose<Name extends RuleName>(
  pre: PreStep | readonly PreStep[],
  rule: RuleEntry<Name> | Aggregate<RuleOptionsMap[Name]>,
): Aggregate<RuleOptionsMap[Name]>
export function compose<Options>(
  pre: PreStep | readonly PreStep[],
  rule: Aggregate<Options>,
): Aggregate<Options>
export function compose<Options>(
  pre: PreStep | readonly PreStep[],
  rule: { readonly aggregate: Aggregate<Options> } | Aggregate<Options>,
): Aggregate<Options> {
  const steps: readonly PreStep[] = Array.isArray(pre) ? pre : [pre as PreStep]
  const aggregate = typeof rule === 'function' ? rule : rule.aggregate
  return (inputs, options) => {
    let current: readonly Float32Array[] = inputs
    for (const step of steps) current = runStep(step, current)
    return aggregate(current, options)
  }
}
