/** The codes of `@phalanx/cli`: what the command refuses before it runs anything. */
import { PhalanxError } from '@phalanx/errors'

export const cliErrorCodes = ['config_field_not_honoured'] as const
export type CliErrorCode = (typeof cliErrorCodes)[number]

/**
 * A config field was set (by a flag, the environment or a file) for a command that would ignore
 * it: refused, since a setting silently ignored is a run that is not the one asked for.
 */
export class FieldNotHonouredError extends PhalanxError<
  'config_field_not_honoured',
  { command: string; field: string; source: string; honouredBy: readonly string[] }
> {
  override readonly name = 'FieldNotHonouredError'
  declare readonly command: string
  declare readonly field: string
  declare readonly source: string
  declare readonly honouredBy: readonly string[]

  constructor(details: {
    command: string
    field: string
    source: string
    honouredBy: readonly string[]
    why: string
  }) {
    const { why, ...rest } = details
    super('config_field_not_honoured', rest, {
      message: `phalanx ${rest.command} does not use config field "${rest.field}", set by ${rest.source}: ${why}; it is used by ${rest.honouredBy.map((command) => `phalanx ${command}`).join(', ')}`,
    })
  }
}
