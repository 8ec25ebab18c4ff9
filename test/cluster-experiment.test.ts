/**
 * `phalanx experiment` end to end through the built CLI: a small grid in single-process mode
 * (fast, so the comparison of rules is the point), resumed on a second invocation, and one
 * tiny cell through the real multi-process cluster.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { runCli } from './support/cli.js'

/** The markdown table's rows as field → cell maps (header row names the fields). */
function tableRows(markdown: string): Record<string, string>[] {
  const [header, , ...rows] = markdown
    .trim()
    .split('\n')
    .map((line) =>
      line
        .slice(1, -1)
        .split('|')
        .map((cell) => cell.trim()),
    )
  return rows.map((cells) => Object.fromEntries(header!.map((name, i) => [name, cells[i] ?? ''])))
}

const percent = (text: string | undefined) => Number.parseFloat(text ?? 'NaN') / 100

describe('phalanx experiment', () => {
  it('runs a 2 rules × 2 attacks grid (--mode simulate), tabulates it, and skips every cell when run again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-experiment-test-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const matrix = join(dir, 'matrix.yaml')
    const out = join(dir, 'out')
    writeFileSync(
      matrix,
      [
        'base: { workers: 7, byzantineWorkers: 1, model: logistic, rounds: 20, evalEvery: 5, learningRate: 0.5, momentum: 0 }',
        'grid:',
        '  rule: [average, multiKrum]',
        '  workerAttack: [none, gaussian]',
        '  seed: [1]',
      ].join('\n'),
    )
    // The matrix names no mode (local by default); --mode simulate overrides it.
    const first = await runCli(['experiment', matrix, '--out', out, '--mode', 'simulate'], {
      timeoutMs: 120_000,
    })
    expect(first.stderr).toBe('')
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/\[4\/4\] rule=multiKrum_workerAttack=gaussian_seed=1: done/)

    const rows = tableRows(readFileSync(join(out, 'results.md'), 'utf8'))
    expect(rows.map((row) => `${row.rule}/${row.workerAttack}`)).toEqual([
      'average/none',
      'average/gaussian',
      'multiKrum/none',
      'multiKrum/gaussian',
    ])
    const accuracy = (rule: string, attack: string) =>
      percent(rows.find((row) => row.rule === rule && row.workerAttack === attack)?.['honest accuracy'])
    // With no attack both rules learn logistic regression on MNIST to ~85% in 20 rounds; one
    // worker sending Gaussian noise (σ = 200) drags the average to chance (~10%) while
    // Multi-Krum discards it and keeps its no-attack accuracy.
    expect(accuracy('average', 'none')).toBeGreaterThan(0.7)
    expect(accuracy('multiKrum', 'gaussian')).toBeGreaterThan(0.7)
    expect(accuracy('average', 'gaussian')).toBeLessThan(0.3)
    expect(accuracy('multiKrum', 'gaussian')).toBeGreaterThan(accuracy('average', 'gaussian') + 0.4)
    expect(rows.every((row) => row.status === 'done')).toBe(true)
    expect(readFileSync(join(out, 'results.csv'), 'utf8').trim().split('\n')).toHaveLength(5)
    const html = readFileSync(join(out, 'index.html'), 'utf8')
    expect(html.match(/<svg/g)).toHaveLength(2)
    expect(html).not.toMatch(/<script|<link/)

    const second = await runCli(['experiment', matrix, '--out', out, '--mode', 'simulate'], {
      timeoutMs: 120_000,
    })
    expect(second.code).toBe(0)
    expect(second.stdout.match(/skipped \(results already on disk\)/g)).toHaveLength(4)
    const resumed = tableRows(readFileSync(join(out, 'results.md'), 'utf8'))
    expect(resumed.map((row) => row.status)).toEqual(['skipped', 'skipped', 'skipped', 'skipped'])
    expect(resumed.map((row) => row['honest accuracy'])).toEqual(rows.map((row) => row['honest accuracy']))
  })

  it('refuses a grid with a bad cell at start-up, naming the cell and the bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-experiment-test-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const matrix = join(dir, 'matrix.yaml')
    writeFileSync(matrix, 'base: { workers: 7, byzantineWorkers: 1 }\ngrid:\n  rule: [krum, bulyan]\n')
    const result = await runCli(['experiment', matrix, '--out', join(dir, 'out')], { timeoutMs: 60_000 })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/ExperimentCellError: cell rule=bulyan: .*n ≥ 4f\+3/)
    expect(result.stdout).not.toMatch(/\[1\/2\]/)
  })

  it('runs a cell on the real multi-process cluster (mode local)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-experiment-test-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const matrix = join(dir, 'matrix.yaml')
    const out = join(dir, 'out')
    // N=4, F=1 and n=5, f=1: the smallest cluster with a Byzantine server and worker that the
    // median rule accepts (n−f = 4 ≥ 2f+1); Krum would need n−f ≥ 2f+3.
    writeFileSync(
      matrix,
      [
        'mode: local',
        'base: { servers: 4, byzantineServers: 1, serverAttack: reversed, workers: 5, byzantineWorkers: 1,',
        '        model: logistic, rounds: 10, evalEvery: 5, learningRate: 0.5, momentum: 0 }',
        'grid: { rule: [median], workerAttack: [sign-flip], seed: [3] }',
      ].join('\n'),
    )
    const result = await runCli(['experiment', matrix, '--out', out], { timeoutMs: 180_000 })
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const cellDir = join(out, 'cells', 'rule=median_workerAttack=sign-flip_seed=3')
    const summary = JSON.parse(readFileSync(join(cellDir, 'summary.json'), 'utf8'))
    expect(summary.mode).toBe('local-cluster')
    expect(summary.rounds).toBe(10)
    // The single-process trainer reaches ~75–80% in 10 such rounds; the cluster, with one
    // reversed server and one sign-flipping worker, must still learn well above chance (10%).
    expect(summary.honestAccuracy).toBeGreaterThan(0.6)
    const [row] = tableRows(readFileSync(join(out, 'results.md'), 'utf8'))
    expect(row?.status).toBe('done')
    // Node logs of a cluster cell stay beside its results.
    expect(readFileSync(join(cellDir, 'logs', 'server-1.log'), 'utf8').length).toBeGreaterThan(0)
  })
})
