import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type ClusterConfig, configFieldHelp, isByzantine } from '@phalanx/node'
import { Command } from 'commander'
import { afterAll, describe, expect, it } from 'vitest'
import { honours, type RunCommand, runCommandNames } from '../src/fields.js'
import { addConfigOptions, configFromCommand, dropConfigVariables } from '../src/options.js'

const dir = mkdtempSync(join(tmpdir(), 'phalanx-cli-config-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

let files = 0
/** A YAML file holding `text`; its path. */
function yaml(text: string): string {
  const path = join(dir, `config-${files++}.yaml`)
  writeFileSync(path, text)
  return path
}

/** The config `phalanx <run> <args>` would start with, parsed without running anything. */
function resolve(run: RunCommand, args: readonly string[], env: NodeJS.ProcessEnv = {}): ClusterConfig {
  const command = addConfigOptions(new Command(run), run).exitOverride()
  command.parse([...args], { from: 'user' })
  return configFromCommand(command, run, env)
}

function failure(run: RunCommand, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  try {
    resolve(run, args, env)
  } catch (error) {
    return error as Error & { code?: string }
  }
  throw new Error(`phalanx ${run} ${args.join(' ')} did not fail`)
}

/** zod's own words, which must never reach a person. */
const jargon = /Invalid input|expected \w+, received|Too (big|small)|invalid_type|NaN \(/

describe('config errors say field, value, source and what is allowed, in plain words', () => {
  it.each<[string, RunCommand, string[], NodeJS.ProcessEnv, readonly (string | RegExp)[]]>([
    [
      'a flag that is not a number',
      'simulate',
      ['--rounds', 'abc'],
      {},
      [
        'config field "rounds" = "abc"',
        'set by flag --rounds',
        'not a number',
        'allowed: a whole number from 1 to',
      ],
    ],
    [
      'NaN is not a number either',
      'simulate',
      ['--learning-rate', 'NaN'],
      {},
      [
        '"learningRate" = "NaN"',
        'flag --learning-rate',
        'not a number',
        'allowed: a number above 0 and at most 100',
      ],
    ],
    [
      'a fraction where a whole number is needed',
      'local',
      ['--servers', '2.5'],
      {},
      ['"servers" = "2.5"', 'not a whole number', 'a whole number from 1 to 64'],
    ],
    [
      'a value past its bound quotes the reason',
      'local',
      ['--servers', '65'],
      {},
      ['"servers" = "65"', 'at most 64 (every server sends its model', 'a whole number from 1 to 64'],
    ],
    [
      'below its minimum',
      'simulate',
      ['--workers', '0'],
      {},
      ['"workers" = "0"', 'less than 1', 'a whole number from 1 to 1024'],
    ],
    [
      'an empty number',
      'simulate',
      ['--alie-z', ''],
      {},
      ['"alieZ" = ""', ': empty', 'a number from -100 to 100'],
    ],
    [
      'a misspelt choice gets the nearest one',
      'simulate',
      ['--rule', 'krumm'],
      {},
      [
        '"rule" = "krumm"',
        'set by flag --rule',
        'not one of the choices',
        'did you mean "krum"?',
        'one of average, median',
      ],
    ],
    [
      'a choice with _ for -',
      'simulate',
      ['--worker-attack', 'sign_flip'],
      {},
      ['did you mean "sign-flip"?'],
    ],
    [
      'a list element',
      'simulate',
      ['--pre-aggregation', 'nnm,clipp'],
      {},
      [
        '"preAggregation" (item 2) = "clipp"',
        'did you mean "clip"?',
        'a comma-separated list of nnm, bucketing, arc, clip',
      ],
    ],
    [
      'a boolean',
      'server',
      ['--chaos', 'yes'],
      {},
      ['"chaos" = "yes"', 'neither true nor false', 'allowed: true or false'],
    ],
    [
      'a pattern quotes what it wants',
      'local',
      ['--cluster', 'Not Valid'],
      {},
      ['"cluster" = "Not Valid"', 'not in the allowed form', 'allowed: lowercase letters, digits and -'],
    ],
    [
      'a variable names itself',
      'simulate',
      [],
      { PHALANX_SEED: '-1' },
      ['"seed" = "-1"', 'set by environment variable PHALANX_SEED', 'less than 0'],
    ],
    [
      'a misspelt variable gets the nearest name',
      'simulate',
      [],
      { PHALANX_WORKRS: '3' },
      ['unknown environment variable PHALANX_WORKRS', 'did you mean PHALANX_WORKERS?'],
    ],
    [
      'a flag beats the variable it overrides, and is blamed',
      'simulate',
      ['--rounds', 'x'],
      { PHALANX_ROUNDS: '5' },
      ['"rounds" = "x"', 'set by flag --rounds'],
    ],
  ])('%s', (_case, run, args, env, words) => {
    const error = failure(run, args, env)
    expect(error.code).toBe('config_invalid')
    expect(error.name).toBe('ConfigError')
    for (const word of words) expect(error.message).toContain(word)
    expect(error.message).not.toMatch(jargon)
    // The schema's 50-odd names are never dumped at the reader.
    expect(error.message).not.toContain('byzantineNodeIds, members')
  })

  it.each<[string, string, readonly string[]]>([
    [
      'a bad value names the file and its line',
      'rounds: 5\nrule: krumm\n',
      ['"rule" = "krumm"', 'line 2', 'did you mean "krum"?'],
    ],
    [
      'an unknown key gets the nearest field',
      'rounds: 5\n\nrulle: krum\n',
      ['unknown config field "rulle"', 'line 3', 'did you mean "rule"?'],
    ],
    [
      'a flag spelling in a file gets the field',
      'byzantine-workers: 1\n',
      ['unknown config field "byzantine-workers"', 'line 1', 'did you mean "byzantineWorkers"?'],
    ],
    [
      'a scalar where a list belongs',
      'preAggregation: nnm\n',
      ['"preAggregation" = "nnm"', 'line 1', 'not a list'],
    ],
    ['a number where text belongs', 'datasetPath: 5\n', ['"datasetPath" = 5', 'not text']],
    [
      'YAML that does not parse names its line',
      'rounds: 5\nrule: a: b\nseed: 1\n',
      ['is not valid YAML', 'line 2'],
    ],
  ])('a config file: %s', (_case, text, words) => {
    const path = yaml(text)
    const error = failure('simulate', ['--config', path])
    expect(error.code).toBe('config_invalid')
    expect(error.message).toContain(`config file ${path}`)
    for (const word of words) expect(error.message).toContain(word)
    expect(error.message).not.toMatch(jargon)
  })
})

describe('a command refuses a field it does not honour', () => {
  it.each<[RunCommand, string[], NodeJS.ProcessEnv, string, string]>([
    ['simulate', ['--quorum-timeout-ms', '5000'], {}, 'quorumTimeoutMs', 'flag --quorum-timeout-ms'],
    [
      'simulate',
      [],
      { PHALANX_NATS_URL: 'nats://127.0.0.1:4222' },
      'natsUrl',
      'environment variable PHALANX_NATS_URL',
    ],
    ['local', ['--node-id', 'server-0'], {}, 'nodeId', 'flag --node-id'],
    ['local', [], { PHALANX_OPS_PORT: '9464' }, 'opsPort', 'environment variable PHALANX_OPS_PORT'],
    ['local', ['--state-dir', '/tmp/state'], {}, 'stateDir', 'flag --state-dir'],
    ['worker', ['--state-dir', '/tmp/state'], {}, 'stateDir', 'flag --state-dir'],
  ])('%s %j %j: %s', (run, args, env, field, source) => {
    const error = failure(run, args, env)
    expect(error.code).toBe('config_field_not_honoured')
    expect(error.name).toBe('FieldNotHonouredError')
    expect(error.message).toContain(`phalanx ${run} does not use config field "${field}", set by ${source}`)
    expect(error.message).toMatch(/; it is used by phalanx \w+/)
  })

  it('names the file and line of a field set in a config file', () => {
    const path = yaml('rounds: 3\nquorumTimeoutMs: 5000\n')
    const error = failure('simulate', ['--config', path])
    expect(error.code).toBe('config_field_not_honoured')
    expect(error.message).toContain(`set by config file ${path}, line 2`)
  })

  it('every field is honoured by some run command, and training fields by all of them', () => {
    for (const { field } of configFieldHelp()) {
      expect(
        runCommandNames.some((run) => honours(run, field)),
        field,
      ).toBe(true)
    }
    for (const field of ['rule', 'workers', 'workerAttack', 'signFlipScale', 'alieZ', 'rounds', 'seed']) {
      for (const run of runCommandNames) expect(honours(run, field), `${run} ${field}`).toBe(true)
    }
  })
})

describe('safe defaults outside local', () => {
  it('a lone server-0 does not attack unless asked', () => {
    const config = resolve('server', ['--node-id', 'server-0'])
    // F = 1 stays the tolerance the quorums are sized for; the node runs the honest behaviour.
    expect(isByzantine(config, 'server-0')).toBe(true)
    expect(config.serverAttack).toBe('none')
    expect(config.workerAttack).toBe('none')
  })

  it('a lone worker-0 does not attack unless asked', () => {
    expect(resolve('worker', ['--node-id', 'worker-0']).workerAttack).toBe('none')
  })

  it.each<[string, string[], NodeJS.ProcessEnv, string | undefined]>([
    ['a flag', ['--server-attack', 'shift'], {}, undefined],
    ['a variable', [], { PHALANX_SERVER_ATTACK: 'shift' }, undefined],
    ['a file', [], {}, 'serverAttack: shift\n'],
  ])('%s asks for an attack and gets it', (_case, args, env, file) => {
    const fileArgs = file === undefined ? [] : ['--config', yaml(file)]
    expect(resolve('server', ['--node-id', 'server-0', ...args, ...fileArgs], env).serverAttack).toBe('shift')
  })

  it('local keeps the demonstration cluster: one shifting server, two ALIE workers', () => {
    expect(resolve('local', [])).toMatchObject({
      byzantineServers: 1,
      serverAttack: 'shift',
      byzantineWorkers: 2,
      workerAttack: 'alie',
    })
  })

  it('file < environment < flags', () => {
    const path = yaml('rounds: 7\nseed: 3\nrule: median\n')
    const config = resolve('simulate', ['--config', path, '--rule', 'krum'], { PHALANX_SEED: '9' })
    expect(config).toMatchObject({ rounds: 7, seed: 9, rule: 'krum' })
  })

  it('list flags are comma-separated', () => {
    expect(resolve('simulate', ['--pre-aggregation', 'nnm,clip']).preAggregation).toEqual(['nnm', 'clip'])
  })
})

describe('the nodes local starts inherit no config variable', () => {
  it("drops every config field's variable once the config is read, and keeps the rest", () => {
    const env = { PHALANX_OUT: 'out/', PHALANX_ROUNDS: '5', PHALANX_LOG_LEVEL: 'debug', PATH: '/usr/bin' }
    expect(resolve('local', [], env)).toMatchObject({ out: 'out/', rounds: 5 })
    dropConfigVariables(env)
    expect(env).toEqual({ PHALANX_LOG_LEVEL: 'debug', PATH: '/usr/bin' })
  })
})
