/**
 * `phalanx local` end to end: real processes, real libp2p over TCP on loopback, real
 * TensorFlow.js. The cluster here is small (logistic regression, 7 workers) so a run takes
 * well under a minute on two cores; the default `npm start` cluster is the same code larger.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from './support/cli.js'

describe('phalanx local', () => {
  it.each([
    [['--servers', '3', '--byzantine-servers', '1'], /N−F ≥ 2F\+1/],
    [['--workers', '6', '--byzantine-workers', '2', '--rule', 'krum'], /n ≥ 2f\+3/],
    [['--workers', '10', '--byzantine-workers', '2', '--rule', 'bulyan'], /n ≥ 4f\+3/],
    [['--rule', 'krumm'], /rule.*krumm/],
  ])('refuses %j at start-up, naming the bound or field', async (args, message) => {
    const result = await runCli(['local', ...args], { timeoutMs: 60_000 })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
  })

  it('trains to a useful accuracy with a Byzantine server and a Byzantine worker, and writes its report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'phalanx-local-test-'))
    const result = await runCli(
      [
        'local',
        ...['--servers', '4', '--byzantine-servers', '1', '--server-attack', 'reversed'],
        ...['--workers', '7', '--byzantine-workers', '1', '--worker-attack', 'sign-flip'],
        ...['--rule', 'multiKrum', '--model', 'logistic', '--rounds', '30', '--eval-every', '10'],
        ...['--learning-rate', '0.5', '--momentum', '0', '--seed', '3', '--out', out],
      ],
      { timeoutMs: 240_000 },
    )
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
    expect(summary.rounds).toBe(30)
    // Logistic regression on the embedded MNIST reaches ~85% in 30 such rounds in the
    // single-process trainer; the cluster must not lose much of that to the attackers.
    expect(summary.honestAccuracy).toBeGreaterThan(0.75)
    // Honest servers start from the same seeded model and take the median of the same
    // honest majority: their models may differ only by the gradients each saw first.
    expect(summary.maxHonestDrift).toBeLessThan(1)
    // Every honest node reports the CPU of its rounds: a server aggregates and steps, a worker
    // computes a gradient, so neither can have used none.
    expect(summary.cpuSecondsPerRound.server).toBeGreaterThan(0)
    expect(summary.cpuSecondsPerRound.worker).toBeGreaterThan(0)
    expect(readFileSync(join(out, 'rounds.csv'), 'utf8').trim().split('\n')).toHaveLength(31)
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<svg')
  })
})
