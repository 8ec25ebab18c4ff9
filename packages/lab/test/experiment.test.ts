import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ClusterConfig } from '@phalanx/node'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  type CellResult,
  type CellRunner,
  cellId,
  expandMatrix,
  experimentHtml,
  parseMatrix,
  parseRoundsCsv,
  resultsCsv,
  resultsMarkdown,
  runExperiment,
} from '../src/experiment.js'
import type { RunSummary } from '../src/outputs.js'
import { runProvenance } from '../src/provenance.js'
import { roundsCsv } from '../src/report.js'

const log = pino({ level: 'silent' })
const base = { workers: 7, byzantineWorkers: 1, model: 'logistic', rounds: 3 }

/** A runner that trains nothing: accuracy is a function of the cell so the table can be checked. */
function fakeRunner(calls: string[], fail?: (config: ClusterConfig) => boolean): CellRunner {
  return async (config) => {
    calls.push(`${config.rule}/${config.workerAttack}/${config.seed}`)
    if (fail?.(config)) throw new RangeError(`cannot train ${config.rule}`)
    const accuracy = config.rule === 'average' && config.workerAttack !== 'none' ? 0.1 : 0.9
    const summary: RunSummary = {
      mode: 'single-process',
      provenance: runProvenance({ seed: config.seed, startedAt: new Date() }),
      honestAccuracy: accuracy,
      honestLoss: 0.5,
      rounds: config.rounds,
      wallSeconds: 1.25,
      maxHonestDrift: 0.002,
      rejectedMessages: { nonFinite: 2, window: 1 },
      backend: 'cpu',
      config: { ...config },
    }
    const rows = Array.from({ length: config.rounds }, (_, round) => ({
      round,
      honestAccuracy: accuracy * ((round + 1) / config.rounds),
      maxHonestDrift: 0.001,
      rejectedMessages: 0,
    }))
    return { summary, rows }
  }
}

describe('experiment matrix expansion', () => {
  it.each([
    [{}, ['base']],
    [{ rule: ['krum'] }, ['rule=krum']],
    [
      { rule: ['average', 'multiKrum'], workerAttack: ['none', 'sign-flip'] },
      [
        'rule=average_workerAttack=none',
        'rule=average_workerAttack=sign-flip',
        'rule=multiKrum_workerAttack=none',
        'rule=multiKrum_workerAttack=sign-flip',
      ],
    ],
    [
      { seed: [1, 2], preAggregation: [[], ['nnm', 'clip']] },
      [
        'seed=1_preAggregation=none',
        'seed=1_preAggregation=nnm+clip',
        'seed=2_preAggregation=none',
        'seed=2_preAggregation=nnm+clip',
      ],
    ],
  ])('grid %j expands to the cartesian product %j, last field fastest', (grid, ids) => {
    const cells = expandMatrix(parseMatrix({ base, grid }))
    expect(cells.map((cell) => cell.id)).toEqual(ids)
    for (const cell of cells) {
      expect(cell.config.workers).toBe(7)
      for (const [field, value] of Object.entries(cell.varying)) {
        expect(cell.config[field as keyof ClusterConfig]).toEqual(value)
      }
    }
  })

  it.each([
    [{ rule: ['krum'] }, { rule: 'krum' }, 'rule=krum'],
    [{ rule: 'krum' }, { rule: 'krum' }, 'rule=krum'],
    [{ workerAttack: 'a/b c' }, { workerAttack: 'a/b c' }, 'workerAttack=a-b-c'],
  ])('cell id of %j is directory-safe', (_label, varying, id) => {
    expect(cellId(varying)).toBe(id)
  })

  it.each([
    // The bad value is in the second cell: the error names that cell and the field.
    [{ rule: ['krum', 'krumm'] }, 'rule=krumm', 'rule'],
    [{ rule: ['median', 'bulyan'] }, 'rule=bulyan', 'n ≥ 4f+3'],
    [{ seed: [1, -1] }, 'seed=-1', 'seed'],
    [{ byzantineServers: [1, 2] }, 'byzantineServers=2', 'N−F ≥ 2F+1'],
    [{ learningRte: [0.1] }, 'learningRte=0.1', 'learningRte'],
    [{ seed: [1, 1] }, 'seed=1', 'seed'],
  ])('grid %j is refused before anything runs, naming cell %s and %s', async (grid, badCell, field) => {
    const calls: string[] = []
    const out = mkdtempSync(join(tmpdir(), 'phalanx-experiment-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const run = runExperiment({
      matrix: parseMatrix({ mode: 'simulate', base, grid }),
      out,
      log,
      runCell: fakeRunner(calls),
    })
    await expect(run).rejects.toMatchObject({ name: 'ExperimentCellError', cellId: badCell })
    await expect(run).rejects.toThrow(badCell)
    await run.catch((error: { field: string }) => expect(error.field).toContain(field))
    expect(calls).toEqual([])
    expect(existsSync(join(out, 'cells'))).toBe(false)
  })

  it.each([
    [{ grid: { rule: 'krum' } }, 'grid.rule'],
    [{ grid: { rule: [] } }, 'grid.rule'],
    [{ mode: 'cluster' }, 'mode'],
    [{ grids: {} }, 'grids'],
    [[1, 2], ''],
  ])('matrix %j is refused as a MatrixError naming key %j', (document, key) => {
    expect(() => parseMatrix(document, 'm.yaml')).toThrow(
      expect.objectContaining({ name: 'MatrixError', key }),
    )
  })
})

