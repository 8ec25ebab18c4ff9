/**
 * Line charts as inline SVG strings (no script, no font, no network): the drawing under
 * `report.html` and the experiment's `index.html`. Axes end on rounded ("nice") ticks, the
 * legend sits in a column of its own right of the plot so it never covers a curve, a series may
 * carry a band (mean ± spread), and events (an attack, a chaos action) are numbered markers on
 * the round axis.
 *
 * Every drawn series is a `<path class="series">` and every band a `<path class="band">`, and the
 * `<svg>` says how many of each it drew (`data-series`, `data-bands`): what a browser test counts.
 */

export interface ChartSeries {
  label: string
  points: readonly (readonly [number, number])[]
  /** CSS colour; default the palette's next one. */
  colour?: string
  /** SVG `stroke-dasharray` (a Byzantine node's or a baseline's line is dashed). */
  dash?: string
  /** Per x, the low and high ends of a spread drawn as a shaded band under the line. */
  band?: readonly (readonly [number, number, number])[]
}

/** A numbered marker on the round axis; `to` makes it a span (an attack over rounds). */
export interface ChartEvent {
  round: number
  to?: number
  label: string
}

export interface ChartOptions {
  yLabel: string
  xLabel?: string
  events?: readonly ChartEvent[]
  /** Fixed value ranges, so that several charts share their axes. */
  xDomain?: readonly [number, number]
  yDomain?: readonly [number, number]
  /** The value axis starts at 0 or below (counts, durations, distances, losses). */
  yFromZero?: boolean
  /** Width of the plot area in px (the legend column is added to it). */
  width?: number
}

export const palette = [
  '#1f77b4',
  '#d62728',
  '#2ca02c',
  '#9467bd',
  '#ff7f0e',
  '#8c564b',
  '#e377c2',
  '#17becf',
]

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

/** 1, 2, 2.5 or 5 × 10^k closest to `span / intervals`: the step of rounded ticks. */
function niceStep(span: number, intervals: number): number {
  const raw = span / intervals
  const power = 10 ** Math.floor(Math.log10(raw))
  const fraction = raw / power
  const nice = fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 2.5 ? 2.5 : fraction <= 5 ? 5 : 10
  return nice * power
}

/**
 * Rounded ticks covering [min, max]: `{ ticks, step }` with the first tick ≤ min and the last ≥
 * max, about `count` of them, each a multiple of a 1/2/2.5/5 × 10^k step.
 */
export function niceTicks(
  min: number,
  max: number,
  count = 6,
  integer = false,
): { ticks: number[]; step: number } {
  if (!(Number.isFinite(min) && Number.isFinite(max))) return { ticks: [0, 1], step: 1 }
  if (max < min) [min, max] = [max, min]
  if (max === min && min === 0) {
    max = 1
  } else if (max === min) {
    const half = Math.abs(min) * 0.5
    min -= half
    max += half
  }
  let step = niceStep(max - min, Math.max(1, count - 1))
  if (integer) step = Math.max(1, Math.round(step))
  const first = Math.floor(min / step + 1e-9)
  const last = Math.ceil(max / step - 1e-9)
  const ticks: number[] = []
  for (let i = first; i <= last; i++) ticks.push(roundTo(i * step, step))
  return { ticks, step }
}

/** Removes the float noise of `k · step` (0.30000000000000004 → 0.3). */
function roundTo(value: number, step: number): number {
  const decimals = Math.max(0, -Math.floor(Math.log10(step)) + 2)
  return Number(value.toFixed(Math.min(20, decimals)))
}

/** A tick label with exactly the decimals its step needs. */
export function formatTick(value: number, step: number): string {
  if (value === 0) return '0'
  const magnitude = Math.max(Math.abs(value), step)
  if (step < 1e-3 || magnitude >= 1e6) {
    const digits = Math.max(0, Math.floor(Math.log10(Math.abs(value))) - Math.floor(Math.log10(step)))
    return value.toExponential(Math.min(digits, 3))
  }
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9))
  const fractional = step * 10 ** decimals
  return value.toFixed(Number.isInteger(Math.round(fractional * 1e6) / 1e6) ? decimals : decimals + 1)
}

/** `text` in lines of at most `width` characters, broken at spaces (a longer word stays whole). */
export function wrapLabel(text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  lines.push(line)
  return lines
}

