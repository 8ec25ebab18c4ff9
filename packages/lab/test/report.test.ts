import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { RunSummary } from '../src/outputs.js'
import { runProvenance } from '../src/provenance.js'
import { roundsCsv, svgLineChart, writeRunReport } from '../src/report.js'

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
    const svg = svgLineChart('empty', [{ label: 'x', points: [[0, Number.NaN]] }], 'y')
    expect(svg).toContain('no data')
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
      'y',
    )
    expect(svg).not.toContain('<b>')
    expect(svg).not.toContain('<i>')
  })
})
