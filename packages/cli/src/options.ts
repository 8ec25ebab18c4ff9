/**
 * Flags generated from the one config schema, so a field added to the schema is a flag, an
 * environment variable and a YAML key at once, validated in one place. A run command lists the
 * fields it honours (`fields.ts`), each with its kind and range, choices, default and environment
 * variable, all read from the schema; the others stay accepted but hidden, so that setting one
 * is refused in words (`FieldNotHonouredError`) rather than as an unknown flag.
 */
import {
  type ClusterConfig,
  configFieldHelp,
  configFromEnv,
  configFromFile,
  configSourceOf,
  type FieldHelp,
  flagName,
  resolveConfig,
  withConfigSource,
} from '@phalanx/node'
import { type Command, Option } from 'commander'
import { FieldNotHonouredError } from './errors.js'
import { commandDefaults, commandsHonouring, honours, type RunCommand, scopeOf, scopes } from './fields.js'

const fields = configFieldHelp()

/** `<int>`, `<name>`, `<names>`, `<file>`…: what the value is, from the field's shape. */
export function placeholder(help: FieldHelp): string {
  const { kind, list } = help.shape
  switch (kind) {
    case 'choice':
      return list ? 'names' : 'name'
    case 'integer':
      return 'int'
    case 'number':
      return 'number'
    case 'boolean':
      return 'bool'
    case 'text':
      if (help.field.endsWith('File')) return 'file'
      if (help.field.endsWith('Url')) return 'url'
      if (/^directory\b/.test(help.description)) return 'dir'
      return list ? 'list' : 'text'
  }
}

/** The default `command` starts with: its own (`commandDefaults`), else the schema's. */
export function defaultFor(command: RunCommand, help: FieldHelp): string | undefined {
  const own = commandDefaults[command][help.field]
  return own === undefined ? help.default : String(own)
}

/** One field's flag: description with the allowed range, choices, default, env and heading. */
export function fieldOption(command: RunCommand, help: FieldHelp): Option {
  const { kind } = help.shape
  const ranged = kind === 'integer' || kind === 'number'
  const option = new Option(
    `--${flagName(help.field)} <${placeholder(help)}>`,
    ranged ? `${help.description}: ${help.allowed}` : help.description,
  )
  if (help.choices !== undefined) option.choices(help.choices)
  else if (kind === 'boolean') option.choices(['true', 'false'])
  const shown = defaultFor(command, help)
  // Shown in --help; the value itself is the schema's (or the command's) default, applied below
  // the file and the environment, never as if it were a flag.
  if (shown !== undefined) option.default(shown, shown)
  option.env(help.env)
  // Raw text: the schema checks it, with the file and the environment, and says what is wrong in
  // words (commander's choice check would refuse a flag in its own words and a variable not at all).
  option.argParser((value: string) => value)
  option.helpGroup(`${scopes[scopeOf(help.field)].heading}:`)
  if (!honours(command, help.field)) option.hideHelp()
  return option
}

export function addConfigOptions(command: Command, run: RunCommand): Command {
  command.addOption(
    new Option('--config <file>', 'YAML config file (PHALANX_* variables and flags override it)').helpGroup(
      'Config:',
    ),
  )
  // Grouped by scope, in the table's order (commander lists a heading where its first option is).
  const order = Object.keys(scopes)
  const sorted = [...fields].sort((a, b) => order.indexOf(scopeOf(a.field)) - order.indexOf(scopeOf(b.field)))
  for (const help of sorted) command.addOption(fieldOption(run, help))
  return command
}

/** Refuses the first field of `layers` that `run` does not honour, naming where it was set. */
export function checkHonoured(run: RunCommand, layers: readonly Record<string, unknown>[]): void {
  const known = new Set<string>(fields.map(({ field }) => field))
  for (const layer of layers) {
    for (const [field, value] of Object.entries(layer)) {
      // Unknown names are the schema's to refuse, with a suggestion.
      if (value === undefined || !known.has(field) || honours(run, field)) continue
      throw new FieldNotHonouredError({
        command: run,
        field,
        source: configSourceOf(layer, field) ?? 'the caller',
        honouredBy: commandsHonouring(field),
        why: scopes[scopeOf(field)].refusal,
      })
    }
  }
}

/**
 * The config of `run`: the command's defaults < file < environment < flags, refused when it sets
 * a field `run` does not honour, then validated by the schema. Only flags given on the command
 * line count as flags (commander also fills in defaults and variables, which are read here from
 * their own layers).
 */
export function configFromCommand(command: Command, run: RunCommand, env: NodeJS.ProcessEnv): ClusterConfig {
  const options = command.opts()
  const fromFlags: Record<string, unknown> = {}
  for (const { field, list } of fields) {
    if (command.getOptionValueSource(field) !== 'cli') continue
    const value = String(options[field])
    fromFlags[field] = list ? value.split(',').filter(Boolean) : value
  }
  withConfigSource(fromFlags, (field) => `flag --${flagName(field)}`)
  const fromFile = typeof options.config === 'string' ? configFromFile(options.config) : {}
  const fromEnv = configFromEnv(env)
  checkHonoured(run, [fromFile, fromEnv, fromFlags])
  const defaults = withConfigSource({ ...commandDefaults[run] }, () => `the default of phalanx ${run}`)
  return resolveConfig(defaults, fromFile, fromEnv, fromFlags)
}

/**
 * Removes the config's variables from `env` once the config is read. A command that starts node
 * processes (`local`, an experiment's cells) hands each node its whole config as `PHALANX_*`
 * variables of its own, over what it inherits; an inherited one that config does not carry
 * (`PHALANX_OUT`: the run's, not a node's) would still reach the node, which refuses it.
 */
export function dropConfigVariables(env: NodeJS.ProcessEnv): void {
  for (const { env: name } of fields) delete env[name]
}
