/**
 * `phalanx experiment matrix.yaml`: a grid of runs (rules × attacks × seeds × any other field)
 * and the one table and plot page that compare them — how a researcher reproduces a paper's
 * table. Every cell is validated before the first one runs, so a typo in the last cell does not
 * surface an hour into the grid; cells run one after another (the cluster of one cell already
 * uses every core); a cell whose results are on disk is not run again, so a grid interrupted
 * halfway resumes where it stopped.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  ClusterBoundError,
  type ClusterConfig,
  ConfigError,
  checkClusterBounds,
  resolveConfig,
} from '@phalanx/node'
import type { Logger } from 'pino'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { escapeHtml } from './chart.js'
import { ExperimentCellError, MatrixError } from './errors.js'
import { experimentCharts, valueLabel } from './experiment-charts.js'
import { runLocalCluster } from './local.js'
import { type ExperimentMode, experimentModes, type RoundRow, type RunSummary } from './outputs.js'
import type { ReportDetail } from './report-html.js'
import { writeRunReport } from './run-report.js'
import { runSimulation } from './simulate.js'

export { type ExperimentMode, experimentModes }

export interface ExperimentMatrix {
  /** `local` = a real multi-process cluster per cell; `simulate` = the single-process reference. */
  mode: ExperimentMode
  /** Config fields shared by every cell. */
  base: Record<string, unknown>
  /** Field → the values it takes; the cells are the cartesian product, in the file's key order. */
  grid: Record<string, unknown[]>
}

export interface ExperimentCell {
  /** Names the cell and its directory: `rule=krum_workerAttack=alie_seed=1`. */
  id: string
  /** The grid values of this cell, in grid order. */
  varying: Record<string, unknown>
  config: ClusterConfig
}

export type CellStatus = 'done' | 'skipped' | 'failed'

export interface CellResult {
  cell: ExperimentCell
  /** `skipped` = its results were already on disk from an earlier run of the same grid. */
  status: CellStatus
  summary?: RunSummary
  rows?: RoundRow[]
  error?: { name: string; message: string }
}

/** Runs one cell; injected so tests can drive the grid without training. */
export type CellRunner = (
  config: ClusterConfig,
  init: { log: Logger; onRound?: (row: RoundRow) => void },
) => Promise<{ summary: RunSummary; rows: RoundRow[]; detail?: ReportDetail }>

export interface ExperimentInit {
  matrix: ExperimentMatrix
  out: string
  log: Logger
  /** How `local` mode starts one node (`[node, cli.js]`); required for `local` unless `runCell` is given. */
  command?: readonly [string, ...string[]]
  runCell?: CellRunner
  signal?: AbortSignal
  onCellStart?: (cell: ExperimentCell, index: number, total: number) => void
  onCellEnd?: (result: CellResult, index: number, total: number) => void
  onRound?: (cell: ExperimentCell, row: RoundRow) => void
}

export interface ExperimentResult {
  results: CellResult[]
  /** Grid fields, the leading columns of the table. */
  fields: string[]
  files: { csv: string; markdown: string; html: string }
}

const matrixSchema = z
  .object({
    mode: z.enum(experimentModes).default('local'),
    base: z.record(z.string(), z.unknown()).default({}),
    grid: z
      .record(z.string(), z.array(z.unknown()).min(1, 'a grid field needs at least one value'))
      .default({}),
  })
  .strict()

/** Validates a parsed matrix document (the shape only; the cells are checked by `expandMatrix`). */
export function parseMatrix(document: unknown, source = 'matrix'): ExperimentMatrix {
  const result = matrixSchema.safeParse(document ?? {})
  if (!result.success) {
    const issue = result.error.issues[0]!
    const key = issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : issue.path.join('.')
    throw new MatrixError(`${source}: "${key}": ${issue.message} (a matrix has mode, base and grid)`, {
      source,
      key,
    })
  }
  return result.data
}

export function readMatrix(path: string): ExperimentMatrix {
  let document: unknown
  try {
    document = parseYaml(readFileSync(path, 'utf8'))
  } catch (cause) {
    throw new MatrixError(`cannot read matrix file ${path}: ${(cause as Error).message}`, {
      source: path,
      key: 'file',
      cause,
    })
  }
  return parseMatrix(document, path)
}

/** A directory-safe, readable id: only letters, digits, `=`, `.`, `+`, `-` and `_` survive. */
export function cellId(varying: Record<string, unknown>): string {
  const parts = Object.entries(varying).map(([field, value]) => `${field}=${valueLabel(value)}`)
  return parts.length === 0 ? 'base' : parts.join('_').replace(/[^A-Za-z0-9=.+_-]/g, '-')
}

/**
 * The cells of the grid, each resolved through the config schema and the cluster bounds. The
 * first invalid cell throws an `ExperimentCellError` naming it and the field (or bound) at
 * fault, before anything runs.
 */
