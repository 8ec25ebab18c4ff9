/**
 * What a person sees: a progress line on the terminal (stderr), sized to its width, and the
 * end-of-run table (stdout). The progress line is drawn only on a TTY; elsewhere each round is a
 * log line.
 */
import type { RoundRow, RunSummary } from '@phalanx/lab'

const percent = (value: number | null | undefined) =>
  value === undefined || value === null ? '—' : `${(value * 100).toFixed(2)}%`

/** Columns assumed when the stream does not say (not a terminal, or a terminal that hides its size). */
const defaultColumns = 80
/** A bar narrower than this says nothing: the line drops it. */
const minBar = 8
const maxBar = 30
/** Room kept for the count of rejected messages, so the bar does not shrink as it grows. */
const rejectedDigits = 6

/** Shortens `text` to `width` columns (one column per code point, as every character here is). */
function fit(text: string, width: number): string {
  const chars = [...text]
  return chars.length <= width ? text : `${chars.slice(0, Math.max(0, width - 1)).join('')}…`
}

const columnsOf = (text: string) => [...text].length

/**
 * One round's line, at most `columns − 1` wide (a line that fills the last column wraps on some
 * terminals): the round, the last measured accuracy (`lastAccuracy` when this round measured
 * none), the drift between honest servers and the messages rejected, then a bar in what is left;
 * on a narrow terminal the bar goes first, then the fields from the right.
 */
export function progressLine(
  row: RoundRow,
  rounds: number,
  options: { columns?: number | undefined; lastAccuracy?: number | undefined } = {},
): string {
  const width = Math.max(1, (options.columns ?? defaultColumns) - 1)
  const accuracy = row.honestAccuracy ?? options.lastAccuracy
  // Padded, so that the bar keeps its width from round to round.
  const fields = [
    `round ${String(row.round + 1).padStart(String(rounds).length)}/${rounds}`,
    `acc ${accuracy === undefined ? '—'.padEnd(6) : percent(accuracy).padStart(6)}`,
    ...(row.maxHonestDrift === undefined ? [] : [`drift ${row.maxHonestDrift.toExponential(1).padEnd(7)}`]),
    `rejected ${String(row.rejectedMessages ?? 0).padEnd(rejectedDigits)}`,
  ]
  let text = fields.join('  ')
  while (columnsOf(text) > width && fields.length > 1) {
    fields.pop()
    text = fields.join('  ')
  }
  text = text.trimEnd()
  const room = width - Math.max(columnsOf(text), columnsOf(fields.join('  '))) - 1
  if (room < minBar) return fit(text, width)
  const barWidth = Math.min(maxBar, room)
  const done = Math.min(barWidth, Math.round(((row.round + 1) / rounds) * barWidth))
  return `${'█'.repeat(done)}${'░'.repeat(barWidth - done)} ${text}`
}

/**
 * Start-up of a cluster: `16 nodes: 9 ready…`, then `16 nodes ready, waiting for round 1…` until
 * the first round completes; at most `columns − 1` wide.
 */
export function startupLine(ready: number, total: number, columns: number = defaultColumns): string {
  const text =
    ready < total ? `${total} nodes: ${ready} ready…` : `${total} nodes ready, waiting for round 1…`
  return fit(text, Math.max(1, columns - 1))
}

/** Where the progress is drawn: a terminal stream (stderr). */
export interface ProgressStream {
  write(text: string): unknown
  readonly columns?: number | undefined
}

const clearLine = '\r\x1b[2K'

/**
 * The progress display of a run on a terminal: one line, redrawn in place, that carries the last
 * accuracy measured over the rounds that measure none. Text written through `print` (a log line)
 * goes above it, and the line is drawn again below.
 */
export class ProgressView {
  readonly #stream: ProgressStream
  #line = ''
  #lastAccuracy: number | undefined

  constructor(stream: ProgressStream) {
    this.#stream = stream
  }

  round(row: RoundRow, rounds: number): void {
    if (row.honestAccuracy !== undefined) this.#lastAccuracy = row.honestAccuracy
    this.#draw(progressLine(row, rounds, { columns: this.#stream.columns, lastAccuracy: this.#lastAccuracy }))
  }

  startup(ready: number, total: number): void {
    this.#draw(startupLine(ready, total, this.#stream.columns))
  }

  /** Writes `text` (ending in a newline) above the progress line. */
  print(text: string): void {
    this.#stream.write(this.#line === '' ? text : `${clearLine}${text}${this.#line}`)
  }

  /** Leaves the last line drawn where it is and moves below it. */
  end(): void {
    if (this.#line !== '') this.#stream.write('\n')
    this.#line = ''
  }

  #draw(line: string): void {
    this.#line = line
    this.#stream.write(`${clearLine}${line}`)
  }
}

export function summaryTable(title: string, summary: RunSummary): string {
  const rejected =
    Object.entries(summary.rejectedMessages)
      .map(([reason, count]) => `${reason} ${count}`)
      .join(', ') || 'none'
  const rows: [string, string][] = [
    ['honest test accuracy', percent(summary.honestAccuracy)],
    ['honest test loss', summary.honestLoss === null ? '—' : summary.honestLoss.toFixed(4)],
    [
      'rounds',
      typeof summary.interrupted === 'string'
        ? `${summary.rounds} (stopped by ${summary.interrupted})`
        : String(summary.rounds),
    ],
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
