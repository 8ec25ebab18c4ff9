/**
 * The `phalanx` program: every command and its options, built without running anything, so that
 * the tests read the very `--help` a person gets. Every run command reads the one config schema
 * (its defaults < YAML file < PHALANX_* environment < flags); a wrong value, or a field the
 * command does not honour, fails at start-up with the field, the value, where it was set and
 * what is allowed.
 */
import {
  type BaselineKind,
  baselineKinds,
  checkOutDir,
  type ReportDetail,
  type RoundRow,
  type RunSummary,
  runBaseline,
  runLocalCluster,
  runNodeWithOutputs,
  runSimulation,
  writeRunReport,
} from '@phalanx/lab'
import { type ClusterConfig, checkClusterBounds, type NodeReport } from '@phalanx/node'
import { Command, Option } from 'commander'
import pino, { type Logger } from 'pino'
import { addControlCommands } from './control-commands.js'
import { exitCodeOf, signalExitCodes } from './exit-codes.js'
import { addExperimentCommand } from './experiment-command.js'
import type { RunCommand } from './fields.js'
import { addConfigOptions, configFromCommand, dropConfigVariables } from './options.js'
import { type StopSignals, stopOnSignals, stoppedBy } from './stop.js'
import { cliVersion } from './version.js'
import { ProgressView, summaryTable } from './view.js'

/**
 * Where a run command writes what: logs (pino JSON) and the progress line on stderr, results on
 * stdout. On a terminal the progress line is drawn and logs are quiet (warnings and errors, drawn
 * above the line); elsewhere every round is an info log line.
 */
interface RunStreams {
  log: Logger
  progress: ProgressView | undefined
  /** `--json`: stdout holds the summary as JSON and nothing else. */
  json: boolean
  /** A line that is not the result (where the logs and the report went): stdout, or stderr under `--json`. */
  note(line: string): void
  stop: StopSignals
}

function runStreams(json: boolean): RunStreams {
  const tty = process.stderr.isTTY === true
  const progress = tty ? new ProgressView(process.stderr) : undefined
  const log = pino(
    { level: process.env.PHALANX_LOG_LEVEL ?? (tty ? 'warn' : 'info'), base: { pid: process.pid } },
    progress === undefined ? pino.destination(2) : { write: (line: string) => progress.print(line) },
  )
  const note = (line: string) => (json ? console.error(line) : console.log(line))
  return { log, progress, json, note, stop: stopOnSignals() }
}

/** One round, as the progress line on a terminal or as a log line elsewhere. */
function showRound(streams: RunStreams, row: RoundRow, rounds: number): void {
  if (streams.progress !== undefined) streams.progress.round(row, rounds)
  else streams.log.info({ ...row }, 'round')
}

/** Runs `action`, turning a thrown error into one clear line and its exit code (`exit-codes.ts`). */
async function guarded(action: () => Promise<void>): Promise<void> {
  try {
    await action()
  } catch (error) {
    const stopped = stoppedBy()
    if (stopped !== undefined) {
      // What a stopped run threw on its way out is the stop, not a failure.
      process.exitCode = signalExitCodes[stopped]
      return
    }
    const err = error as Error
    console.error(`phalanx: ${err.name}: ${err.message}`)
    process.exitCode = exitCodeOf(error)
  }
}

/**
 * The end of a run, finished or stopped: the report into `out` (with the baseline run of
 * `--baseline` overlaid, for a run that finished), the summary on stdout (the table, or JSON under
 * `--json`), and the exit code of the signal that stopped it.
 */
async function finish(
  streams: RunStreams,
  config: ClusterConfig,
  title: string,
  result: { summary: RunSummary; rows: RoundRow[]; detail: ReportDetail },
  baseline: BaselineKind | undefined,
): Promise<void> {
  streams.progress?.end()
  const stopped = streams.stop.received()
  const summary = stopped === undefined ? result.summary : { ...result.summary, interrupted: stopped }
  let detail = result.detail
  if (config.out !== undefined && baseline !== undefined && stopped === undefined) {
    streams.note(`running the ${baseline} baseline (a simulation of the same seed) for the report`)
    detail = { ...detail, baseline: await runBaseline(config, baseline, { log: streams.log }) }
  }
  if (config.out !== undefined) writeRunReport(config.out, title, summary, result.rows, detail)
  if (streams.json) process.stdout.write(`${JSON.stringify(summary)}\n`)
  else console.log(summaryTable(title, summary))
  if (config.out !== undefined) streams.note(`wrote ${config.out}/summary.json, rounds.csv, report.html`)
  if (stopped !== undefined) {
    console.error(`phalanx: stopped by ${stopped} after ${summary.rounds} rounds`)
    process.exitCode = signalExitCodes[stopped]
  }
}

