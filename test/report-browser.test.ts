/**
 * The report and the experiment index, opened in a real headless browser (Debian's chromium):
 * each page loads with no console error, and its charts are drawn — every series a path the
 * browser laid out with a length, as many as the run has honest servers (or rules), the legend
 * right of every curve. The pages come from real short simulated runs, so what is checked is what
 * a run writes. Skipped, saying so, only when chromium is not installed (`.ci/run` installs it).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { runBaseline, runExperiment, runSimulation, writeRunReport } from '@phalanx/lab'
import { resolveConfig } from '@phalanx/node'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { chromiumPath, openPage } from './support/chromium.js'

interface DrawnChart {
  title: string
  declared: number
  bands: number
  /** Series paths with a non-empty `d` and a positive length as the browser measured it. */
  drawn: number
  /** Legend labels, one per series. */
  legends: number
  /** Right edge of the rightmost curve, left edge of the leftmost legend label (px). */
  curvesRight: number
  legendLeft: number
  yTicks: string[]
}

// Runs in the page: what the browser drew of each chart.
const inspectCharts = `[...document.querySelectorAll('svg.chart')].map((svg) => {
  const series = [...svg.querySelectorAll('path.series')]
  const drawn = series.filter((p) => (p.getAttribute('d') ?? '').length > 1 && p.getTotalLength() > 0)
  const labels = [...svg.querySelectorAll('text.legend')]
  return {
    title: svg.getAttribute('aria-label'),
    declared: Number(svg.dataset.series),
    bands: svg.querySelectorAll('path.band').length,
    drawn: drawn.length,
    legends: labels.length,
    curvesRight: Math.max(...drawn.map((p) => p.getBBox().x + p.getBBox().width)),
    legendLeft: Math.min(...labels.map((t) => t.getBBox().x)),
    yTicks: [...svg.querySelectorAll('text[text-anchor="end"]')].map((t) => t.textContent),
  }
})`

const log = pino({ level: 'silent' })
const small = {
  model: 'logistic',
  dataset: 'mnist',
  backend: 'cpu',
  learningRate: 0.5,
  evalEvery: 2,
  servers: 4,
  byzantineServers: 1,
  workers: 6,
  byzantineWorkers: 1,
  workerAttack: 'sign-flip',
  rule: 'median',
}

const work = mkdtempSync(join(tmpdir(), 'phalanx-report-browser-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** Tick labels read as rounded numbers: at most three significant digits. */
const rounded = (label: string) => /^-?\d+(\.\d{1,3})?$|^-?\d(\.\d{1,2})?e-?\d+$/.test(label)

describe(
  chromiumPath === undefined
    ? 'report pages in a headless browser — SKIPPED: chromium is not installed (apt-get install chromium)'
    : `report pages in a headless browser (${chromiumPath})`,
  () => {
    it.skipIf(chromiumPath === undefined)(
      'report.html of a real run: no console error, one drawn line per honest server and the baseline, legend outside',
      async () => {
        const config = resolveConfig({ ...small, rounds: 10 })
        const { summary, rows, detail } = await runSimulation(config, { log })
        const baseline = await runBaseline(config, 'no-attack', { log })
        const dir = join(work, 'run')
        writeRunReport(dir, 'simulate, browser test', summary, rows, { ...detail, baseline })
        const html = readFileSync(join(dir, 'report.html'), 'utf8')
        expect(html).not.toMatch(/<script|<link|@import|url\(|src=|https?:\/\/(?!www\.w3\.org)/i)

        const { value: charts, errors } = await openPage<DrawnChart[]>(
          pathToFileURL(join(dir, 'report.html')).href,
          inspectCharts,
        )
        expect(errors).toEqual([])
        // One process exchanges no messages: its rejections are said to be unmeasured, not drawn.
        expect(charts.map((chart) => chart.title)).toEqual([
          'Test accuracy per honest server',
          'Test loss per honest server',
          'Max drift between honest servers',
          'Round time',
        ])
        expect(html).toContain('Rejected messages per round: not measured in this run.')
        const [accuracy, loss] = charts
        // N − F = 3 honest servers, each its own line, and the baseline's.
        expect(accuracy!.declared).toBe(4)
        expect(accuracy!.drawn).toBe(4)
        expect(loss!.drawn).toBe(4)
        for (const chart of charts) {
          expect(chart.drawn, chart.title).toBe(chart.declared)
          expect(chart.drawn, chart.title).toBeGreaterThan(0)
          expect(chart.legends, chart.title).toBe(chart.drawn)
          expect(chart.legendLeft, chart.title).toBeGreaterThan(chart.curvesRight)
          expect(
            chart.yTicks.filter((label) => !rounded(label)),
            chart.title,
          ).toEqual([])
        }
        expect(accuracy!.yTicks).toEqual(['0', '0.2', '0.4', '0.6', '0.8', '1.0'])
      },
    )

    it.skipIf(chromiumPath === undefined)(
      'the experiment index: every rule on the same axes, mean ± spread over seeds, no console error',
      async () => {
        const out = join(work, 'experiment')
        const { files } = await runExperiment({
          matrix: {
            mode: 'simulate',
            base: { ...small, rounds: 4 },
            grid: { rule: ['median', 'krum'], seed: [1, 2] },
          },
          out,
          log,
        })
        const { value: charts, errors } = await openPage<DrawnChart[]>(
          pathToFileURL(files.html).href,
          inspectCharts,
        )
        expect(errors).toEqual([])
        expect(charts).toHaveLength(1)
        expect(charts[0]!.drawn).toBe(2)
        expect(charts[0]!.bands).toBe(2)
        expect(charts[0]!.legends).toBe(2)
        expect(charts[0]!.legendLeft).toBeGreaterThan(charts[0]!.curvesRight)
        // Each cell's own report opens too.
        const cell = await openPage<DrawnChart[]>(
          pathToFileURL(join(out, 'cells', 'rule=krum_seed=1', 'report.html')).href,
          inspectCharts,
        )
        expect(cell.errors).toEqual([])
        expect(cell.value[0]!.drawn).toBe(3)
      },
    )
  },
)