describe('running a grid', () => {
  const matrix = parseMatrix({
    mode: 'simulate',
    base,
    grid: { rule: ['average', 'multiKrum'], workerAttack: ['none', 'gaussian'], seed: [4] },
  })

  it('runs each cell into cells/<id>/, then skips them all when run again (resume)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'phalanx-experiment-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const calls: string[] = []
    const first = await runExperiment({ matrix, out, log, runCell: fakeRunner(calls) })
    expect(calls).toEqual([
      'average/none/4',
      'average/gaussian/4',
      'multiKrum/none/4',
      'multiKrum/gaussian/4',
    ])
    expect(first.results.map((r) => r.status)).toEqual(['done', 'done', 'done', 'done'])
    const cellDir = join(out, 'cells', 'rule=average_workerAttack=gaussian_seed=4')
    for (const file of ['summary.json', 'rounds.csv', 'report.html']) {
      expect(existsSync(join(cellDir, file))).toBe(true)
    }

    const again: string[] = []
    const second = await runExperiment({ matrix, out, log, runCell: fakeRunner(again) })
    expect(again).toEqual([])
    expect(second.results.map((r) => r.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped'])
    // Resumed cells keep their numbers and their per-round series (for the plots).
    expect(second.results[1]?.summary?.honestAccuracy).toBe(0.1)
    expect(second.results[1]?.rows).toHaveLength(3)

    // A changed base (more rounds) is a different experiment: every cell runs again.
    const longer = parseMatrix({ ...matrix, base: { ...base, rounds: 4 } })
    const third: string[] = []
    await runExperiment({ matrix: longer, out, log, runCell: fakeRunner(third) })
    expect(third).toHaveLength(4)

    // So is the same grid in the other mode (a simulation does not stand for a cluster run).
    const local: string[] = []
    await runExperiment({ matrix: { ...longer, mode: 'local' }, out, log, runCell: fakeRunner(local) })
    expect(local).toHaveLength(4)
  })

  it('records a failing cell with its error name and message, goes on, and retries it next time', async () => {
    const out = mkdtempSync(join(tmpdir(), 'phalanx-experiment-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const calls: string[] = []
    const failMultiKrumNone = (config: ClusterConfig) =>
      config.rule === 'multiKrum' && config.workerAttack === 'none'
    const { results } = await runExperiment({
      matrix,
      out,
      log,
      runCell: fakeRunner(calls, failMultiKrumNone),
    })
    expect(calls).toHaveLength(4)
    expect(results.map((r) => r.status)).toEqual(['done', 'done', 'failed', 'done'])
    expect(results[2]?.error).toEqual({ name: 'RangeError', message: 'cannot train multiKrum' })
    const errorFile = join(out, 'cells', 'rule=multiKrum_workerAttack=none_seed=4', 'error.json')
    expect(JSON.parse(readFileSync(errorFile, 'utf8'))).toEqual(results[2]?.error)
    expect(readFileSync(join(out, 'results.md'), 'utf8')).toContain('failed: RangeError')

    const retried: string[] = []
    const again = await runExperiment({ matrix, out, log, runCell: fakeRunner(retried) })
    expect(retried).toEqual(['multiKrum/none/4'])
    expect(again.results.map((r) => r.status)).toEqual(['skipped', 'skipped', 'done', 'skipped'])
    expect(existsSync(errorFile)).toBe(false)
  })
})

describe('results table', () => {
  const [cell] = expandMatrix(parseMatrix({ base, grid: { rule: ['krum'], workerAttack: ['alie'] } }))
  const summary: RunSummary = {
    mode: 'single-process',
    provenance: runProvenance({ seed: 1, startedAt: new Date() }),
    honestAccuracy: 0.91234,
    honestLoss: 0.3,
    rounds: 3,
    wallSeconds: 12.345,
    maxHonestDrift: 0.00123456,
    rejectedMessages: { nonFinite: 2, window: 3 },
    backend: 'wasm',
    config: {},
  }
  const done: CellResult = { cell: cell!, status: 'done', summary, rows: [] }
  const noAccuracy: CellResult = { ...done, status: 'skipped', summary: { ...summary, honestAccuracy: null } }
  const failed: CellResult = {
    cell: cell!,
    status: 'failed',
    error: { name: 'LocalClusterError', message: 'server-1 exited, code 1' },
  }

  it.each([
    [done, '| krum | alie | 91.23% | 0.00123 | 5 | 12.3 | done |'],
    [noAccuracy, '| krum | alie | — | 0.00123 | 5 | 12.3 | skipped |'],
    [failed, '| krum | alie | — | — | — | — | failed: LocalClusterError |'],
  ])('markdown row of %#', (result, row) => {
    const lines = resultsMarkdown([result], ['rule', 'workerAttack']).trim().split('\n')
    expect(lines).toEqual([
      '| rule | workerAttack | honest accuracy | max drift | rejected messages | wall seconds | status |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      row,
    ])
  })

  it.each([
    [done, 'rule=krum_workerAttack=alie,krum,alie,0.91234,0.00123456,5,12.345,done,'],
    [failed, 'rule=krum_workerAttack=alie,krum,alie,,,,,failed,"LocalClusterError: server-1 exited, code 1"'],
  ])('csv row of %#', (result, row) => {
    const lines = resultsCsv([result], ['rule', 'workerAttack']).trim().split('\n')
    expect(lines[0]).toBe(
      'cell,rule,workerAttack,honestAccuracy,maxHonestDrift,rejectedMessages,wallSeconds,status,error',
    )
    expect(lines[1]).toBe(row)
  })

  it('the plot page draws every rule on one chart per other setting, mean ± s.d. over seeds, shared axes', () => {
    const cells = expandMatrix(
      parseMatrix({
        base,
        grid: { rule: ['average', 'krum'], workerAttack: ['none', 'alie'], seed: [1, 2] },
      }),
    )
    const results = cells.map((c) => {
      const seed = c.varying.seed as number
      return {
        ...done,
        cell: c,
        summary: { ...done.summary!, honestAccuracy: seed === 1 ? 0.8 : 0.9 },
        rows: [
          { round: 0, honestAccuracy: 0.4 + 0.1 * seed },
          { round: 1, honestAccuracy: 0.7 + 0.1 * seed },
        ],
      }
    })
    const html = experimentHtml(results, ['rule', 'workerAttack', 'seed'])
    const charts = html.match(/<svg[^>]*>/g) ?? []
    expect(charts).toHaveLength(2)
    for (const svg of charts) {
      expect(svg).toContain('data-series="2"')
      expect(svg).toContain('data-bands="2"')
    }
    expect(html).toContain('Honest test accuracy — workerAttack=alie')
    expect(html).toContain('krum (mean ± 1 s.d., 2 seeds)')
    // Same axes on every chart: both end on the same ticks.
    const yTicks = html
      .split('<svg')
      .slice(1)
      .map((svg) => svg.match(/text-anchor="end" font-size="11">[^<]*/g)?.join())
    expect(new Set(yTicks).size).toBe(1)
    // Final accuracy mean ± s.d. over the two seeds: 85 % ± 7.07.
    expect(html).toContain('85.00 % ± 7.07')
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/)
  })

  it('rounds.csv reads back as the rows it was written from', () => {
    const rows = [
      { round: 0, maxHonestDrift: 0, rejectedMessages: 0 },
      { round: 1, honestAccuracy: 0.5, honestLoss: 1.25, maxHonestDrift: 0.5, rejectedMessages: 2 },
    ]
    expect(parseRoundsCsv(roundsCsv(rows))).toEqual(rows)
  })
})
