/**
 * The one registry of Byzantine behaviours, by the name a config, a chaos `corrupt` command and
 * `phalanx simulate` use. Vector attacks come from `@phalanx/attacks`' registries, each with its
 * options from the cluster (`AttackContext`); the protocol behaviours (silence, equivocation,
 * stale replay, crash, label flipping) are written here. The cluster (roles.ts), the
 * single-process reference (simulate.ts) and the chaos actions look a behaviour up here and
 * nowhere else, so a new vector attack is its function, its entry in `@phalanx/attacks` and its
 * test.
 */
import { median } from '@phalanx/aggregation'
import {
  type AggregationRule,
  runServerAttack,
  runWorkerAttack,
  type ServerAttackName,
  scaledModel,
  serverAttackNames,
  serverAttacks,
  signFlip,
  type WorkerAttackConfig,
  type WorkerAttackName,
  type WorkerAttackOptions,
  workerAttackNames,
  workerAttacks,
} from '@phalanx/attacks'
import type { LabelFlipInit } from '@phalanx/model'
import { honestServer, honestWorker, type ServerBehaviour, type WorkerBehaviour } from './protocol.js'

/** What the Byzantine workers of the single-process reference (lab's trainer) do each round. */
export type ByzantineBehaviour =
  /** Send a vector crafted from the honest vectors of the round (`@phalanx/attacks`). */
  | { readonly kind: 'vector'; readonly attack: WorkerAttackConfig }
  /** Follow the protocol on a label-flipped copy of their shard (data poisoning). */
  | ({ readonly kind: 'label-flip' } & LabelFlipInit)
  /** Any other vector attack: `count` vectors from the honest ones. */
  | {
      readonly kind: 'custom'
      readonly craft: (
        honest: readonly Float32Array[],
        context: { round: number; count: number },
      ) => Float32Array[]
    }

/** Directions of the hidden shift (see the config's `hiddenShiftSign`). */
export const hiddenShiftSigns = ['against-mean', 'negative', 'positive'] as const
export type HiddenShiftSign = (typeof hiddenShiftSigns)[number]

/**
 * The config fields a behaviour reads. A view of `ClusterConfig` (which satisfies it), declared
 * here rather than imported so that the config schema can take its choices from this registry
 * without an import cycle.
 */
export interface ByzantineSettings {
  readonly servers: number
  readonly byzantineServers: number
  readonly workers: number
  readonly byzantineWorkers: number
  readonly signFlipScale: number
  readonly gaussianSigma: number
  readonly ipmEpsilon: number
  readonly alieZ?: number | undefined
  readonly hiddenShiftScale: number
  readonly hiddenShiftSign: HiddenShiftSign
}

/** Where a behaviour runs: one Byzantine node. */
export interface BehaviourContext {
  /** This node's seed; attacks that draw random numbers add the round to it. */
  readonly seed: number
  /** The servers' aggregation, which the optimal attacks tune against (workers only). */
  readonly rule: AggregationRule
}

type StrengthField = {
  [K in keyof ByzantineSettings]-?: ByzantineSettings[K] extends number | undefined ? K : never
}[keyof ByzantineSettings]

/**
 * How the node tunes a vector attack beyond the defaults of its entry in `@phalanx/attacks`:
 * `strength` names the config field (and the attack option it sets) a `chaos corrupt --strength`
 * sets at run time; `skipsOwn`: the attack copies another worker's gradient, so the attacker's
 * own (the first of what it read) is left out whenever it read another.
 */
interface Tuning<Name extends WorkerAttackName> {
  readonly strength?: { readonly field: StrengthField; readonly option: keyof WorkerAttackOptions[Name] }
  readonly options?: (settings: ByzantineSettings) => Partial<WorkerAttackOptions[Name]>
  readonly skipsOwn?: true
}

const tuning = {
  'sign-flip': { strength: { field: 'signFlipScale', option: 'scale' } },
  gaussian: { strength: { field: 'gaussianSigma', option: 'sigma' } },
  ipm: { strength: { field: 'ipmEpsilon', option: 'epsilon' } },
  // Without alieZ the attack computes the paper's z from n and f.
  alie: { strength: { field: 'alieZ', option: 'z' } },
  'hidden-shift': {
    strength: { field: 'hiddenShiftScale', option: 'scale' },
    options: (settings) =>
      settings.hiddenShiftSign === 'against-mean'
        ? {}
        : { sign: settings.hiddenShiftSign === 'negative' ? -1 : 1 },
  },
  mimic: { skipsOwn: true },
} as const satisfies { readonly [Name in WorkerAttackName]?: Tuning<Name> }

