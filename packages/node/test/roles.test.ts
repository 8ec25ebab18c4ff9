import { describe, expect, it } from 'vitest'
import { attackStrengthFields } from '../src/byzantine.js'
import { resolveConfig, workerAttackNames } from '../src/config.js'
import { vectorAttack, workerBehaviour } from '../src/roles.js'

const base = { workers: 7, byzantineWorkers: 2 }

describe('vectorAttack', () => {
  it.each([
    ['sign-flip', {}, { scale: 1 }],
    ['sign-flip', { signFlipScale: 10 }, { scale: 10 }],
    ['gaussian', {}, { sigma: 200, seed: 3 }],
    ['gaussian', { gaussianSigma: 2 }, { sigma: 2, seed: 3 }],
    ['ipm', {}, { epsilon: 0.5 }],
    ['ipm', { ipmEpsilon: 10 }, { epsilon: 10 }],
    // Without alieZ the attack computes the paper's z from n and f.
    ['alie', {}, { f: 2, n: 7 }],
    ['alie', { alieZ: 100 }, { f: 2, n: 7, z: 100 }],
    ['hidden-shift', {}, { scale: 1 }],
    ['hidden-shift', { hiddenShiftScale: 1000 }, { scale: 1000 }],
    ['hidden-shift', { hiddenShiftSign: 'against-mean' }, { scale: 1 }],
    ['hidden-shift', { hiddenShiftSign: 'negative' }, { scale: 1, sign: -1 }],
    ['hidden-shift', { hiddenShiftSign: 'positive' }, { scale: 1, sign: 1 }],
  ] as const)('%s with %j has options %j', (workerAttack, strength, options) => {
    const attack = vectorAttack(resolveConfig({ ...base, ...strength, workerAttack }), 3)
    expect(attack).toEqual({ name: workerAttack, options })
  })

  it('every attack with a strength field is a worker attack', () => {
    for (const attack of Object.keys(attackStrengthFields)) {
      expect(workerAttackNames).toContain(attack)
    }
  })
})

describe('workerBehaviour', () => {
  const own = Float32Array.of(1, 1)
  const read = Float32Array.of(5, 7)
  const publish = (workerAttack: string, honest: Float32Array[]) =>
    workerBehaviour(resolveConfig({ ...base, workerAttack }), 0).publishGradient(0, own, async () => honest)

  it('a mimic copies a gradient it read, not its own', async () => {
    expect(await publish('mimic', [own, read])).toEqual(read)
  })

  it('a mimic that read nothing sends its own gradient', async () => {
    expect(await publish('mimic', [own])).toEqual(own)
  })

  it('silence publishes nothing', async () => {
    expect(await publish('silence', [own, read])).toBeUndefined()
  })
})
