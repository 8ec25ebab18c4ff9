import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { describe, expect, it, onTestFinished } from 'vitest'
import { formatTick, niceTicks, svgLineChart, wrapLabel } from '../src/chart.js'
import type { RunSummary } from '../src/outputs.js'
import { runProvenance } from '../src/provenance.js'
import { roundsCsv } from '../src/report.js'
import { reportHtml } from '../src/report-html.js'
import { writeRunReport } from '../src/run-report.js'

const summary: RunSummary = {
  mode: 'single-process',
  provenance: runProvenance({ seed: 1, startedAt: new Date(0) }),
  honestAccuracy: 0.93,
  honestLoss: 0.21,
  rounds: 3,
  wallSeconds: 12.5,
  maxHonestDrift: 0.004,
  rejectedMessages: { nonFinite: 2 },
  backend: 'wasm',
  config: { rule: 'krum' },
}
const rows = [
  { round: 0, maxHonestDrift: 0, rejectedMessages: 0, roundSeconds: 0.5 },
  {
    round: 1,
    honestAccuracy: 0.5,
    honestLoss: 1.2,
    maxHonestDrift: 0.004,
    rejectedMessages: 2,
    roundSeconds: 0.25,
  },
  { round: 2, honestAccuracy: 0.93, honestLoss: 0.21, maxHonestDrift: 0.001, rejectedMessages: 0 },
]

