import { preAggregatorNames, ruleNames } from '@phalanx/aggregation'
import {
  dropCoordinates,
  modelShift,
  randomModel,
  scaledModel,
  serverAttackNames as serverVectorAttacks,
  workerAttackNames as workerVectorAttacks,
} from '@phalanx/attacks'
import { backendNames, datasetNames, modelNames } from '@phalanx/model'
import { encrypterNames, netDefaults } from '@phalanx/net'
import { describe, expect, it } from 'vitest'
import {
  attackStrengthFields,
  hiddenShiftSigns,
  serverBehaviourNames,
  serverBehaviours,
  workerBehaviourNames,
  workerBehaviours,
} from '../src/byzantine.js'
import { checkClusterBounds } from '../src/cluster-bounds.js'
import { clusterConfigSchema, resolveConfig } from '../src/config.js'
import { replicationModeNames } from '../src/replication/names.js'
import { createAggregator, forgedCheckpoints, serverBehaviour, workerBehaviour } from '../src/roles.js'

/** The choices of an enum field of the schema (of its elements, for a list field). */
function choicesOf(field: keyof typeof clusterConfigSchema.shape): readonly string[] {
  let schema: unknown = clusterConfigSchema.shape[field]
  for (;;) {
    const def = (
      schema as { def: { type: string; innerType?: unknown; element?: unknown; entries?: object } }
    ).def
    if (def.type === 'enum') return Object.values(def.entries as Record<string, string>)
    schema = def.innerType ?? def.element
    if (schema === undefined) throw new Error(`${field} is not an enum field`)
  }
}

/** Each enum field of the config and the registry its choices come from. */
const registries = [
  ['rule', ruleNames],
  ['preAggregation', preAggregatorNames],
  ['workerAttack', workerBehaviourNames],
  ['serverAttack', serverBehaviourNames],
  ['model', modelNames],
  ['dataset', datasetNames],
  ['backend', ['auto', ...backendNames]],
  ['replication', replicationModeNames],
  ['hiddenShiftSign', hiddenShiftSigns],
  ['encrypter', encrypterNames],
] as const

describe('the config takes its choices from the registries', () => {
  it.each(registries)(
    '%s: every registry name is a choice and every choice a registry name',
    (field, names) => {
      expect([...choicesOf(field)].sort()).toEqual([...names].sort())
    },
  )

  it.each(registries.flatMap(([field, names]) => names.map((name) => [field, name] as const)))(
    '%s: %s is accepted',
    (field, name) => {
      const value = field === 'preAggregation' ? [name] : name
      // smr needs its log's URL; every other choice stands alone.
      const extra = name === 'smr' ? { smrNatsUrl: 'nats://127.0.0.1:4222' } : {}
      expect(resolveConfig({ [field]: value, ...extra })[field]).toEqual(value)
    },
  )

  it.each([
    ['workerAttack', workerVectorAttacks, workerBehaviourNames],
    ['serverAttack', serverVectorAttacks, serverBehaviourNames],
  ] as const)('every vector attack of @phalanx/attacks is a %s behaviour', (_field, attacks, behaviours) => {
    for (const attack of attacks) expect(behaviours).toContain(attack)
  })

  it("defaults the encrypter to the data plane's default", () => {
    expect(resolveConfig({}).encrypter).toBe(netDefaults.encrypter)
  })

  it('every behaviour has a description for --help', () => {
    for (const entry of [...Object.values(workerBehaviours), ...Object.values(serverBehaviours)]) {
      expect(entry.description.length).toBeGreaterThan(0)
    }
  })

  it('every strength field is a numeric config field', () => {
    for (const field of Object.values(attackStrengthFields)) {
      expect(clusterConfigSchema.shape[field].safeParse(1).success).toBe(true)
    }
  })
})

describe('every rule and pre-aggregator a config can name runs in a server', () => {
  // n − f = 11 gradients, f = 2: within every rule's bound (Bulyan's n ≥ 4f+3 included).
  const gradients = Array.from({ length: 11 }, (_, i) => Float32Array.from([i, -i, 1, 0.5 * i]))
  it.each(
    ruleNames.flatMap((rule) => [
      [rule, []] as const,
      ...preAggregatorNames.map((pre) => [rule, [pre]] as const),
    ]),
  )('%s after %j', (rule, preAggregation) => {
    const config = resolveConfig({ workers: 13, byzantineWorkers: 2, rule, preAggregation })
    // Bucketing leaves ⌈11/2⌉ = 6 vectors, below Krum's and Bulyan's bounds: those configs are
    // refused at start-up, every other one must run.
    if (preAggregation[0] === 'bucketing' && ['krum', 'multiKrum', 'bulyan'].includes(rule)) {
      expect(() => checkClusterBounds(config)).toThrowError(/cannot tolerate/)
      return
    }
    checkClusterBounds(config)
    const aggregate = createAggregator(config)(gradients)
    expect(aggregate).toHaveLength(4)
    expect(Array.from(aggregate).every(Number.isFinite)).toBe(true)
  })
})