export function expandMatrix(matrix: ExperimentMatrix): ExperimentCell[] {
  let combinations: Record<string, unknown>[] = [{}]
  for (const [field, values] of Object.entries(matrix.grid)) {
    combinations = combinations.flatMap((partial) => values.map((value) => ({ ...partial, [field]: value })))
  }
  const seen = new Set<string>()
  return combinations.map((varying) => {
    const id = cellId(varying)
    if (seen.has(id)) {
      throw new ExperimentCellError(`cell ${id} appears twice in the grid (a value is listed twice)`, {
        cellId: id,
        field: Object.keys(varying).join(', '),
      })
    }
    seen.add(id)
    let config: ClusterConfig
    try {
      // `out` is the experiment's, not a cell's: each cell writes into its own directory.
      const { out: _out, ...base } = matrix.base
      config = resolveConfig(base, varying)
      checkClusterBounds(config)
    } catch (cause) {
      if (cause instanceof ConfigError || cause instanceof ClusterBoundError) {
        const field = cause instanceof ConfigError ? cause.field : cause.bound
        throw new ExperimentCellError(`cell ${id}: ${cause.name}: ${cause.message}`, {
          cellId: id,
          field,
          cause,
        })
      }
      throw cause
    }
    return { id, varying, config }
  })
}

/** The config as stored in `summary.json`, without `out` (moving the results keeps them valid). */
function comparableConfig(config: Record<string, unknown>): string {
  const { out: _out, ...rest } = JSON.parse(JSON.stringify(config)) as Record<string, unknown>
  return JSON.stringify(Object.fromEntries(Object.entries(rest).sort(([a], [b]) => a.localeCompare(b))))
}

/** Results of an earlier run of this very cell in this mode, or undefined when it must (re)run. */
export function storedCellResult(
  cellDir: string,
  cell: ExperimentCell,
  mode: ExperimentMode,
): CellResult | undefined {
  const summaryPath = join(cellDir, 'summary.json')
  if (!existsSync(summaryPath)) return undefined
  let summary: RunSummary
  try {
    summary = JSON.parse(readFileSync(summaryPath, 'utf8')) as RunSummary
  } catch {
    // A summary cut short by a crash is not a result: run the cell again.
    return undefined
  }
  // A simulated cell is no substitute for a cluster run of the same config, nor the reverse.
  if (summary.experimentMode !== mode) return undefined
  if (comparableConfig(summary.config ?? {}) !== comparableConfig(cell.config)) return undefined
  const csvPath = join(cellDir, 'rounds.csv')
  const rows = existsSync(csvPath) ? parseRoundsCsv(readFileSync(csvPath, 'utf8')) : []
  return { cell, status: 'skipped', summary, rows }
}

/** Reads back what `roundsCsv` wrote (empty cells = not measured). */
export function parseRoundsCsv(text: string): RoundRow[] {
  const [header, ...lines] = text.trim().split('\n')
  if (header === undefined) return []
  const columns = header.split(',')
  return lines.map((line) => {
    const row: Record<string, number | undefined> = {}
    line.split(',').forEach((cell, index) => {
      const column = columns[index]
      if (column !== undefined && cell !== '') row[column] = Number(cell)
    })
    return { ...row, round: row.round ?? 0 } as RoundRow
  })
}

function defaultRunner(mode: ExperimentMode, init: ExperimentInit): CellRunner {
  if (mode === 'simulate')
    return (config, run) =>
      runSimulation(config, { ...run, ...(init.signal === undefined ? {} : { signal: init.signal }) })
  const command = init.command
  if (command === undefined) {
    throw new MatrixError('local mode needs the command that starts a node', {
      source: 'experiment',
      key: 'mode',
    })
  }
  return (config, run) =>
    runLocalCluster({
      config,
      log: run.log,
      command,
      ...(run.onRound === undefined ? {} : { onRound: run.onRound }),
      ...(init.signal === undefined ? {} : { signal: init.signal }),
    })
}

/**
 * Runs every cell not already on disk, one after another, into `<out>/cells/<id>/`, then writes
 * `<out>/results.csv`, `<out>/results.md` and `<out>/index.html`. A cell that fails is recorded
 * (and its `error.json` written) and the grid goes on; it runs again on the next invocation.
 */
