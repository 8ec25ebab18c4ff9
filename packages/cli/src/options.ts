/**
 * Flags generated from the one config schema, so a field added to the schema is a flag, an
 * environment variable and a YAML key at once, validated in one place. Its `--help` line comes
 * from the schema too: the field's description, its choices (from the registry that defines
 * them), its default and its environment variable.
 */
import {
  type ClusterConfig,
  configFieldHelp,
  configFromEnv,
  configFromFile,
  type FieldHelp,
  flagName,
  listFields,
  resolveConfig,
} from '@phalanx/node'
import type { Command } from 'commander'

const fields = configFieldHelp()

/** `rule of the servers (one of: average, median, …; default: multiKrum; env: PHALANX_RULE)`. */
export function helpLine(help: FieldHelp): string {
  const notes = [
    ...(help.choices === undefined ? [] : [`${help.list ? 'any of' : 'one of'}: ${help.choices.join(', ')}`]),
    ...(help.default === undefined ? [] : [`default: ${help.default}`]),
    `env: ${help.env}`,
  ]
  return `${help.description} (${notes.join('; ')})`
}

export function addConfigOptions(command: Command): Command {
  command.option('--config <file>', 'YAML config file (flags and PHALANX_* variables override it)')
  for (const help of fields) command.option(`--${flagName(help.field)} <value>`, helpLine(help))
  return command
}

/** file < environment < flags, validated by the schema. */
export function configFromOptions(options: Record<string, unknown>, env: NodeJS.ProcessEnv): ClusterConfig {
  const fromFlags: Record<string, unknown> = {}
  for (const { field } of fields) {
    const value = options[field]
    if (value === undefined) continue
    fromFlags[field] = listFields.has(field) ? String(value).split(',').filter(Boolean) : value
  }
  const fromFile = typeof options.config === 'string' ? configFromFile(options.config) : {}
  return resolveConfig(fromFile, configFromEnv(env), fromFlags)
}
