import { readFileSync } from 'node:fs'
import { ruleNames } from '@phalanx/aggregation'
import { configFieldHelp, envName, flagName, serverBehaviourNames, workerBehaviourNames } from '@phalanx/node'
import type { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { commandDefaults, honours, runCommandNames, scopeOf, scopes } from '../src/fields.js'
import { placeholder } from '../src/options.js'
import { createProgram } from '../src/program.js'

const fields = configFieldHelp()
const byField = new Map(fields.map((help) => [help.field, help]))

function program(): Command {
  const built = createProgram({ cliPath: '/nonexistent/bin.js' })
  // One line per option, so that a line holds an option's whole description.
  const wide = (command: Command) => {
    command.configureHelp({ helpWidth: 100_000 })
    command.exitOverride()
    command.configureOutput({ writeOut: () => {}, writeErr: () => {} })
    for (const sub of command.commands) wide(sub)
  }
  wide(built)
  return built
}

function help(name: string): string {
  const command = program().commands.find((sub) => sub.name() === name)
  if (command === undefined) throw new Error(`no command ${name}`)
  return command.helpInformation()
}

/** The help line of `--flag`, or undefined when the command does not list it. */
const line = (text: string, flag: string) =>
  text.split('\n').find((l) => l.trimStart().startsWith(`${flag} `))

describe('--help of the run commands lists what each honours, from the schema', () => {
  it.each(runCommandNames)('%s lists exactly the fields it honours, each with its env variable', (name) => {
    const text = help(name)
    for (const { field, env } of fields) {
      const listed = line(text, `--${flagName(field)}`)
      if (honours(name, field)) {
        expect(listed, `${name} --${flagName(field)}`).toBeDefined()
        expect(listed).toContain(`env: ${env}`)
      } else {
        expect(listed, `${name} must not list --${flagName(field)}`).toBeUndefined()
      }
    }
    expect(line(text, '--config')).toBeDefined()
  })

  it.each([
    // Fields that belong to other commands are not listed.
    ['simulate', ['--quorum-timeout-ms', '--encrypter', '--node-id', '--nats-url', '--state-dir']],
    [
      'local',
      ['--node-id', '--members', '--listen', '--bootstrap', '--key-file', '--ops-port', '--state-dir'],
    ],
    ['worker', ['--state-dir']],
  ] as const)('%s does not list %j', (name, absent) => {
    const text = help(name)
    for (const flag of absent) expect(line(text, flag), `${name} ${flag}`).toBeUndefined()
  })

  it.each([
    ['simulate', '--rule', 'name', ruleNames, 'multiKrum'],
    ['local', '--server-attack', 'name', serverBehaviourNames, 'shift'],
    ['server', '--server-attack', 'name', serverBehaviourNames, 'none'],
    ['worker', '--worker-attack', 'name', workerBehaviourNames, 'none'],
    ['local', '--worker-attack', 'name', workerBehaviourNames, 'alie'],
    ['server', '--chaos', 'bool', ['true', 'false'], 'false'],
    ['simulate', '--pre-aggregation', 'names', ['nnm', 'bucketing', 'arc', 'clip'], undefined],
    ['local', '--servers', 'int', undefined, '4'],
    ['simulate', '--learning-rate', 'number', undefined, '1'],
    ['server', '--key-file', 'file', undefined, undefined],
    ['server', '--listen', 'list', undefined, '/ip4/127.0.0.1/tcp/0'],
    ['simulate', '--out', 'dir', undefined, undefined],
  ] as const)('%s %s <%s>: choices %j, default %s', (name, flag, type, choices, defaultValue) => {
    const listed = line(help(name), flag)
    expect(listed).toBeDefined()
    expect(listed).toContain(`${flag} <${type}>`)
    for (const choice of choices ?? []) expect(listed).toContain(`"${choice}"`)
    if (defaultValue === undefined) expect(listed).not.toContain('default:')
    else expect(listed).toContain(`default: ${defaultValue},`)
  })

  it.each([
    ['servers', 'a whole number from 1 to 64'],
    ['momentum', 'a number from 0 to 0.999'],
    ['learningRate', 'a number above 0 and at most 100'],
  ] as const)('--%s shows its range: %s', (field, range) => {
    expect(line(help('local'), `--${flagName(field)}`)).toContain(range)
  })

  it('every field has a description, so no flag is shown by its bare name', () => {
    for (const { field, description } of fields) {
      expect(description, field).not.toBe('')
      expect(description, field).not.toBe(field)
    }
  })

  it('options are grouped under their scope heading', () => {
    const text = help('local')
    const heading = (field: string) => `${scopes[scopeOf(field)].heading}:`
    expect(text.indexOf(heading('rule'))).toBeLessThan(text.indexOf('--rule <'))
    expect(text.indexOf(heading('servers'))).toBeLessThan(text.indexOf('--servers <'))
    expect(text.indexOf(heading('out'))).toBeLessThan(text.indexOf('--out <'))
    expect(text).not.toContain(`${scopes.node.heading}:`)
  })

  it('every placeholder says what the value is', () => {
    for (const entry of fields) expect(placeholder(entry), entry.field).not.toBe('value')
    expect(placeholder(byField.get('natsUrl')!)).toBe('url')
    expect(placeholder(byField.get('stateDir')!)).toBe('dir')
  })

  it('the command defaults name real fields and values the schema accepts', () => {
    for (const [name, defaults] of Object.entries(commandDefaults)) {
      for (const [field, value] of Object.entries(defaults)) {
        const entry = byField.get(field as never)
        expect(entry, `${name}: ${field}`).toBeDefined()
        if (entry?.choices !== undefined) expect(entry.choices).toContain(value)
      }
    }
  })
})

describe('--help of the other commands', () => {
  it.each([
    ['watch', ['--nats-url <url>', '--cluster <id>', '--members <list>', '--duration-ms <ms>']],
    ['chaos', ['--nats-url <url>', '--operator-key <file>', '--attack <name>', '--strength <number>']],
    ['admit', ['--nats-url <url>', '--operator-key <file>', '--role <role>']],
    ['evict', ['--nats-url <url>', '--operator-key <file>']],
    ['experiment', ['--out <dir>', '--mode <mode>', '--dry-run']],
    ['keygen', ['--out <file>']],
  ] as const)('%s lists %j and none of the run fields', (name, flags) => {
    const text = help(name)
    for (const flag of flags) expect(text).toContain(flag)
    for (const flag of ['--rounds', '--rule', '--node-id', '--servers'])
      expect(line(text, flag)).toBeUndefined()
  })

  it.each([
    ['watch', 'natsUrl'],
    ['watch', 'cluster'],
    ['watch', 'members'],
    ['chaos', 'natsCredsFile'],
    ['admit', 'natsTlsCaFile'],
    ['evict', 'natsNkeySeedFile'],
  ] as const)('%s names the variable of %s, as a node reads it', (name, field) => {
    expect(help(name)).toContain(`env: ${envName(field)}`)
  })

  it('chaos and admit list their choices, experiment its modes', () => {
    expect(help('chaos')).toContain('choices: "kill", "pause", "resume", "corrupt", "partition", "heal"')
    expect(help('admit')).toContain('choices: "server", "worker"')
    expect(help('experiment')).toContain('choices: "local", "simulate"')
  })
})

describe('phalanx --version', () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
    version: string
  }

  it.each([['--version'], ['-V']])('%s prints the package version %s', (flag) => {
    const built = program()
    let written = ''
    built.configureOutput({ writeOut: (text) => (written += text) })
    expect(() => built.parse([flag], { from: 'user' })).toThrow(expect.objectContaining({ exitCode: 0 }))
    expect(written.trim()).toBe(version)
  })
})
