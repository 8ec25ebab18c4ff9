import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { configFromEnv, configFromFile, envName, flagName, resolveConfig } from '../src/config.js'

describe('config schema', () => {
  it('defaults are the demo cluster of the brief: N=4 F=1, n=12 f=2 ALIE, Multi-Krum, MLP on MNIST', () => {
    const config = resolveConfig()
    expect(config).toMatchObject({
      servers: 4,
      byzantineServers: 1,
      workers: 12,
      byzantineWorkers: 2,
      workerAttack: 'alie',
      rule: 'multiKrum',
      model: 'mlp',
      dataset: 'mnist',
    })
  })

  it.each([
    ['byzantineServers', 'PHALANX_BYZANTINE_SERVERS', 'byzantine-servers'],
    ['quorumTimeoutMs', 'PHALANX_QUORUM_TIMEOUT_MS', 'quorum-timeout-ms'],
    ['rule', 'PHALANX_RULE', 'rule'],
    ['encrypter', 'PHALANX_ENCRYPTER', 'encrypter'],
  ])('%s is %s in the environment and --%s as a flag', (field, env, flag) => {
    expect(envName(field)).toBe(env)
    expect(flagName(field)).toBe(flag)
  })

  it('later layers win: file < env < flags', () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-config-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'cluster.yaml')
    writeFileSync(file, 'workers: 20\nrule: median\nrounds: 5\n')
    const config = resolveConfig(
      configFromFile(file),
      configFromEnv({ PHALANX_WORKERS: '16', PHALANX_PRE_AGGREGATION: 'nnm,clip' }),
      { workers: 8 },
    )
    expect(config.workers).toBe(8)
    expect(config.rule).toBe('median')
    expect(config.rounds).toBe(5)
    expect(config.preAggregation).toEqual(['nnm', 'clip'])
  })

  it('reads the encrypter from the environment', () => {
    expect(resolveConfig(configFromEnv({ PHALANX_ENCRYPTER: 'noise' })).encrypter).toBe('noise')
  })

  it.each([
    [{ rule: 'krumm' }, 'rule', /krumm/],
    [{ workers: 0 }, 'workers', /workers/],
    [{ learningRate: -1 }, 'learningRate', /-1/],
    [{ cluster: 'Not Valid' }, 'cluster', /Not Valid/],
    [{ checkpointEvery: 2.5 }, 'checkpointEvery', /2\.5/],
    [{ nonsense: 1 }, 'nonsense', /unknown config field/],
    [{ signFlipScale: 0 }, 'signFlipScale', /= 0, set by .*: not above 0/],
    [{ gaussianSigma: -1 }, 'gaussianSigma', /-1/],
    [{ ipmEpsilon: 'ten' }, 'ipmEpsilon', /"ten"/],
    [{ alieZ: '' }, 'alieZ', /"alieZ" = "", set by .*: empty/],
    [{ hiddenShiftScale: '1e400' }, 'hiddenShiftScale', /"1e400".*Infinity/],
    [{ hiddenShiftSign: 'up' }, 'hiddenShiftSign', /"up".*against-mean/],
    [{ stateDir: '' }, 'stateDir', /"stateDir" = ""/],
    [{ encrypter: 'plaintext' }, 'encrypter', /plaintext/],
  ])('%j fails naming the field %s and the value', (layer, field, message) => {
    expect(() => resolveConfig(layer)).toThrowError(message)
    try {
      resolveConfig(layer)
    } catch (error) {
      expect((error as Error).name).toBe('ConfigError')
      expect((error as { field: string }).field).toBe(field)
    }
  })

  it('attack strengths default to the fixed magnitudes they replace and are read from the environment', () => {
    expect(resolveConfig()).toMatchObject({
      signFlipScale: 1,
      gaussianSigma: 200,
      ipmEpsilon: 0.5,
      hiddenShiftScale: 1,
      hiddenShiftSign: 'against-mean',
    })
    expect(resolveConfig().alieZ).toBeUndefined()
    const config = resolveConfig(
      configFromEnv({
        PHALANX_SIGN_FLIP_SCALE: '10',
        PHALANX_GAUSSIAN_SIGMA: '3',
        PHALANX_IPM_EPSILON: '10',
        PHALANX_ALIE_Z: '100',
        PHALANX_HIDDEN_SHIFT_SCALE: '1000',
        PHALANX_HIDDEN_SHIFT_SIGN: 'negative',
      }),
    )
    expect(config).toMatchObject({
      signFlipScale: 10,
      gaussianSigma: 3,
      ipmEpsilon: 10,
      alieZ: 100,
      hiddenShiftScale: 1000,
      hiddenShiftSign: 'negative',
    })
  })

  it('an unknown rule lists the allowed ones', () => {
    expect(() => resolveConfig({ rule: 'krumm' })).toThrowError(/allowed: .*multiKrum/)
  })

  it('a misspelt PHALANX_ variable is refused, not ignored', () => {
    expect(() => configFromEnv({ PHALANX_WORKRS: '3' })).toThrowError(/PHALANX_WORKRS/)
  })

  it('a missing config file is a ConfigError naming the path', () => {
    expect(() => configFromFile('/nonexistent/phalanx.yaml')).toThrowError(/\/nonexistent\/phalanx.yaml/)
  })
})