describe('run report', () => {
  it('rounds.csv has one row per round and empty cells for what was not measured', () => {
    const lines = roundsCsv(rows).trim().split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[0]).toBe('round,honestAccuracy,honestLoss,maxHonestDrift,rejectedMessages,roundSeconds')
    expect(lines[1]).toBe('0,,,0,0,0.500000')
    expect(lines[3]).toBe('2,0.930000,0.210000,0.00100000,0,')
  })

  it('writes the three files; the page is self-contained (no script, no external resource)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-report-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    writeRunReport(dir, 'test run', summary, rows)
    expect(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'))).toEqual(summary)
    const html = readFileSync(join(dir, 'report.html'), 'utf8')
    expect(html).toContain('<svg')
    expect(html).not.toMatch(/<script|<link|@import|url\(|src=/i)
    expect(html).toContain('93.00 %')
  })

  it('a chart with no finite data says so instead of drawing NaN paths', () => {
    const svg = svgLineChart('empty', [{ label: 'x', points: [[0, Number.NaN]] }], { yLabel: 'y' })
    expect(svg).toContain('not measured')
    expect(svg).not.toContain('NaN')
  })

  it('escapes text that would otherwise become markup', () => {
    const svg = svgLineChart(
      '<b>',
      [
        {
          label: '<i>',
          points: [
            [0, 1],
            [1, 2],
          ],
        },
      ],
      { yLabel: 'y' },
    )
    expect(svg).not.toContain('<b>')
    expect(svg).not.toContain('<i>')
  })

  it.each([
    [0, 1, [0, 0.2, 0.4, 0.6, 0.8, 1]],
    [0.1234, 0.9321, [0, 0.2, 0.4, 0.6, 0.8, 1]],
    [0, 99, [0, 20, 40, 60, 80, 100]],
    [0, 0.004, [0, 0.001, 0.002, 0.003, 0.004]],
    [3, 3, [1, 2, 3, 4, 5]],
    [0, 0, [0, 0.2, 0.4, 0.6, 0.8, 1]],
  ])('ticks of [%s, %s] are rounded: %j', (min, max, ticks) => {
    expect(niceTicks(min, max).ticks).toEqual(ticks)
  })

  it.each([
    [0.2, 0.2, '0.2'],
    [0.25, 0.25, '0.25'],
    [7.5, 2.5, '7.5'],
    [40, 20, '40'],
    [0.003, 0.001, '0.003'],
    [0.0003, 0.0001, '3e-4'],
    [0, 0.001, '0'],
  ])('tick %s with step %s reads %s', (value, step, text) => {
    expect(formatTick(value, step)).toBe(text)
  })

  it('ticks cover the data on 1, 2, 2.5 or 5 × 10^k steps', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
        (min, span) => {
          const { ticks, step } = niceTicks(min, min + span)
          expect(ticks[0]!).toBeLessThanOrEqual(min + step * 1e-6)
          expect(ticks.at(-1)!).toBeGreaterThanOrEqual(min + span - step * 1e-6)
          expect(ticks.length).toBeGreaterThanOrEqual(2)
          expect(ticks.length).toBeLessThanOrEqual(12)
          const mantissa = step / 10 ** Math.floor(Math.log10(step))
          expect([1, 2, 2.5, 5, 10].some((m) => Math.abs(mantissa - m) < 1e-9)).toBe(true)
        },
      ),
    )
  })

  it('puts the legend right of the plot, never over a curve', () => {
    const svg = svgLineChart(
      't',
      [
        {
          label: 'only',
          points: [
            [0, 1],
            [10, 2],
          ],
        },
      ],
      { yLabel: 'y', width: 400 },
    )
    const pathXs = [...svg.matchAll(/class="series"[^>]* d="([^"]+)"/g)].flatMap((m) =>
      [...m[1]!.matchAll(/[ML]([\d.]+),/g)].map((x) => Number(x[1])),
    )
    const legendX = Number(/<text class="legend" x="([\d.]+)"/.exec(svg)![1])
    expect(legendX).toBeGreaterThan(Math.max(...pathXs))
  })

  const byzantineSummary: RunSummary = {
    ...summary,
    config: {
      rule: 'krum',
      servers: 4,
      byzantineServers: 1,
      serverAttack: 'shift',
      workers: 6,
      byzantineWorkers: 2,
      workerAttack: 'alie',
    },
  }

  it('draws one line per honest server, marks the Byzantine nodes, attacks and chaos events, and the baseline', () => {
    const servers = ['server-1', 'server-2', 'server-3'].map((nodeId, i) => ({
      nodeId,
      byzantine: false,
      points: rows.map((row) => ({
        round: row.round,
        accuracy: 0.5 + 0.1 * i + 0.01 * row.round,
        loss: 1 - 0.1 * i,
      })),
    }))
    const html = reportHtml('run', byzantineSummary, rows, {
      servers,
      events: [{ round: 1, kind: 'chaos', label: 'server-2 killed' }],
      baseline: {
        label: 'no attack, same seed',
        rows: rows.map((row) => ({ ...row, honestAccuracy: 0.95 })),
      },
    })
    const accuracy = html.split('<svg').find((svg) => svg.includes('Test accuracy per honest server'))!
    expect(accuracy).toContain('data-series="4"')
    expect(accuracy.match(/class="series"/g)).toHaveLength(4)
    expect(accuracy).toContain('baseline: no attack, same seed')
    expect(accuracy.match(/class="event"/g)?.length).toBeGreaterThanOrEqual(3)
    expect(html).toContain('server-0 — shift')
    expect(html).toContain('worker-0, worker-1 — alie')
    expect(html).toContain('chaos — server-2 killed')
    expect(html).toContain('worker attack alie by worker-0, worker-1, every round')
    expect(html).not.toContain('recorded the honest servers’ mean')
    expect(html).toContain('Rejected messages per round')
    expect(html).toContain('Round time')
    // Durations start at 0 (round times of 0.25–0.5 s would otherwise start the axis at 0.25).
    const roundTime = html.split('<svg').find((svg) => svg.includes('aria-label="Round time"'))!
    expect(/text-anchor="end" font-size="11">([^<]*)</.exec(roundTime)?.[1]).toBe('0')
  })

  it('says so when only the mean of the honest servers was recorded', () => {
    const html = reportHtml('run', summary, rows)
    expect(html).toContain('recorded the honest servers’ mean accuracy and loss only')
    expect(html).toContain('No chaos event was recorded')
    expect(html).toContain('<p>none recorded</p>')
  })

  it.each([
    ['short', 10, ['short']],
    ['baseline: no attack, same seed', 12, ['baseline: no', 'attack, same', 'seed']],
    ['averyveryverylongword x', 5, ['averyveryverylongword', 'x']],
  ])('wraps %j to %i columns', (text, width, lines) => {
    expect(wrapLabel(text, width)).toEqual(lines)
  })
})
