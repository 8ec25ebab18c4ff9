/** The progress display: fits any terminal width, carries the last measured accuracy, draws log lines above itself. */
import type { RoundRow } from '@phalanx/lab'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ProgressView, progressLine, startupLine } from '../src/view.js'

const width = (text: string) => [...text].length

const rows: fc.Arbitrary<[RoundRow, number]> = fc.integer({ min: 1, max: 100_000 }).chain((rounds) =>
  fc.tuple(
    fc.record(
      {
        round: fc.integer({ min: 0, max: rounds - 1 }),
        honestAccuracy: fc.double({ min: 0, max: 1, noNaN: true }),
        maxHonestDrift: fc.double({ min: 0, max: 1e30, noNaN: true }),
        rejectedMessages: fc.integer({ min: 0, max: 1e12 }),
      },
      { requiredKeys: ['round'] },
    ),
    fc.constant(rounds),
  ),
)

/** A terminal of `columns`, recording what is written. */
function terminal(columns: number) {
  let written = ''
  return {
    columns,
    write: (text: string) => {
      written += text
    },
    written: () => written,
    /** The line on screen now: what follows the last carriage return or newline. */
    shown: () =>
      written
        .split(/[\r\n]/)
        .at(-1)!
        .replace('\x1b[2K', ''),
  }
}

describe('progress line', () => {
  it('is never wider than the terminal less one column', () => {
    fc.assert(
      fc.property(rows, fc.integer({ min: 1, max: 400 }), ([row, rounds], columns) => {
        expect(width(progressLine(row, rounds, { columns }))).toBeLessThanOrEqual(Math.max(1, columns - 1))
        expect(width(startupLine(row.round, rounds, columns))).toBeLessThanOrEqual(Math.max(1, columns - 1))
      }),
    )
  })

  it.each([40, 60, 80, 120])('at %i columns shows the round and the accuracy', (columns) => {
    const line = progressLine(
      { round: 99, honestAccuracy: 0.9123, maxHonestDrift: 0.0123, rejectedMessages: 4 },
      100,
      { columns },
    )
    expect(line).toContain('round 100/100')
    expect(line).toContain('acc 91.23%')
  })

  it('carries the last measured accuracy over the rounds that measure none, and shows — only before one', () => {
    const screen = terminal(80)
    const view = new ProgressView(screen)
    view.round({ round: 0 }, 5)
    expect(screen.shown()).toContain('acc —')
    view.round({ round: 1, honestAccuracy: 0.5 }, 5)
    for (const round of [2, 3, 4]) {
      view.round({ round }, 5)
      expect(screen.shown()).toContain('acc 50.00%')
    }
  })

  it('prints a log line above itself and draws itself again below it', () => {
    const screen = terminal(80)
    const view = new ProgressView(screen)
    view.startup(9, 16)
    expect(screen.shown()).toBe('16 nodes: 9 ready…')
    view.print('{"msg":"a warning"}\n')
    expect(screen.written()).toContain('{"msg":"a warning"}\n16 nodes: 9 ready…')
    expect(screen.shown()).toBe('16 nodes: 9 ready…')
    view.end()
    expect(screen.written().endsWith('\n')).toBe(true)
  })
})