/** `f=2 alie`, or `f=0` alone: an attack nobody runs is not named. */
const attackers = (symbol: string, count: number, attack: string) =>
  count === 0 ? `${symbol}=0` : `${symbol}=${count} ${attack}`

const runTitle = (command: RunCommand, config: ClusterConfig) =>
  `phalanx ${command}: N=${config.servers} (${attackers('F', config.byzantineServers, config.serverAttack)}), n=${config.workers} (${attackers('f', config.byzantineWorkers, config.workerAttack)}), ${config.rule}, ${config.model}/${config.dataset}`

/** The options of a run command that are not config fields (`--json`, `--baseline`). */
interface RunOptions {
  json?: boolean
  baseline?: BaselineKind
}

/** A run command: its config options, and an action handed the config it resolved and its options. */
function runCommand(
  program: Command,
  name: RunCommand,
  description: string,
  action: (config: ClusterConfig, options: RunOptions) => Promise<void>,
): Command {
  const command = addConfigOptions(program.command(name).description(description), name)
  command.action(async (options: RunOptions, self: Command) =>
    guarded(async () => action(configFromCommand(self, name, process.env), options)),
  )
  return command
}

/** `--json` of `local` and `simulate`. */
const jsonOption = () =>
  new Option(
    '--json',
    'print the summary as JSON on stdout (what summary.json holds), and nothing else there',
  ).helpGroup('Output:')

const baselineOption = () =>
  new Option(
    '--baseline <kind>',
    'with --out: also run a baseline as a simulation of the same seed and overlay it in report.html (no-attack: F = f = 0; vanilla: one server, no exchange; simulate: this config in one process)',
  )
    .choices(baselineKinds)
    .helpGroup('Output:')

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
    // A usage error is thrown (a CommanderError) rather than exiting 1: main.ts ends it with the
    // usage exit code of exit-codes.ts, as every other wrong input. Set before the commands are
    // added, which inherit it.
    .exitOverride()

  runCommand(
    program,
    'local',
    'start a whole cluster on this machine (one process per node, libp2p on loopback) and train',
    async (config, options) => {
      // Before any work: a cluster the rule cannot protect is a config error (exit code 2), and a
      // run must have somewhere to put its results.
      checkClusterBounds(config)
      if (config.out !== undefined) checkOutDir(config.out)
      const streams = runStreams(options.json === true)
      const title = runTitle('local', config)
      if (!streams.json) console.log(title)
      dropConfigVariables(process.env)
      const result = await runLocalCluster({
        config,
        log: streams.log,
        command: [process.execPath, init.cliPath],
        signal: streams.stop.signal,
        onStartup: (ready, total) => {
          if (streams.progress !== undefined) streams.progress.startup(ready, total)
          else if (ready === total) streams.log.info({ nodes: total }, 'every node ready')
        },
        onRound: (row) => showRound(streams, row, config.rounds),
      })
      streams.progress?.end()
      streams.note(`node logs: ${result.logDir}`)
      await finish(streams, config, title, result, options.baseline)
    },
  )
    .addOption(jsonOption())
    .addOption(baselineOption())

  for (const role of ['server', 'worker'] as const) {
    runCommand(
      program,
      role,
      `run one ${role} (what a container runs); --node-id names it (${role}-<i>); it attacks only when --${role}-attack says so`,
      async (config) => {
        const log = pino(
          { level: process.env.PHALANX_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
          pino.destination(2),
        )
        // Settles once the message is handed to the channel: a chaos kill waits for it.
        const report = process.send
          ? (message: NodeReport) =>
              new Promise<void>((resolve) => {
                process.send?.(message, undefined, undefined, () => resolve())
              })
          : undefined
        const stop = stopOnSignals()
        // With --out, the node writes its own summary and report there (lab's node-run.ts).
        await runNodeWithOutputs({ config, log, signal: stop.signal, ...(report ? { report } : {}) })
        process.disconnect?.()
        // Stopped (a pod's SIGTERM): a clean stop, with the signal's exit code.
        const stopped = stop.received()
        if (stopped !== undefined) process.exitCode = signalExitCodes[stopped]
      },
    )
  }

  runCommand(
    program,
    'simulate',
    'the whole protocol in one process: N servers (F Byzantine, with the median exchange) and n workers, same rules, attacks, model and data; deterministic for a seed',
    async (config, options) => {
      if (config.out !== undefined) checkOutDir(config.out)
      const streams = runStreams(options.json === true)
      const title = runTitle('simulate', config)
      if (!streams.json) console.log(title)
      const result = await runSimulation(config, {
        log: streams.log,
        signal: streams.stop.signal,
        onRound: (row) => showRound(streams, row, config.rounds),
      })
      await finish(streams, config, title, result, options.baseline)
    },
  )
    .addOption(jsonOption())
    .addOption(baselineOption())

  addExperimentCommand(program)
  addControlCommands(program)
  return program
}
