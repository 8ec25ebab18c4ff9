/**
 * The `phalanx` program: every command and its options, built without running anything, so that
 * the tests read the very `--help` a person gets. Every run command reads the one config schema
 * (its defaults < YAML file < PHALANX_* environment < flags); a wrong value, or a field the
 * command does not honour, fails at start-up with the field, the value, where it was set and
 * what is allowed.
 */
import { isPhalanxError } from '@phalanx/errors'
import {
  type ReportDetail,
  type RoundRow,
  type RunSummary,
  runLocalCluster,
  runSimulation,
  writeRunReport,
} from '@phalanx/lab'
import { type ClusterConfig, type NodeReport, runNodeProcess } from '@phalanx/node'
import { Command } from 'commander'
import pino, { type Logger } from 'pino'
import { addControlCommands } from './control-commands.js'
import { addExperimentCommand } from './experiment-command.js'
import type { RunCommand } from './fields.js'
import { addConfigOptions, configFromCommand, dropConfigVariables } from './options.js'
import { cliVersion } from './version.js'
import { progressLine, summaryTable } from './view.js'

function logger(quiet: boolean): Logger {
  return pino({
    level: process.env.PHALANX_LOG_LEVEL ?? (quiet ? 'warn' : 'info'),
    base: { pid: process.pid },
  })
}

/** The codes of errors that are the user's config, not a failure of the run: exit code 2. */
const configErrorCodes = ['config_invalid', 'cluster_bound', 'config_field_not_honoured'] as const

/** Runs `action`, turning a thrown error into one clear line and exit code 1 (2 for config). */
async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action()
  } catch (error) {
    const err = error as Error
    console.error(`phalanx: ${err.name}: ${err.message}`)
    process.exitCode = isPhalanxError(error, configErrorCodes) ? 2 : 1
  }
}

function finish(
  config: ClusterConfig,
  title: string,
  summary: RunSummary,
  rows: RoundRow[],
  detail: ReportDetail,
): void {
  console.log(summaryTable(title, summary))
  if (config.out !== undefined) {
    writeRunReport(config.out, title, summary, rows, detail)
    console.log(`wrote ${config.out}/summary.json, rounds.csv, report.html`)
  }
}

function abortOnSignals(): AbortSignal {
  const controller = new AbortController()
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => controller.abort(new Error(`received ${signal}`)))
  }
  return controller.signal
}

/** `f=2 alie`, or `f=0` alone: an attack nobody runs is not named. */
const attackers = (symbol: string, count: number, attack: string) =>
  count === 0 ? `${symbol}=0` : `${symbol}=${count} ${attack}`

/** A run command: its config options, and an action handed the config it resolved. */
function runCommand(
  program: Command,
  name: RunCommand,
  description: string,
  action: (config: ClusterConfig) => Promise<void>,
): void {
  addConfigOptions(program.command(name).description(description), name).action(
    async (_options: unknown, command: Command) =>
      guarded(async () => action(configFromCommand(command, name, process.env))),
  )
}

export interface ProgramInit {
  /** The file a node process runs (`node <cliPath> server|worker`): the running bin. */
  cliPath: string
}

export function createProgram(init: ProgramInit): Command {
  const program = new Command()
    .name('phalanx')
    .description('Byzantine-resilient distributed training: N servers (F Byzantine), n workers (f Byzantine)')
    .version(cliVersion, '-V, --version', 'print the version of phalanx')
    // The whole --help of a run command is long: a usage error points to it instead.
    .showHelpAfterError('(phalanx <command> --help lists the options)')

  runCommand(
    program,
    'local',
    'start a whole cluster on this machine (one process per node, libp2p on loopback) and train',
    async (config) => {
      const tty = process.stdout.isTTY === true
      const log = logger(tty)
      const title = `phalanx local: N=${config.servers} (${attackers('F', config.byzantineServers, config.serverAttack)}), n=${config.workers} (${attackers('f', config.byzantineWorkers, config.workerAttack)}), ${config.rule}, ${config.model}/${config.dataset}`
      console.log(title)
      dropConfigVariables(process.env)
      const { summary, rows, logDir, detail } = await runLocalCluster({
        config,
        log,
        command: [process.execPath, init.cliPath],
        signal: abortOnSignals(),
        onRound: (row) => {
          if (tty) process.stdout.write(`\r${progressLine(row, config.rounds)}`)
          else log.info({ ...row }, 'round')
        },
      })
      if (tty) process.stdout.write('\n')
      console.log(`node logs: ${logDir}`)
      finish(config, title, summary, rows, detail)
    },
  )

  for (const role of ['server', 'worker'] as const) {
    runCommand(
      program,
      role,
      `run one ${role} (what a container runs); --node-id names it (${role}-<i>); it attacks only when --${role}-attack says so`,
      async (config) => {
        const log = logger(false)
        const report = process.send ? (message: NodeReport) => process.send?.(message) : undefined
        await runNodeProcess({ config, log, signal: abortOnSignals(), ...(report ? { report } : {}) })
        process.disconnect?.()
      },
    )
  }

  runCommand(
    program,
    'simulate',
    'the whole protocol in one process: N servers (F Byzantine, with the median exchange) and n workers, same rules, attacks, model and data; deterministic for a seed',
    async (config) => {
      const tty = process.stdout.isTTY === true
      const log = logger(tty)
      const title = `phalanx simulate: N=${config.servers} (${attackers('F', config.byzantineServers, config.serverAttack)}), n=${config.workers} (${attackers('f', config.byzantineWorkers, config.workerAttack)}), ${config.rule}, ${config.model}/${config.dataset}`
      console.log(title)
      const { summary, rows, detail } = await runSimulation(config, {
        log,
        onRound: (row) => {
          if (tty) process.stdout.write(`\r${progressLine(row, config.rounds)}`)
        },
      })
      if (tty) process.stdout.write('\n')
      finish(config, title, summary, rows, detail)
    },
  )

  addExperimentCommand(program)
  addControlCommands(program)
  return program
}
