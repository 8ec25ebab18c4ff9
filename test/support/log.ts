/** A pino logger whose lines are kept in memory, so tests can assert on what was logged (and how often). */
import type { Logger } from 'pino'
import { pino } from 'pino'

export interface CapturedLog {
  log: Logger
  lines(): Record<string, unknown>[]
  /** Lines whose `msg` contains `text` (and that match every given field). */
  matching(text: string, fields?: Record<string, unknown>): Record<string, unknown>[]
}

export function captureLogger(level: pino.LevelWithSilent = 'debug'): CapturedLog {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  return {
    log,
    lines: () => [...lines],
    matching: (text, fields = {}) =>
      lines.filter(
        (line) =>
          String(line.msg ?? '').includes(text) &&
          Object.entries(fields).every(([key, value]) => line[key] === value),
      ),
  }
}
