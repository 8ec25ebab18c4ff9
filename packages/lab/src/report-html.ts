/**
 * `report.html`: the page a researcher opens after a run. One self-contained file (inline SVG,
 * no script, no external resource) that opens offline: the headline facts, which nodes were
 * Byzantine and what they ran, then per round the accuracy and loss of every honest server (the
 * mean when only the mean was recorded, and the page says so), the drift between honest
 * servers, the messages rejected and the round time, with the run's attacks and chaos events
 * marked on the round axis and a baseline run's curve overlaid when there is one.
 */
import { type ChartEvent, type ChartSeries, escapeHtml, palette, svgLineChart } from './chart.js'
import type { RoundRow, RunSummary } from './outputs.js'

/** What one server measured per round (honest servers evaluate; Byzantine ones never do). */
export interface ServerSeries {
  nodeId: string
  byzantine: boolean
  points: readonly { round: number; accuracy?: number | undefined; loss?: number | undefined }[]
}

/** Something that happened to the run at a round: an attack starting, a node killed, a partition. */
export interface RunEvent {
  round: number
  /** Last round of an event that lasts (an attack over the whole run). */
  to?: number
  kind: 'attack' | 'chaos' | 'node'
  label: string
}

/** The same study run without what is being measured (no attack, vanilla, or simulated). */
export interface BaselineRun {
  label: string
  rows: readonly RoundRow[]
}

/**
 * What a run knows beyond `summary.json` and `rounds.csv`, for the report only (a report drawn
 * from the files alone, as for a resumed experiment cell, has none of it and says so).
 */
export interface ReportDetail {
  servers?: readonly ServerSeries[]
  events?: readonly RunEvent[]
  baseline?: BaselineRun
}

/** The Byzantine nodes a config makes, with what they do (node ids as the cluster names them). */
export function byzantineNodes(config: Record<string, unknown>): { servers: string[]; workers: string[] } {
  const count = (field: string) => (typeof config[field] === 'number' ? (config[field] as number) : 0)
  const explicit = Array.isArray(config.byzantineNodeIds) ? (config.byzantineNodeIds as string[]) : []
  if (explicit.length > 0) {
    return {
      servers: explicit.filter((id) => id.startsWith('server-')),
      workers: explicit.filter((id) => id.startsWith('worker-')),
    }
  }
  const ids = (role: string, n: number) => Array.from({ length: n }, (_, i) => `${role}-${i}`)
  return {
    servers: ids('server', count('byzantineServers')),
    workers: ids('worker', count('byzantineWorkers')),
  }
}

/** The attacks a config runs, as events spanning the rounds (they act from round 0 on). */
export function attackEvents(config: Record<string, unknown>, lastRound: number): RunEvent[] {
  const { servers, workers } = byzantineNodes(config)
  const sides = [
    ['worker', workers, config.workerAttack],
    ['server', servers, config.serverAttack],
  ] as const
  return sides
    .filter(([, ids]) => ids.length > 0)
    .map(([role, ids, attack]) => ({
      round: 0,
      to: lastRound,
      kind: 'attack' as const,
      label: `${role} attack ${String(attack)} by ${ids.join(', ')}, every round`,
    }))
}

const pointsOf = (rows: readonly RoundRow[], key: keyof RoundRow): [number, number][] =>
  rows.flatMap((row) => {
    const value = row[key]
    return value === undefined || !Number.isFinite(value) ? [] : [[row.round, value] as [number, number]]
  })

const baselineStyle = { colour: '#555', dash: '6 4' }

/**
 * The per-round series of one measure: every honest server's line when they were recorded
 * (Byzantine servers', if any were, dashed), else the mean of the honest servers; then the
 * baseline's mean, dashed grey.
 */
function measureSeries(
  rows: readonly RoundRow[],
  detail: ReportDetail,
  key: 'honestAccuracy' | 'honestLoss',
): { series: ChartSeries[]; perServer: boolean } {
  const field = key === 'honestAccuracy' ? 'accuracy' : 'loss'
  const servers = (detail.servers ?? []).filter((server) =>
    server.points.some((point) => point[field] !== undefined),
  )
  const series: ChartSeries[] =
    servers.length === 0
      ? [{ label: 'mean of honest servers', points: pointsOf(rows, key), colour: palette[0]! }]
      : servers.map((server, index) => ({
          label: `${server.nodeId}${server.byzantine ? ' (Byzantine)' : ''}`,
          points: server.points.flatMap((point) => {
            const value = point[field]
            return value === undefined ? [] : [[point.round, value] as [number, number]]
          }),
          colour: server.byzantine ? '#000' : palette[index % palette.length]!,
          ...(server.byzantine ? { dash: '2 3' } : {}),
        }))
  if (detail.baseline !== undefined) {
    series.push({
      label: `baseline: ${detail.baseline.label}`,
      points: pointsOf(detail.baseline.rows, key),
      ...baselineStyle,
    })
  }
  return { series, perServer: servers.length > 0 }
}

