/**
 * Why the median exchange is there. Two real clusters, identical but for `--replication`: 4
 * servers (server-0 Byzantine, sending its model reversed), 6 workers of which the servers wait
 * for 4 (f = 2, all behaving), plain averaging. Each honest server aggregates whichever 4
 * gradients reach it first, so honest aggregates differ a little every round.
 *
 * With the exchange, each honest server restarts every round from the median of N−F models,
 * which lies inside the honest range: drift is at most what one round of differing aggregates
 * adds (η·‖Δ aggregate‖, ~0.1–0.3 here) and keeps falling back to 0 when the subsets coincide.
 * Without it the differences add up round after round (measured: 0.17 at round 4, 0.50 at
 * round 10, 0.77 at round 40; mean of the last 10 rounds 0.72, against 0.085 with the median).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { runCli } from './support/cli.js'

const ROUNDS = 40

async function honestDriftPerRound(replication: string, out: string): Promise<number[]> {
  const result = await runCli(
    [
      'local',
      ...['--replication', replication],
      ...['--servers', '4', '--byzantine-servers', '1', '--server-attack', 'reversed'],
      ...['--workers', '6', '--byzantine-workers', '2', '--worker-attack', 'none', '--rule', 'average'],
      ...['--model', 'logistic', '--learning-rate', '0.5', '--momentum', '0', '--seed', '5'],
      ...['--rounds', String(ROUNDS), '--eval-every', '10', '--out', out],
    ],
    { timeoutMs: 280_000 },
  )
  expect(result.code, result.stderr).toBe(0)
  const [, ...rows] = readFileSync(join(out, 'rounds.csv'), 'utf8').trim().split('\n')
  return rows.map((row) => Number(row.split(',')[3] || 0))
}

describe('honest drift with and without the median exchange', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
  })
  const outDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-drift-'))
    dirs.push(dir)
    return dir
  }

  it('stays bounded with the median and accumulates without it', async () => {
    const withMedian = await honestDriftPerRound('median', outDir())
    const without = await honestDriftPerRound('no-anti-drift', outDir())
    expect(withMedian).toHaveLength(ROUNDS)
    expect(without).toHaveLength(ROUNDS)

    // Means over the last 10 rounds: one round of differing aggregates can reach ~0.3 in the median
    // cluster (a clean CI run saw 0.27 against 0.53 without the exchange at round 40), but there
    // it keeps falling back towards 0, while without the exchange it stays up and grows.
    const mean = (values: readonly number[]) => values.reduce((sum, v) => sum + v, 0) / values.length
    const medianLate = mean(withMedian.slice(-10))
    const withoutLate = mean(without.slice(-10))
    // Some drift must exist at all, or the comparison below proves nothing.
    expect(withoutLate).toBeGreaterThan(0.05)
    expect(withoutLate).toBeGreaterThan(2 * medianLate)
    // The median cluster returns to identical honest models at least once in its last rounds.
    expect(Math.min(...withMedian.slice(-10))).toBeLessThan(Math.max(...withMedian.slice(-10)))
  })
})
