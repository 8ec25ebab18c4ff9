/**
 * The charts of the experiment's `index.html`: one chart per setting of the grid fields other
 * than `rule` and `seed` (an attack, a number of Byzantine workers…), every rule a line on it,
 * each line the mean over the seeds with a band of ± one standard deviation, and every chart on
 * the same axes (accuracy 0–1, the same rounds) so that charts compare at a glance.
 */
import { type ChartSeries, escapeHtml, palette, svgLineChart } from './chart.js'
import type { RoundRow, RunSummary } from './outputs.js'

/** How a grid value reads in a cell id, a table and a legend: lists joined by `+`. */
export const valueLabel = (value: unknown): string =>
  Array.isArray(value) ? value.map(valueLabel).join('+') || 'none' : String(value)

/** What the charts read of a cell's result (an `ExperimentResult`'s results fit it). */
export interface ChartedCell {
  cell: { varying: Record<string, unknown>; config: { rule: string } }
  summary?: Pick<RunSummary, 'honestAccuracy'> | undefined
  rows?: readonly RoundRow[] | undefined
}

/** Mean and sample standard deviation (0 for one value). */
export function meanAndSpread(values: readonly number[]): { mean: number; sd: number } {
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  const sd =
    values.length < 2
      ? 0
      : Math.sqrt(values.reduce((sum, value) => sum + (value - mean) ** 2, 0) / (values.length - 1))
  return { mean, sd }
}

interface Group {
  rule: string
  cells: ChartedCell[]
}

/** The panels (charts) and their rule groups, in the grid's order. */
function panelsOf(
  results: readonly ChartedCell[],
  fields: readonly string[],
): Map<string, Map<string, Group>> {
  const panelFields = fields.filter((field) => field !== 'rule' && field !== 'seed')
  const panels = new Map<string, Map<string, Group>>()
  for (const result of results) {
    const panel = panelFields.map((field) => `${field}=${valueLabel(result.cell.varying[field])}`).join(', ')
    const groups = panels.get(panel) ?? new Map<string, Group>()
    panels.set(panel, groups)
    const rule = result.cell.config.rule
    const group = groups.get(rule) ?? { rule, cells: [] }
    groups.set(rule, group)
    group.cells.push(result)
  }
  return panels
}

/** One rule's line over its seeds: per round, the mean and a ± 1 s.d. band. */
function seedSeries(group: Group, colour: string): ChartSeries {
  const byRound = new Map<number, number[]>()
  for (const cell of group.cells) {
    for (const row of cell.rows ?? []) {
      if (row.honestAccuracy === undefined || !Number.isFinite(row.honestAccuracy)) continue
      byRound.set(row.round, [...(byRound.get(row.round) ?? []), row.honestAccuracy])
    }
  }
  const rounds = [...byRound.keys()].sort((a, b) => a - b)
  const stats = rounds.map((round) => [round, meanAndSpread(byRound.get(round)!)] as const)
  const seeds = group.cells.filter((cell) => (cell.rows ?? []).length > 0).length
  return {
    label: seeds > 1 ? `${group.rule} (mean ± 1 s.d., ${seeds} seeds)` : `${group.rule} (1 seed)`,
    points: stats.map(([round, { mean }]) => [round, mean] as const),
    colour,
    ...(seeds > 1
      ? { band: stats.map(([round, { mean, sd }]) => [round, mean - sd, mean + sd] as const) }
      : {}),
  }
}

/** The charts and a table of final accuracy, mean ± s.d. over seeds, per panel and rule. */
export function experimentCharts(results: readonly ChartedCell[], fields: readonly string[]): string {
  const panels = panelsOf(results, fields)
  const rules = [...new Set(results.map((result) => result.cell.config.rule))]
  const colourOf = (rule: string) => palette[rules.indexOf(rule) % palette.length]!
  const lastRound = Math.max(0, ...results.flatMap((result) => (result.rows ?? []).map((row) => row.round)))
  const charts = [...panels.entries()].map(([panel, groups]) =>
    svgLineChart(
      `Honest test accuracy${panel === '' ? '' : ` — ${panel}`}`,
      [...groups.values()].map((group) => seedSeries(group, colourOf(group.rule))),
      { yLabel: 'accuracy', xDomain: [0, lastRound], yDomain: [0, 1] },
    ),
  )
  const finals = [...panels.entries()].flatMap(([panel, groups]) =>
    [...groups.values()].map((group) => {
      const values = group.cells.flatMap((cell) =>
        cell.summary?.honestAccuracy === null || cell.summary?.honestAccuracy === undefined
          ? []
          : [cell.summary.honestAccuracy],
      )
      const cellText =
        values.length === 0
          ? '—'
          : (({ mean, sd }) => `${(mean * 100).toFixed(2)} % ± ${(sd * 100).toFixed(2)}`)(
              meanAndSpread(values),
            )
      return `<tr><td>${escapeHtml(panel || 'all')}</td><td>${escapeHtml(group.rule)}</td><td>${values.length}</td><td>${cellText}</td></tr>`
    }),
  )
  return `<h2>Final honest accuracy over seeds</h2>
<table><tr><th>setting</th><th>rule</th><th>seeds</th><th>mean ± 1 s.d.</th></tr>${finals.join('')}</table>
<h2>Accuracy per round: every rule on the same axes</h2>
${charts.join('\n')}`
}