type Tuned = typeof tuning
type StrengthFieldOf<Entry> = Entry extends { strength: { field: infer Field } } ? Field : never

/** The config field holding the strength of each worker attack that has one (the field a
 * `chaos corrupt --strength` sets at run time). */
export const attackStrengthFields = Object.fromEntries(
  Object.entries(tuning).flatMap(([name, entry]) =>
    'strength' in entry ? [[name, entry.strength.field]] : [],
  ),
) as {
  readonly [Name in keyof Tuned as StrengthFieldOf<Tuned[Name]> extends never
    ? never
    : Name]: StrengthFieldOf<Tuned[Name]>
}

/** The vector attack `name` with its options for one attacker and round. */
export function workerVectorAttack(
  name: WorkerAttackName,
  settings: ByzantineSettings,
  context: BehaviourContext,
): WorkerAttackConfig {
  const entry = tuning[name as keyof Tuned] as Tuning<WorkerAttackName> | undefined
  const options: Record<string, unknown> = {
    ...workerAttacks[name].options({
      n: settings.workers,
      f: settings.byzantineWorkers,
      seed: context.seed,
      rule: context.rule,
    }),
    ...entry?.options?.(settings),
  }
  if (entry?.strength !== undefined) {
    const value = settings[entry.strength.field]
    if (value !== undefined) options[entry.strength.option as string] = value
  }
  return { name, options } as WorkerAttackConfig
}

export interface WorkerBehaviourEntry {
  readonly description: string
  /** Whether a chaos `corrupt` may switch it on mid-run. */
  readonly runtime: boolean
  /** Data poisoning: the worker trains on a label-flipped copy of its shard (applied at start-up). */
  readonly poisonsShard?: true
  /** What a Byzantine worker of the cluster does. */
  readonly cluster: (settings: ByzantineSettings, context: BehaviourContext) => WorkerBehaviour
  /** What the Byzantine workers of the single-process reference do; `undefined`: honest. */
  readonly simulate: (
    settings: ByzantineSettings,
    context: BehaviourContext,
  ) => ByzantineBehaviour | undefined
  /** The vector attack it sends, with its options; `undefined` for the protocol behaviours. */
  readonly vectorAttack?: (settings: ByzantineSettings, context: BehaviourContext) => WorkerAttackConfig
}

/** The equivocating worker's second gradient: its own flipped and scaled, far from every honest one. */
const equivocationFlip = { name: 'sign-flip', options: { scale: 10 } } as const satisfies WorkerAttackConfig

function vectorWorker(name: WorkerAttackName): WorkerBehaviourEntry {
  const skipsOwn = (tuning[name as keyof Tuned] as Tuning<WorkerAttackName> | undefined)?.skipsOwn === true
  const vectorAttack = (settings: ByzantineSettings, context: BehaviourContext) =>
    workerVectorAttack(name, settings, context)
  return {
    description: workerAttacks[name].description,
    runtime: true,
    vectorAttack,
    // Omniscient and colluding: it waits for `collusionQuorum` honest gradients first.
    cluster: (settings, context) => ({
      publishGradient: async (round, own, honestOfRound) => {
        const read = await honestOfRound()
        const honest = read.length > 0 ? read : [own]
        const attack = vectorAttack(settings, { ...context, seed: context.seed + round })
        // `honest` starts with the attacker's own gradient: a mimic copies someone else's
        // whenever it read one, or it would only be an honest worker.
        const from = skipsOwn && honest.length > 1 ? honest.slice(1) : honest
        return runWorkerAttack(attack.name, from, attack.options)
      },
    }),
    simulate: (settings, context) => ({ kind: 'vector', attack: vectorAttack(settings, context) }),
  }
}

const vectorWorkers = Object.fromEntries(
  workerAttackNames.map((name) => [name, vectorWorker(name)]),
) as Record<WorkerAttackName, WorkerBehaviourEntry>

