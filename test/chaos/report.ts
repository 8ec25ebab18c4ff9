/**
 * The chaos table: one row per scenario and seed, as markdown (printed and written) and JSON.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ScenarioMeasurement } from './measure.js'
import type { Check } from './scenarios.js'

export interface ScenarioRow extends ScenarioMeasurement {
  seed: number
  scenario: string
  criterion: string
  passed: boolean
  checks: Check[]
  notes: string[]
}

const fixed = (value: number | null, digits: number) => (value === null ? '—' : value.toFixed(digits))

export function renderMarkdown(rows: readonly ScenarioRow[]): string {
  const header =
    '| seed | scenario | pass | rounds | rounds lost | final honest acc. | max honest drift | rejected | nothing lost | notes |'
  const rule = '|---|---|---|---|---|---|---|---|---|---|'
  const lines = rows.map((row) => {
    const rejected = Object.entries(row.rejected)
      .map(([reason, count]) => `${reason} ${count}`)
      .join(', ')
    const failed = row.checks.filter((c) => !c.ok).map((c) => `FAILED ${c.what}: ${c.detail}`)
    return `| ${row.seed} | ${row.scenario} | ${row.passed ? 'yes' : 'NO'} | ${row.fromRound}→${row.toRound} | ${row.roundsLost} | ${fixed(row.finalAccuracy, 4)} | ${row.maxHonestDrift.toFixed(3)} | ${rejected || '0'} | ${row.nothingLost ? 'yes' : 'NO'} | ${[...failed, ...row.notes].join('; ')} |`
  })
  return [header, rule, ...lines].join('\n')
}

export function writeChaosReport(
  out: string,
  rows: readonly ScenarioRow[],
  context: Record<string, unknown>,
) {
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'chaos.json'), `${JSON.stringify({ ...context, rows }, null, 2)}\n`)
  writeFileSync(join(out, 'chaos.md'), `${renderMarkdown(rows)}\n`)
}