const finitePoints = (points: ChartSeries['points']) =>
  points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))

/** A line chart: several series on shared axes, legend right of the plot, events as markers. */
export function svgLineChart(title: string, series: readonly ChartSeries[], options: ChartOptions): string {
  const plotWidth = options.width ?? 560
  const legendWidth = 210
  const events = options.events ?? []
  const spanCount = events.filter((e) => e.to !== undefined && e.to > e.round).length
  // Spans (attacks over rounds) are strips between the title and the plot, one row each.
  const margin = { left: 64, right: 16, top: 30 + 13 * spanCount, bottom: 40 }
  const plotHeight = 200
  const drawn = series.filter((s) => finitePoints(s.points).length > 0)
  const width = margin.left + plotWidth + margin.right + legendWidth
  if (drawn.length === 0) {
    return `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-series="0" data-bands="0" width="${width}" height="60" role="img" aria-label="${escapeHtml(title)}"><text x="8" y="20" font-weight="bold">${escapeHtml(title)}</text><text x="8" y="44">not measured in this run</text></svg>`
  }
  const all = drawn.flatMap((s) => [
    ...finitePoints(s.points),
    ...(s.band ?? []).flatMap(([x, lo, hi]) => [
      [x, lo],
      [x, hi],
    ]),
  ]) as [number, number][]
  const finite = all.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y))
  const xs = [...finite.map(([x]) => x), ...events.flatMap((e) => [e.round, e.to ?? e.round])]
  const ys = finite.map(([, y]) => y)
  const [xLow, xHigh] = options.xDomain ?? [Math.min(...xs), Math.max(...xs)]
  const [yLow, yHigh] = options.yDomain ?? [
    Math.min(...ys, ...(options.yFromZero ? [0] : [])),
    Math.max(...ys),
  ]
  const xAxis = niceTicks(xLow, Math.max(xHigh, xLow + 1), 6, true)
  const yAxis = niceTicks(yLow, yHigh)
  const xMin = xAxis.ticks[0]!
  const xMax = xAxis.ticks.at(-1)!
  const yMin = yAxis.ticks[0]!
  const yMax = yAxis.ticks.at(-1)!
  // Legend entries wrap to the legend column; each starts below the one before.
  const legendLines = drawn.map((s) => wrapLabel(s.label, Math.floor((legendWidth - 34) / 6.6)))
  const legendY: number[] = [margin.top + 6]
  for (const lines of legendLines) legendY.push(legendY.at(-1)! + 18 + 14 * (lines.length - 1))
  const height = Math.max(
    margin.top + plotHeight + margin.bottom,
    legendY.at(-1)! + (events.length > 0 ? 18 : 0) + 4,
  )
  const bottom = margin.top + plotHeight
  const right = margin.left + plotWidth
  const px = (x: number) => margin.left + ((x - xMin) / (xMax - xMin)) * plotWidth
  const py = (y: number) => bottom - ((y - yMin) / (yMax - yMin)) * plotHeight
  const f = (n: number) => n.toFixed(1)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-series="${drawn.length}" data-bands="${drawn.filter((s) => (s.band ?? []).length > 0).length}" width="${width}" height="${height}" font-family="system-ui,sans-serif" role="img" aria-label="${escapeHtml(title)}">`,
    `<title>${escapeHtml(title)}</title>`,
    `<text x="${margin.left}" y="18" font-weight="bold" font-size="14">${escapeHtml(title)}</text>`,
  ]
  for (const tick of yAxis.ticks) {
    parts.push(
      `<line x1="${margin.left}" y1="${f(py(tick))}" x2="${right}" y2="${f(py(tick))}" stroke="#e4e4e4"/>`,
      `<text x="${margin.left - 6}" y="${f(py(tick) + 4)}" text-anchor="end" font-size="11">${formatTick(tick, yAxis.step)}</text>`,
    )
  }
  for (const tick of xAxis.ticks) {
    parts.push(
      `<line x1="${f(px(tick))}" y1="${bottom}" x2="${f(px(tick))}" y2="${bottom + 4}" stroke="#333"/>`,
      `<text x="${f(px(tick))}" y="${bottom + 16}" text-anchor="middle" font-size="11">${formatTick(tick, xAxis.step)}</text>`,
    )
  }
  parts.push(
    `<line x1="${margin.left}" y1="${bottom}" x2="${right}" y2="${bottom}" stroke="#333"/>`,
    `<line x1="${margin.left}" y1="${margin.top}" x2="${margin.left}" y2="${bottom}" stroke="#333"/>`,
    `<text x="${margin.left + plotWidth / 2}" y="${bottom + 32}" text-anchor="middle" font-size="12">${escapeHtml(options.xLabel ?? 'round')}</text>`,
    `<text x="14" y="${margin.top + plotHeight / 2}" transform="rotate(-90 14 ${margin.top + plotHeight / 2})" text-anchor="middle" font-size="12">${escapeHtml(options.yLabel)}</text>`,
  )
  // A span is a labelled strip above the plot; a point event a dashed line across the plot with
  // its number (the page lists the events by number).
  let spans = 0
  events.forEach((event, index) => {
    const x0 = px(event.round)
    if (event.to !== undefined && event.to > event.round) {
      const y = 26 + 13 * spans++
      parts.push(
        `<rect class="event" x="${f(x0)}" y="${y}" width="${f(px(event.to) - x0)}" height="11" fill="#f5a623" fill-opacity="0.35"/>`,
        `<text x="${f(x0 + 3)}" y="${y + 9}" font-size="9" fill="#6b4000">${index + 1}. ${escapeHtml(event.label)}</text>`,
      )
    } else {
      parts.push(
        `<line class="event" x1="${f(x0)}" y1="${margin.top}" x2="${f(x0)}" y2="${bottom}" stroke="#b36b00" stroke-dasharray="4 3"/>`,
        `<text x="${f(x0 + 3)}" y="${bottom - 4}" font-size="10" fill="#b36b00">${index + 1}</text>`,
      )
    }
  })
  drawn.forEach((s, index) => {
    const colour = s.colour ?? palette[index % palette.length]!
    const band = (s.band ?? []).filter(([x, lo, hi]) => [x, lo, hi].every(Number.isFinite))
    if (band.length > 0) {
      const upper = band.map(([x, , hi], i) => `${i === 0 ? 'M' : 'L'}${f(px(x))},${f(py(hi))}`)
      const lower = [...band].reverse().map(([x, lo]) => `L${f(px(x))},${f(py(lo))}`)
      parts.push(
        `<path class="band" d="${[...upper, ...lower].join(' ')} Z" fill="${colour}" fill-opacity="0.15" stroke="none"/>`,
      )
    }
    const points = finitePoints(s.points)
    const d = points.map(([x, y], i) => `${i === 0 ? 'M' : 'L'}${f(px(x))},${f(py(y))}`).join(' ')
    const dash = s.dash === undefined ? '' : ` stroke-dasharray="${s.dash}"`
    parts.push(
      `<path class="series" data-label="${escapeHtml(s.label)}" d="${d}" fill="none" stroke="${colour}" stroke-width="1.8"${dash}/>`,
    )
    // A lone point draws no line: a dot shows it.
    if (points.length === 1) {
      parts.push(`<circle cx="${f(px(points[0]![0]))}" cy="${f(py(points[0]![1]))}" r="3" fill="${colour}"/>`)
    }
    const ly = legendY[index]!
    const lx = right + 16
    parts.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 22}" y2="${ly}" stroke="${colour}" stroke-width="2.5"${dash}/>`,
      `<text class="legend" x="${lx + 28}" y="${ly + 4}" font-size="12">${legendLines[index]!.map((line, i) => `<tspan x="${lx + 28}" dy="${i === 0 ? 0 : 14}">${escapeHtml(line)}</tspan>`).join('')}</text>`,
    )
  })
  if (events.length > 0) {
    const ly = legendY[drawn.length]!
    const lx = right + 16
    parts.push(
      spans > 0
        ? `<rect x="${lx}" y="${ly - 4}" width="22" height="7" fill="#f5a623" fill-opacity="0.45"/>`
        : `<line x1="${lx + 11}" y1="${ly - 7}" x2="${lx + 11}" y2="${ly + 7}" stroke="#b36b00" stroke-dasharray="4 3"/>`,
      `<text x="${lx + 28}" y="${ly + 4}" font-size="12">events: see the list</text>`,
    )
  }
  parts.push('</svg>')
  return parts.join('\n')
}
