/** What a person sees: a one-line progress view per round and the end-of-run table. */
import type { RoundRow, RunSummary } from '@phalanx/lab'

const percent = (value: number | null | undefined) =>
  value === undefined || value === null ? '   —  ' : `${(value * 100).toFixed(2).padStart(6)}%`

export function progressLine(row: RoundRow, rounds: number): string {
  const width = 24
  const done = Math.round(((row.round + 1) / rounds) * width)
  const bar = `${'█'.repeat(done)}${'░'.repeat(width - done)}`
  const drift = row.maxHonestDrift === undefined ? '—' : row.maxHonestDrift.toExponential(2)
  return `${bar} round ${String(row.round + 1).padStart(4)}/${rounds}  acc ${percent(row.honestAccuracy)}  drift ${drift}  dropped ${row.rejectedMessages ?? 0}   `
}

export function summaryTable(title: string, summary: RunSummary): string {
  const rejected =
    Object.entries(summary.rejectedMessages)
      .map(([reason, count]) => `${reason} ${count}`)
      .join(', ') || 'none'
  const rows: [string, string][] = [
    ['honest test accuracy', percent(summary.honestAccuracy).trim()],
    ['honest test loss', summary.honestLoss === null ? '—' : summary.honestLoss.toFixed(4)],
    ['rounds', String(summary.rounds)],
    ['wall time', `${summary.wallSeconds.toFixed(1)} s`],
    [
      'max honest drift (ℓ2)',
      summary.maxHonestDrift === null ? 'not measured' : summary.maxHonestDrift.toExponential(3),
    ],
    ['rejected messages', rejected],
    ['tensor backend', summary.backend],
  ]
  const keyWidth = Math.max(...rows.map(([key]) => key.length))
  const valueWidth = Math.max(...rows.map(([, value]) => value.length))
  const line = `+${'-'.repeat(keyWidth + 2)}+${'-'.repeat(valueWidth + 2)}+`
  return [
    title,
    line,
    ...rows.map(([key, value]) => `| ${key.padEnd(keyWidth)} | ${value.padEnd(valueWidth)} |`),
    line,
  ].join('\n')
}
