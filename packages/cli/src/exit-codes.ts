/**
 * The one table of `phalanx`'s exit codes, used by every command: the same error ends `local`,
 * `simulate`, `experiment` and the control commands with the same code. The table in
 * docs/OPERATIONS.md ("Exit codes") is `exitCodesMarkdown()`, checked by a test.
 */
import { isPhalanxError } from '@phalanx/errors'

export const exitCodes = {
  ok: { code: 0, meaning: 'the command did what it was asked' },
  failed: {
    code: 1,
    meaning:
      'the run failed once started: a node died, no round completed in time, NATS did not answer, a chaos command was refused, an experiment cell failed',
  },
  usage: {
    code: 2,
    meaning:
      'nothing ran: the command line or the config is wrong (an unknown option or field, a bad value, a field the command does not use, a bound the cluster breaks, a malformed matrix, a missing operator key)',
  },
  outDir: {
    code: 3,
    meaning: 'nothing ran: the `--out` directory cannot be created or written',
  },
  sigint: {
    code: 130,
    meaning:
      'stopped by SIGINT (Ctrl-C); `--out` holds the summary, rounds and report of the rounds done (`"interrupted": "SIGINT"`)',
  },
  sigterm: {
    code: 143,
    meaning: 'stopped by SIGTERM; as for SIGINT (`"interrupted": "SIGTERM"`)',
  },
} as const satisfies Record<string, { code: number; meaning: string }>

export type ExitReason = keyof typeof exitCodes

/** Error codes (`PhalanxError.code`) that mean the user's input, not a failure of the run. */
const usageErrorCodes = [
  'config_invalid',
  'cluster_bound',
  'config_field_not_honoured',
  'matrix_invalid',
  'experiment_cell_invalid',
  'simulate_unsupported',
  'operator_key_invalid',
] as const

/** The exit code of a command that ended with `error`. */
export function exitCodeOf(error: unknown): number {
  if (isPhalanxError(error, usageErrorCodes)) return exitCodes.usage.code
  if (isPhalanxError(error, ['out_dir_unwritable'])) return exitCodes.outDir.code
  return exitCodes.failed.code
}

/** The signals a run command ends cleanly on, with their exit codes (128 + the signal's number). */
export const signalExitCodes = { SIGINT: exitCodes.sigint.code, SIGTERM: exitCodes.sigterm.code } as const
export type StopSignal = keyof typeof signalExitCodes

/** The table as docs/OPERATIONS.md shows it. */
export function exitCodesMarkdown(): string {
  return [
    '| code | meaning |',
    '| --- | --- |',
    ...Object.values(exitCodes).map(({ code, meaning }) => `| ${code} | ${meaning} |`),
  ].join('\n')
}
