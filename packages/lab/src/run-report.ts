/** Writes what a run leaves in its out dir: the data files (`report.ts`) and the page (`report-html.ts`). */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RoundRow, RunSummary } from './outputs.js'
import { roundsCsv } from './report.js'
import { type ReportDetail, reportHtml } from './report-html.js'

/**
 * Writes `summary.json`, `rounds.csv` and `report.html` into `dir` (created if missing). `detail`
 * (per-server series, events, a baseline) is drawn in the page only: the data files do not hold it.
 */
export function writeRunReport(
  dir: string,
  title: string,
  summary: RunSummary,
  rows: readonly RoundRow[],
  detail: ReportDetail = {},
): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`)
  writeFileSync(join(dir, 'rounds.csv'), roundsCsv(rows))
  writeFileSync(join(dir, 'report.html'), reportHtml(title, summary, rows, detail))
}