export async function runExperiment(init: ExperimentInit): Promise<ExperimentResult> {
  const { matrix, out, log } = init
  const cells = expandMatrix(matrix)
  const runCell = init.runCell ?? defaultRunner(matrix.mode, init)
  const fields = Object.keys(matrix.grid)
  const results: CellResult[] = []
  for (const [index, cell] of cells.entries()) {
    init.signal?.throwIfAborted()
    const cellDir = join(out, 'cells', cell.id)
    init.onCellStart?.(cell, index, cells.length)
    let result = storedCellResult(cellDir, cell, matrix.mode)
    if (result === undefined) {
      mkdirSync(cellDir, { recursive: true })
      rmSync(join(cellDir, 'error.json'), { force: true })
      try {
        const { summary, rows, detail } = await runCell(
          { ...cell.config, out: cellDir },
          {
            log: log.child({ cell: cell.id }),
            ...(init.onRound === undefined ? {} : { onRound: (row) => init.onRound?.(cell, row) }),
          },
        )
        // A cell the signal cut short returns the rounds it did: not stored as done, so that the
        // same command runs it again in full.
        init.signal?.throwIfAborted()
        // The stored config is the cell's, so a resumed grid recognises it (out excluded).
        const stored: RunSummary = { ...summary, experimentMode: matrix.mode, config: { ...cell.config } }
        writeRunReport(cellDir, `phalanx experiment: ${cell.id}`, stored, rows, detail)
        result = { cell, status: 'done', summary: stored, rows }
      } catch (cause) {
        if (init.signal?.aborted) throw cause
        const error = cause instanceof Error ? cause : new Error(String(cause))
        log.warn({ cell: cell.id, err: error }, 'experiment cell failed; going on with the grid')
        writeFileSync(
          join(cellDir, 'error.json'),
          `${JSON.stringify({ name: error.name, message: error.message }, null, 2)}\n`,
        )
        result = { cell, status: 'failed', error: { name: error.name, message: error.message } }
      }
    }
    results.push(result)
    init.onCellEnd?.(result, index, cells.length)
  }
  mkdirSync(out, { recursive: true })
  const files = {
    csv: join(out, 'results.csv'),
    markdown: join(out, 'results.md'),
    html: join(out, 'index.html'),
  }
  writeFileSync(files.csv, resultsCsv(results, fields))
  writeFileSync(files.markdown, resultsMarkdown(results, fields))
  writeFileSync(files.html, experimentHtml(results, fields))
  return { results, fields, files }
}

const tableColumns = ['honest accuracy', 'max drift', 'rejected messages', 'wall seconds', 'status'] as const

/** One row of the table as text cells: the grid values, then the measured columns. */
export function tableRow(result: CellResult, fields: readonly string[]): string[] {
  const { summary } = result
  const rejected =
    summary === undefined ? undefined : Object.values(summary.rejectedMessages).reduce((a, b) => a + b, 0)
  const status = result.status === 'failed' ? `failed: ${result.error?.name ?? 'Error'}` : result.status
  return [
    ...fields.map((field) => valueLabel(result.cell.varying[field])),
    summary?.honestAccuracy === null || summary === undefined
      ? '—'
      : `${(summary.honestAccuracy * 100).toFixed(2)}%`,
    summary?.maxHonestDrift == null ? '—' : summary.maxHonestDrift.toPrecision(3),
    rejected === undefined ? '—' : String(rejected),
    summary === undefined ? '—' : summary.wallSeconds.toFixed(1),
    status,
  ]
}

/** The comparison table as markdown: one row per cell. */
export function resultsMarkdown(results: readonly CellResult[], fields: readonly string[]): string {
  const header = [...fields, ...tableColumns]
  const escapeCell = (text: string) => text.replace(/\|/g, '\\|')
  const lines = [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...results.map((result) => `| ${tableRow(result, fields).map(escapeCell).join(' | ')} |`),
  ]
  return `${lines.join('\n')}\n`
}

const csvQuote = (text: string) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text)

/** Machine-readable results: raw numbers (accuracy as a fraction), one row per cell. */
export function resultsCsv(results: readonly CellResult[], fields: readonly string[]): string {
  const header = [
    'cell',
    ...fields,
    'honestAccuracy',
    'maxHonestDrift',
    'rejectedMessages',
    'wallSeconds',
    'status',
    'error',
  ]
  const lines = results.map((result) => {
    const { summary } = result
    const rejected =
      summary === undefined ? '' : String(Object.values(summary.rejectedMessages).reduce((a, b) => a + b, 0))
    return [
      result.cell.id,
      ...fields.map((field) => valueLabel(result.cell.varying[field])),
      summary === undefined || summary.honestAccuracy === null ? '' : String(summary.honestAccuracy),
      summary?.maxHonestDrift == null ? '' : String(summary.maxHonestDrift),
      rejected,
      summary === undefined ? '' : String(summary.wallSeconds),
      result.status,
      result.error === undefined ? '' : `${result.error.name}: ${result.error.message}`,
    ]
      .map(csvQuote)
      .join(',')
  })
  return `${[header.join(','), ...lines].join('\n')}\n`
}

/**
 * The plot page: the table of cells, then the charts of `experiment-charts.ts` (every rule on
 * the same axes, mean ± spread over seeds). Self-contained (inline SVG, no script) so it opens
 * with no network.
 */
export function experimentHtml(results: readonly CellResult[], fields: readonly string[]): string {
  const header = [...fields, ...tableColumns]
  const table = `<table><tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>${results
    .map(
      (result) =>
        `<tr>${tableRow(result, fields)
          .map((cell) => `<td>${escapeHtml(cell)}</td>`)
          .join('')}</tr>`,
    )
    .join('')}</table>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>phalanx experiment</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}svg{display:block;margin:1em 0}</style>
</head><body>
<h1>phalanx experiment: ${results.length} cells</h1>
${table}
${experimentCharts(results, fields)}
</body></html>
`
}
