import { describe, expect, it } from 'vitest'
import {
  alie,
  byzantineVectors,
  hiddenShift,
  ipm,
  runWorkerAttack,
  scaledModel,
  serverAttackNames,
  serverAttacks,
  signFlip,
  type WorkerAttackConfig,
  workerAttackNames,
  workerAttacks,
} from '../src/index.js'

const HONEST = [Float32Array.from([1, 2]), Float32Array.from([3, 4]), Float32Array.from([5, 0])]
const average = (inputs: readonly Float32Array[]): Float32Array =>
  Float32Array.from(inputs[0]!, (_, j) => inputs.reduce((s, x) => s + x[j]!, 0) / inputs.length)

describe('attack registries', () => {
  // The lists of the names are in worker.test.ts and server.test.ts, beside each attack's
  // hand-computed cases, so that a new attack's test is one file.
  it('every attack has a description and options for a cluster', () => {
    const context = { n: 7, f: 2, seed: 1, rule: average }
    for (const name of workerAttackNames) {
      expect(workerAttacks[name].description.length).toBeGreaterThan(0)
      expect(workerAttacks[name].options(context)).toBeTypeOf('object')
    }
    for (const name of serverAttackNames) {
      expect(serverAttacks[name].description.length).toBeGreaterThan(0)
      expect(serverAttacks[name].options(context)).toBeTypeOf('object')
    }
  })

  it.each<[WorkerAttackConfig, Float32Array]>([
    [{ name: 'sign-flip', options: {} }, signFlip(HONEST)],
    [{ name: 'ipm', options: { epsilon: 0.5 } }, ipm(HONEST, { epsilon: 0.5 })],
    [{ name: 'alie', options: { f: 2, z: 1 } }, alie(HONEST, { f: 2, z: 1 })],
    [{ name: 'hidden-shift', options: {} }, hiddenShift(HONEST)],
    // Against the average the objective grows with ε, so optimal IPM takes the top of the range.
    [{ name: 'optimal-ipm', options: { rule: average, f: 2 } }, ipm(HONEST, { epsilon: 10 })],
  ])('$name by name is the function it names', (config, expected) => {
    expect(byzantineVectors(config, HONEST, 1)[0]).toEqual(expected)
  })

  it('reversed is scaled by −1; lookups by name run the named function', () => {
    expect(serverAttacks.reversed.attack(HONEST, {})).toEqual(scaledModel(HONEST, { factor: -1 }))
    expect(workerAttacks.mimic.attack(HONEST, { target: 2 })).toEqual(HONEST[2])
    expect(runWorkerAttack('gaussian', HONEST, { sigma: 1, seed: 4 })).toEqual(
      workerAttacks.gaussian.attack(HONEST, { sigma: 1, seed: 4 }),
    )
  })

  it('byzantineVectors gives f equal vectors in f separate buffers', () => {
    const round = byzantineVectors({ name: 'ipm', options: { epsilon: 2 } }, HONEST, 3)
    expect(round).toHaveLength(3)
    expect(round[0]).toEqual(Float32Array.from([-6, -4]))
    expect(round[1]).toEqual(round[0])
    expect(round[1]!.buffer).not.toBe(round[0]!.buffer)
    expect(byzantineVectors({ name: 'ipm', options: { epsilon: 2 } }, HONEST, 0)).toEqual([])
    expect(() => byzantineVectors({ name: 'ipm', options: { epsilon: 2 } }, HONEST, -1)).toThrow(
      expect.objectContaining({ name: 'InvalidAttackOptionError', option: 'f' }),
    )
  })
})
