/**
 * What a run leaves behind in `--out DIR`: `summary.json`, `rounds.csv` (one row per round; both
 * defined in `outputs.ts`, documented in docs/OUTPUTS.md)
 * and `report.html`, a self-contained page (inline SVG, no script, no external font) with
 * accuracy, loss and drift per round, so it opens in a browser with no network.
 */
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { OutDirError } from './errors.js'
import { type RoundRow, type RunSummary, roundColumns } from './outputs.js'

export function roundsCsv(rows: readonly RoundRow[]): string {
  const lines = [roundColumns.join(',')]
  for (const row of rows) lines.push(roundColumns.map((column) => formatCell(row[column])).join(','))
  return `${lines.join('\n')}\n`
}

function formatCell(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return ''
  return Number.isInteger(value) ? String(value) : value.toPrecision(6)
}

interface Series {
  label: string
  points: [number, number][]
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** A line chart as an inline SVG string; several series share the axes. */
export function svgLineChart(title: string, series: readonly Series[], yLabel: string): string {
  const width = 640
  const height = 260
  const margin = { left: 60, right: 16, top: 28, bottom: 36 }
  const all = series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y))
  if (all.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="60" role="img"><text x="8" y="30">${escapeHtml(title)}: no data</text></svg>`
  }
  const xs = all.map(([x]) => x)
  const ys = all.map(([, y]) => y)
  const xMin = Math.min(...xs)
  const xMax = Math.max(...xs, xMin + 1)
  let yMin = Math.min(...ys, 0)
  let yMax = Math.max(...ys)
  if (yMax === yMin) yMax = yMin + 1
  const pad = (yMax - yMin) * 0.05
  yMin -= yMin === 0 ? 0 : pad
  yMax += pad
  const px = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * (width - margin.left - margin.right)
  const py = (y: number) =>
    height - margin.bottom - ((y - yMin) / (yMax - yMin)) * (height - margin.top - margin.bottom)
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b']
  const ticks = 4
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" role="img" aria-label="${escapeHtml(title)}">`,
    `<text x="${margin.left}" y="18" font-weight="bold">${escapeHtml(title)}</text>`,
    `<line x1="${margin.left}" y1="${height - margin.bottom}" x2="${width - margin.right}" y2="${height - margin.bottom}" stroke="#333"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${height - margin.bottom}" stroke="#333"/>`,
    `<text x="${width / 2}" y="${height - 6}" text-anchor="middle">round</text>`,
    `<text x="12" y="${height / 2}" transform="rotate(-90 12 ${height / 2})" text-anchor="middle">${escapeHtml(yLabel)}</text>`,
  ]
  for (let t = 0; t <= ticks; t++) {
    const y = yMin + ((yMax - yMin) * t) / ticks
    parts.push(
      `<text x="${margin.left - 6}" y="${py(y) + 4}" text-anchor="end" font-size="11">${formatTick(y)}</text>`,
      `<line x1="${margin.left}" y1="${py(y)}" x2="${width - margin.right}" y2="${py(y)}" stroke="#ddd"/>`,
    )
    const x = xMin + ((xMax - xMin) * t) / ticks
    parts.push(
      `<text x="${px(x)}" y="${height - margin.bottom + 14}" text-anchor="middle" font-size="11">${Math.round(x)}</text>`,
    )
  }
  series.forEach((s, index) => {
    const colour = colours[index % colours.length]!
    const path = s.points
      .filter(([, y]) => Number.isFinite(y))
      .map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${px(x).toFixed(1)},${py(y).toFixed(1)}`)
      .join(' ')
    parts.push(`<path d="${path}" fill="none" stroke="${colour}" stroke-width="1.8"/>`)
    parts.push(
      `<text x="${width - margin.right - 4}" y="${margin.top + 14 * (index + 1)}" text-anchor="end" fill="${colour}" font-size="12">${escapeHtml(s.label)}</text>`,
    )
  })
  parts.push('</svg>')
  return parts.join('\n')
}

function formatTick(value: number): string {
  const magnitude = Math.abs(value)
  if (magnitude !== 0 && (magnitude < 0.01 || magnitude >= 1e5)) return value.toExponential(1)
  return Number(value.toPrecision(3)).toString()
}

const seriesOf = (rows: readonly RoundRow[], key: keyof RoundRow, label: string): Series => ({
  label,
  points: rows.flatMap((row) => {
    const value = row[key]
    return value === undefined ? [] : [[row.round, value] as [number, number]]
  }),
})

/** The self-contained HTML report of one run. */
export function reportHtml(title: string, summary: RunSummary, rows: readonly RoundRow[]): string {
  const facts: [string, string][] = [
    [
      'honest accuracy',
      summary.honestAccuracy === null ? 'n/a' : `${(summary.honestAccuracy * 100).toFixed(2)} %`,
    ],
    ['rounds', String(summary.rounds)],
    ['wall time', `${summary.wallSeconds.toFixed(1)} s`],
    [
      'max honest drift',
      summary.maxHonestDrift === null ? 'not measured' : summary.maxHonestDrift.toPrecision(4),
    ],
    [
      'rejected messages',
      Object.entries(summary.rejectedMessages)
        .map(([reason, count]) => `${reason}: ${count}`)
        .join(', ') || 'none',
    ],
    ['backend', summary.backend],
  ]
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}svg{display:block;margin:1em 0}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<table>${facts.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
${svgLineChart('Honest test accuracy', [seriesOf(rows, 'honestAccuracy', 'accuracy')], 'accuracy')}
${svgLineChart('Honest test loss', [seriesOf(rows, 'honestLoss', 'loss')], 'loss')}
${svgLineChart('Max drift between honest servers', [seriesOf(rows, 'maxHonestDrift', 'ℓ2 drift')], 'drift')}
<h2>Configuration</h2>
<pre>${escapeHtml(JSON.stringify(summary.config, null, 2))}</pre>
</body></html>
`
}

/** Writes `summary.json`, `rounds.csv` and `report.html` into `dir` (created if missing). */
/**
 * Creates `dir` if needed and checks this process may write into it: what a command does with its
 * `--out` before any work, so that a run of an hour does not fail at its end for a typo'd path.
 */
export function checkOutDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const reason =
      code === 'ENOTDIR' || code === 'EEXIST'
        ? 'a file is in the way (not a directory)'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EROFS'
            ? 'read-only file system'
            : ((error as Error).message ?? String(error))
    throw new OutDirError({ dir, reason, cause: error })
  }
}

export function writeRunReport(
  dir: string,
  title: string,
  summary: RunSummary,
  rows: readonly RoundRow[],
): void {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`)
  writeFileSync(join(dir, 'rounds.csv'), roundsCsv(rows))
  writeFileSync(join(dir, 'report.html'), reportHtml(title, summary, rows))
}
