#!/usr/bin/env node
/**
 * `phalanx`: the command a person, a test and a container run. Every command reads the one
 * config schema (YAML file < PHALANX_* environment < flags); a wrong value fails at start-up
 * with the field, the value and what is allowed.
 */
import { fileURLToPath } from 'node:url'
import { isPhalanxError } from '@phalanx/errors'
import { type RoundRow, type RunSummary, runLocalCluster, runSimulation, writeRunReport } from '@phalanx/lab'
import { type ClusterConfig, type NodeReport, runNodeProcess } from '@phalanx/node'
import { Command } from 'commander'
import pino, { type Logger } from 'pino'
import { addControlCommands } from './control-commands.js'
import { addExperimentCommand } from './experiment-command.js'
import { addConfigOptions, configFromOptions } from './options.js'
import { progressLine, summaryTable } from './view.js'

const cliPath = fileURLToPath(import.meta.url)

function logger(quiet: boolean): Logger {
  return pino({
    level: process.env.PHALANX_LOG_LEVEL ?? (quiet ? 'warn' : 'info'),
    base: { pid: process.pid },
  })
}

/** The codes of errors that are the user's config, not a failure of the run: exit code 2. */
const configErrorCodes = ['config_invalid', 'cluster_bound'] as const

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

function finish(config: ClusterConfig, title: string, summary: RunSummary, rows: RoundRow[]): void {
  console.log(summaryTable(title, summary))
  if (config.out !== undefined) {
    writeRunReport(config.out, title, summary, rows)
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

const program = new Command()
  .name('phalanx')
  .description('Byzantine-resilient distributed training: N servers (F Byzantine), n workers (f Byzantine)')
  .showHelpAfterError()

addConfigOptions(
  program
    .command('local')
    .description(
      'start a whole cluster on this machine (one process per node, libp2p on loopback) and train',
    ),
).action(async (options: Record<string, unknown>) =>
  guarded(async () => {
    const config = configFromOptions(options, process.env)
    const tty = process.stdout.isTTY === true
    const log = logger(tty)
    const title = `phalanx local: N=${config.servers} (F=${config.byzantineServers} ${config.serverAttack}), n=${config.workers} (f=${config.byzantineWorkers} ${config.workerAttack}), ${config.rule}, ${config.model}/${config.dataset}`
    console.log(title)
    const { summary, rows, logDir } = await runLocalCluster({
      config,
      log,
      command: [process.execPath, cliPath],
      signal: abortOnSignals(),
      onRound: (row) => {
        if (tty) process.stdout.write(`\r${progressLine(row, config.rounds)}`)
        else log.info({ ...row }, 'round')
      },
    })
    if (tty) process.stdout.write('\n')
    console.log(`node logs: ${logDir}`)
    finish(config, title, summary, rows)
  }),
)

for (const role of ['server', 'worker'] as const) {
  addConfigOptions(
    program
      .command(role)
      .description(`run one ${role} (what a container runs); --node-id names it (${role}-<i>)`),
  ).action(async (options: Record<string, unknown>) =>
    guarded(async () => {
      const config = configFromOptions(options, process.env)
      const log = logger(false)
      const report = process.send ? (message: NodeReport) => process.send?.(message) : undefined
      await runNodeProcess({ config, log, signal: abortOnSignals(), ...(report ? { report } : {}) })
      process.disconnect?.()
    }),
  )
}

addConfigOptions(
  program
    .command('simulate')
    .description(
      'the whole protocol in one process: N servers (F Byzantine, with the median exchange) and n workers, same rules, attacks, model and data; deterministic for a seed',
    ),
).action(async (options: Record<string, unknown>) =>
  guarded(async () => {
    const config = configFromOptions(options, process.env)
    const tty = process.stdout.isTTY === true
    const log = logger(tty)
    const title = `phalanx simulate: N=${config.servers} (F=${config.byzantineServers} ${config.serverAttack}), n=${config.workers} (f=${config.byzantineWorkers} ${config.workerAttack}), ${config.rule}, ${config.model}/${config.dataset}`
    console.log(title)
    const { summary, rows } = await runSimulation(config, {
      log,
      onRound: (row) => {
        if (tty) process.stdout.write(`\r${progressLine(row, config.rounds)}`)
      },
    })
    if (tty) process.stdout.write('\n')
    finish(config, title, summary, rows)
  }),
)

addExperimentCommand(program)
addControlCommands(program)
await program.parseAsync(process.argv)
