import { ruleNames } from '@phalanx/aggregation'
import { configFieldHelp, envName, flagName, workerBehaviourNames } from '@phalanx/node'
import { Command } from 'commander'
import { describe, expect, it } from 'vitest'
import { addConfigOptions, helpLine } from '../src/options.js'

const help = configFieldHelp()
const byField = new Map(help.map((entry) => [entry.field, entry]))

describe('--help is derived from the config schema', () => {
  it('every field has a description, so no flag is shown by its bare name', () => {
    for (const entry of help) expect(entry.description, entry.field).not.toBe('')
  })

  it.each([
    ['rule', ruleNames, 'multiKrum'],
    ['workerAttack', workerBehaviourNames, 'alie'],
    ['servers', undefined, '4'],
    ['alieZ', undefined, undefined],
    ['preAggregation', ['nnm', 'bucketing', 'arc', 'clip'], undefined],
    ['listen', undefined, '/ip4/127.0.0.1/tcp/0'],
  ] as const)('%s: choices %j, default %s', (field, choices, defaultValue) => {
    const entry = byField.get(field)!
    expect(entry.choices).toEqual(choices)
    expect(entry.default).toBe(defaultValue)
    expect(entry.env).toBe(envName(field))
    const line = helpLine(entry)
    for (const choice of choices ?? []) expect(line).toContain(choice)
    expect(line).toContain(`env: ${envName(field)}`)
    if (defaultValue !== undefined) expect(line).toContain(`default: ${defaultValue}`)
  })

  it('every field is a flag with its help line, and none sets a value itself', () => {
    const command = addConfigOptions(new Command('local'))
    for (const entry of help) {
      const option = command.options.find((o) => o.long === `--${flagName(entry.field)}`)
      expect(option?.description).toBe(helpLine(entry))
      // A default here would be a flag the user did not give, overriding the file and the environment.
      expect(option?.defaultValue).toBeUndefined()
    }
  })
})