/** The self-contained HTML report of one run. */
export function reportHtml(
  title: string,
  summary: RunSummary,
  rows: readonly RoundRow[],
  detail: ReportDetail = {},
): string {
  const config = summary.config ?? {}
  const lastRound = Math.max(0, ...rows.map((row) => row.round))
  const events = [...attackEvents(config, lastRound), ...(detail.events ?? [])].sort(
    (a, b) => a.round - b.round,
  )
  const markers: ChartEvent[] = events.map((event) => ({
    round: event.round,
    ...(event.to === undefined ? {} : { to: event.to }),
    label: event.label,
  }))
  const byzantine = byzantineNodes(config)
  const facts: [string, string][] = [
    [
      'honest accuracy',
      summary.honestAccuracy === null ? 'n/a' : `${(summary.honestAccuracy * 100).toFixed(2)} %`,
    ],
    ['rounds', String(summary.rounds)],
    ['wall time', `${summary.wallSeconds.toFixed(1)} s`],
    [
      'max honest drift',
      // A run with one honest server has no drift to measure (null once summary.json says so).
      typeof summary.maxHonestDrift === 'number' ? summary.maxHonestDrift.toPrecision(4) : 'not measured',
    ],
    [
      'rejected messages',
      Object.entries(summary.rejectedMessages)
        .map(([reason, count]) => `${reason}: ${count}`)
        .join(', ') || 'none',
    ],
    [
      'Byzantine servers',
      byzantine.servers.length === 0
        ? 'none'
        : `${byzantine.servers.join(', ')} — ${String(config.serverAttack)}`,
    ],
    [
      'Byzantine workers',
      byzantine.workers.length === 0
        ? 'none'
        : `${byzantine.workers.join(', ')} — ${String(config.workerAttack)}`,
    ],
    ['backend', summary.backend],
  ]
  if (detail.baseline !== undefined) facts.push(['baseline', detail.baseline.label])
  const accuracy = measureSeries(rows, detail, 'honestAccuracy')
  const loss = measureSeries(rows, detail, 'honestLoss')
  const notes: string[] = []
  if (!accuracy.perServer) {
    notes.push(
      'This run recorded the honest servers’ mean accuracy and loss only, so each chart draws one line for them all.',
    )
  }
  if (byzantine.servers.length > 0) {
    notes.push(
      `Byzantine servers (${byzantine.servers.join(', ')}) never evaluate a model: they have no accuracy line.`,
    )
  }
  if (!events.some((event) => event.kind === 'chaos')) {
    notes.push('No chaos event was recorded in this run.')
  }
  // Accuracy on 0–1; every other measure is non-negative, so its axis starts at 0.
  // A measure no round has (rejections in one process, drift with one honest server) is said,
  // not drawn as an empty chart.
  const chart = (chartTitle: string, series: ChartSeries[], yLabel: string, yDomain?: [number, number]) =>
    series.every((s) => s.points.length === 0)
      ? `<p class="note">${escapeHtml(chartTitle)}: not measured in this run.</p>`
      : svgLineChart(chartTitle, series, {
          yLabel,
          events: markers,
          ...(yDomain === undefined ? { yFromZero: true } : { yDomain }),
        })
  const baselineRows = detail.baseline?.rows
  const single = (key: keyof RoundRow, label: string): ChartSeries[] => [
    { label, points: pointsOf(rows, key), colour: palette[0]! },
    ...(baselineRows === undefined
      ? []
      : [
          {
            label: `baseline: ${detail.baseline!.label}`,
            points: pointsOf(baselineRows, key),
            ...baselineStyle,
          },
        ]),
  ]
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:64em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}pre{background:#f6f6f6;padding:1em;overflow:auto}svg{display:block;margin:1.2em 0}.note{color:#555}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<table>${facts.map(([k, v]) => `<tr><th>${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
${notes.map((note) => `<p class="note">${escapeHtml(note)}</p>`).join('\n')}
${chart('Test accuracy per honest server', accuracy.series, 'accuracy', [0, 1])}
${chart('Test loss per honest server', loss.series, 'loss')}
${chart('Max drift between honest servers', single('maxHonestDrift', 'ℓ2 drift'), 'ℓ2 distance')}
${chart('Rejected messages per round', single('rejectedMessages', 'all reasons'), 'messages')}
${chart('Round time', single('roundSeconds', 'seconds per round'), 'seconds')}
<h2>Events</h2>
${
  events.length === 0
    ? '<p>none recorded</p>'
    : `<ol>${events
        .map(
          (event) =>
            `<li>round ${event.round}${event.to === undefined ? '' : `–${event.to}`}: ${escapeHtml(event.kind)} — ${escapeHtml(event.label)}</li>`,
        )
        .join('')}</ol>`
}
<h2>Configuration</h2>
<pre>${escapeHtml(JSON.stringify(config, null, 2))}</pre>
</body></html>
`
}