describe('Byzantine servers run the registry of @phalanx/attacks', () => {
  const config = resolveConfig({ servers: 7, byzantineServers: 2, seed: 3 })
  const seed = 3 * 7919 + 1
  const model = Float32Array.from([1, -2, 3, 0.5])
  const history = [Float32Array.from([0, 1, 2, 3]), Float32Array.from([2, -1, 0, 1]), model]

  // What each server attack published before the registry: the same functions and options.
  it.each([
    ['random', [model], randomModel([model], { seed: seed + 4, sigma: 1 })],
    ['reversed', [model], scaledModel([model], { factor: -1 })],
    ['scaled', [model], scaledModel([model], { factor: 100 })],
    ['drop-coordinates', [model], dropCoordinates([model], { fraction: 0.5, seed: seed + 4 })],
    ['shift', history, modelShift(history, { f: 2, n: 7 })],
    ['shift', [model], modelShift([model, model], { f: 2, n: 7 })],
    ['stale', history, history[0]],
    ['none', history, model],
    ['crash', history, undefined],
  ] as const)('%s publishes what it did before', (serverAttack, seen, expected) => {
    const published = serverBehaviour({ ...config, serverAttack }, 1).publishModel(4, model, seen)
    expect(published).toEqual(expected)
  })

  it('equivocation hands alternate receivers the model and the reversed model', () => {
    const behaviour = serverBehaviour({ ...config, serverAttack: 'equivocation' }, 1)
    const forReceiver = behaviour.perReceiver!(0, model)
    expect([forReceiver('a', 0), forReceiver('b', 1)]).toEqual([model, scaledModel([model], { factor: -1 })])
  })

  it.each([
    ['none', 1],
    ['crash', 0],
    ['reversed', 3],
    ['stale', 3],
  ] as const)('a %s server stores %i checkpoints for two member servers', (serverAttack, count) => {
    const forge = forgedCheckpoints({ ...config, serverAttack })
    expect(forge({ round: 1, model }, ['server-1', 'server-2'])).toHaveLength(count)
  })
})

describe('Byzantine workers', () => {
  const own = Float32Array.from([1, 1, 1])
  const read = [own, Float32Array.from([2, 0, 1]), Float32Array.from([0, 3, 1])]

  it.each(['optimal-alie', 'optimal-ipm'] as const)(
    '%s tunes against the configured rule even when it read too few gradients for its bound',
    async (workerAttack) => {
      // Multi-Krum with f = 2 needs 7 inputs: one or three read plus two copies are fewer.
      const config = resolveConfig({ workers: 12, byzantineWorkers: 2, rule: 'multiKrum', workerAttack })
      for (const seen of [[own], read]) {
        const sent = await workerBehaviour(config, 0).publishGradient(0, own, async () => seen)
        expect(sent).toHaveLength(3)
        expect(Array.from(sent!).every(Number.isFinite)).toBe(true)
      }
    },
  )

  it.each(['optimal-alie', 'optimal-ipm'] as const)(
    '%s on a worker corrupted at run time in a cluster of f = 0: too few read for Krum even at f = 0',
    async (workerAttack) => {
      // What the chaos suite does: `corrupt worker-0 --attack optimal-ipm` with f = 0 configured.
      // One read and its own make two inputs, where Krum needs three: the attack tunes against
      // their mean instead of throwing (a crashed worker would be silent, not the attack).
      const config = resolveConfig({ workers: 9, byzantineWorkers: 0, rule: 'krum', workerAttack })
      const sent = await workerBehaviour(config, 0).publishGradient(0, own, async () => [own])
      expect(sent).toHaveLength(3)
      expect(Array.from(sent!).every(Number.isFinite)).toBe(true)
    },
  )

  it('every runtime behaviour builds, label flipping only at start-up', () => {
    const config = resolveConfig({ workers: 7, byzantineWorkers: 2 })
    for (const name of workerBehaviourNames) {
      expect(workerBehaviour({ ...config, workerAttack: name }, 0).publishGradient).toBeTypeOf('function')
      expect(workerBehaviours[name].runtime).toBe(name !== 'label-flip')
    }
  })
})