const workerEntries = {
  none: {
    description: 'behaves honestly (a Byzantine node as a baseline)',
    runtime: true,
    cluster: () => honestWorker,
    simulate: () => undefined,
  },
  ...vectorWorkers,
  'label-flip': {
    description: 'trains on a label-flipped copy of its shard (data poisoning, from the start only)',
    runtime: false,
    poisonsShard: true,
    cluster: () => honestWorker,
    simulate: () => ({ kind: 'label-flip' }),
  },
  silence: {
    description: 'sends nothing (a crash)',
    runtime: true,
    cluster: () => ({ publishGradient: async () => undefined }),
    simulate: () => ({ kind: 'custom', craft: () => [] }),
  },
  equivocation: {
    description: 'sends different gradients to different servers',
    runtime: true,
    cluster: () => ({
      publishGradient: async (_round, gradient) => gradient,
      perReceiver: async (_round, own) => {
        const flipped = signFlip([own], equivocationFlip.options)
        return (_receiver, index) => (index % 2 === 0 ? own : flipped)
      },
    }),
    // One server there, so equivocation degenerates to sending one (flipped) vector.
    simulate: () => ({ kind: 'vector', attack: equivocationFlip }),
  },
} satisfies Record<string, WorkerBehaviourEntry>

export type WorkerBehaviourName = keyof typeof workerEntries
/** Every behaviour a Byzantine worker can have, by name. */
export const workerBehaviours: { readonly [Name in WorkerBehaviourName]: WorkerBehaviourEntry } =
  workerEntries
export const workerBehaviourNames = Object.keys(workerBehaviours) as readonly WorkerBehaviourName[]

export interface ServerBehaviourEntry {
  readonly description: string
  /** What a Byzantine server of the cluster publishes. */
  readonly cluster: (settings: ByzantineSettings, context: Pick<BehaviourContext, 'seed'>) => ServerBehaviour
  /**
   * What it stores when an honest server would store a checkpoint: its honest model, nothing,
   * or forgeries (roles.ts `forgedCheckpoints`).
   */
  readonly checkpoints: 'honest' | 'none' | 'forged'
}

function vectorServer(name: ServerAttackName): ServerBehaviourEntry {
  const entry = serverAttacks[name]
  // The model median: the rule the honest servers apply to the models they receive.
  const rule: AggregationRule = (models) => median(models, { f: 0 })
  return {
    description: entry.description,
    checkpoints: 'forged',
    cluster: (settings, context) => ({
      publishModel: (round, model, history) => {
        const options = entry.options({
          n: settings.servers,
          f: settings.byzantineServers,
          seed: context.seed + round,
          rule,
        })
        // A spread needs two models: before a second round it has only its own.
        const honest = entry.reads === 'own' ? [model] : history.length > 1 ? history : [model, model]
        return runServerAttack(name, honest, options as never)
      },
    }),
  }
}

const vectorServers = Object.fromEntries(
  serverAttackNames.map((name) => [name, vectorServer(name)]),
) as Record<ServerAttackName, ServerBehaviourEntry>

const serverEntries = {
  none: {
    description: 'behaves honestly (a Byzantine node as a baseline)',
    checkpoints: 'honest',
    cluster: () => honestServer,
  },
  ...vectorServers,
  equivocation: {
    description: 'sends its model to half its receivers and the reversed model to the others',
    checkpoints: 'forged',
    cluster: () => ({
      publishModel: (_round, model) => model,
      // The second version once per round, not per receiver: the transport groups receivers
      // by the vector object they were handed.
      perReceiver: (_round, model) => {
        const reversed = scaledModel([model], { factor: -1 })
        return (_receiver, index) => (index % 2 === 0 ? model : reversed)
      },
    }),
  },
  stale: {
    description: 'replays the oldest model it keeps (8 rounds back)',
    checkpoints: 'forged',
    cluster: () => ({ publishModel: (_round, model, history) => history[0] ?? model }),
  },
  crash: {
    description: 'sends nothing (a crash)',
    checkpoints: 'none',
    cluster: () => ({ publishModel: () => undefined }),
  },
} satisfies Record<string, ServerBehaviourEntry>

export type ServerBehaviourName = keyof typeof serverEntries
/** Every behaviour a Byzantine server can have, by name. */
export const serverBehaviours: { readonly [Name in ServerBehaviourName]: ServerBehaviourEntry } =
  serverEntries
export const serverBehaviourNames = Object.keys(serverBehaviours) as readonly ServerBehaviourName[]
