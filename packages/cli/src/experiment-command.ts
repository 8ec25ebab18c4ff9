/**
 * `phalanx experiment <matrix.yaml> --out DIR`: runs a grid of configs (see `runExperiment` in
 * `@phalanx/lab`) and prints one line per cell and the comparison table.
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  type CellResult,
  checkOutDir,
  type ExperimentMode,
  expandMatrix,
  experimentModes,
  readMatrix,
  resultsMarkdown,
  runExperiment,
} from '@phalanx/lab'
import { withConfigSource } from '@phalanx/node'
import { type Command, Option } from 'commander'
import pino from 'pino'
import { exitCodeOf, exitCodes, signalExitCodes } from './exit-codes.js'
import { checkHonoured, dropConfigVariables } from './options.js'
import { stopOnSignals } from './stop.js'
import { ProgressView } from './view.js'

// Nodes of a `local` cell are started as `node bin.js server|worker`, like `phalanx local` does.
const binPath = fileURLToPath(new URL('./bin.js', import.meta.url))

function cellLine(result: CellResult, index: number, total: number): string {
  const head = `[${index + 1}/${total}] ${result.cell.id}`
  if (result.status === 'failed') return `${head}: FAILED ${result.error?.name}: ${result.error?.message}`
  const accuracy = result.summary?.honestAccuracy
  const shown = accuracy === null || accuracy === undefined ? '—' : `${(accuracy * 100).toFixed(2)}%`
  const how = result.status === 'skipped' ? 'skipped (results already on disk)' : 'done'
  return `${head}: ${how}, accuracy ${shown}, ${result.summary?.wallSeconds.toFixed(1)} s`
}

export function addExperimentCommand(program: Command): Command {
  return program
    .command('experiment')
    .description(
      'run a grid of configs (rules × attacks × seeds …) from a YAML matrix, resumable; writes results.csv, results.md and index.html',
    )
    .argument('<matrix>', 'YAML file with base: (config fields), grid: (field: [values]) and mode:')
    .requiredOption('--out <dir>', 'directory for cells/<id>/ and the results table and plots')
    .addOption(new Option('--mode <mode>', 'override the matrix mode').choices(experimentModes))
    .option(
      '--dry-run',
      'check the matrix (every cell through the config schema, every field honoured by the mode) and list the cells; runs nothing, writes nothing',
    )
    .action(async (matrixPath: string, options: { out: string; mode?: ExperimentMode; dryRun?: boolean }) => {
      // Logs and the progress line go to stderr, so stdout holds the cell lines and the table alone.
      const progress = process.stderr.isTTY === true ? new ProgressView(process.stderr) : undefined
      const log = pino(
        { level: process.env.PHALANX_LOG_LEVEL ?? 'warn', base: { pid: process.pid } },
        progress === undefined ? pino.destination(2) : { write: (line: string) => progress.print(line) },
      )
      const stop = stopOnSignals()
      try {
        const file = readMatrix(matrixPath)
        const matrix = { ...file, mode: options.mode ?? file.mode }
        // A cell runs as `phalanx <mode>` does: a field that command would ignore is refused here,
        // before any cell runs, as the command itself would refuse it.
        checkHonoured(matrix.mode, [
          withConfigSource({ ...matrix.base }, (field) => `matrix file ${matrixPath}, base.${field}`),
          withConfigSource({ ...matrix.grid }, (field) => `matrix file ${matrixPath}, grid.${field}`),
        ])
        if (options.dryRun === true) {
          const cells = expandMatrix(matrix)
          console.log(
            `phalanx experiment: ${matrixPath} (mode ${matrix.mode}): ${cells.length} cells, none run`,
          )
          for (const cell of cells) console.log(join(options.out, 'cells', cell.id))
          return
        }
        // A cell's config is the matrix's alone: no variable of this shell reaches its nodes.
        checkOutDir(options.out)
        dropConfigVariables(process.env)
        console.log(`phalanx experiment: ${matrixPath} (mode ${matrix.mode}) → ${options.out}`)
        const { results, fields, files } = await runExperiment({
          matrix,
          out: options.out,
          log,
          command: [process.execPath, binPath],
          signal: stop.signal,
          onRound: (cell, row) => progress?.round(row, cell.config.rounds),
          onCellEnd: (result, index, total) => {
            progress?.end()
            console.log(cellLine(result, index, total))
          },
        })
        console.log(`\n${resultsMarkdown(results, fields)}`)
        console.log(`wrote ${files.csv}, ${files.markdown}, ${files.html}`)
        const failed = results.filter((result) => result.status === 'failed').length
        if (failed > 0) {
          console.error(`phalanx: ${failed} of ${results.length} cells failed (see cells/<id>/error.json)`)
          process.exitCode = exitCodes.failed.code
        }
      } catch (error) {
        const stopped = stop.received()
        if (stopped !== undefined) {
          // The cells done are on disk: the same command resumes the grid.
          console.error(`phalanx: stopped by ${stopped}; run the same command again to resume`)
          process.exitCode = signalExitCodes[stopped]
          return
        }
        const err = error as Error
        console.error(`phalanx: ${err.name}: ${err.message}`)
        process.exitCode = exitCodeOf(error)
      }
    })
}
