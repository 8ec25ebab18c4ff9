/**
 * What a run leaves behind in `--out DIR`: `summary.json`, `rounds.csv` (one row per round)
 * and `report.html` (drawn by `report-html.ts`); `run-report.ts` writes the three.
 */

/** One row of `rounds.csv`. Values a round did not measure are `undefined` (empty cell). */
export interface RoundRow {
  round: number
  /** Mean test accuracy of the honest servers' models, when evaluated this round. */
  honestAccuracy?: number | undefined
  honestLoss?: number | undefined
  /**
   * Largest ℓ2 distance an honest server reported from its model of this round to another honest
   * server's (the models the round started from; docs/OPERATIONS.md "What drift means").
   */
  maxHonestDrift?: number | undefined
  /** Messages rejected during this round, all reasons. */
  rejectedMessages?: number | undefined
  roundSeconds?: number | undefined
}

export interface RunSummary {
  honestAccuracy: number | null
  /**
   * `modelSha256` of the final model: the reference's (`simulate`), or the one every honest server
   * that finished holds (`local`; `null` when they differ, as median servers' models may).
   */
  finalModelSha256?: string | null
  honestLoss: number | null
  rounds: number
  wallSeconds: number
  maxHonestDrift: number
  rejectedMessages: Record<string, number>
  backend: string
  config: Record<string, unknown>
  [extra: string]: unknown
}

const csvColumns = [
  'round',
  'honestAccuracy',
  'honestLoss',
  'maxHonestDrift',
  'rejectedMessages',
  'roundSeconds',
] as const

export function roundsCsv(rows: readonly RoundRow[]): string {
  const lines = [csvColumns.join(',')]
  for (const row of rows) lines.push(csvColumns.map((column) => formatCell(row[column])).join(','))
  return `${lines.join('\n')}\n`
}

function formatCell(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return ''
  return Number.isInteger(value) ? String(value) : value.toPrecision(6)
}
