/**
 * "The single process is the reference", as a property: for the same seed and config,
 * `phalanx simulate` (every worker in one process, one honest server, `@phalanx/lab`'s
 * trainer) and a one-server vanilla cluster (`phalanx local --replication vanilla`: one OS
 * process per node, libp2p on loopback) end with the same model, bit for bit, compared by
 * `finalModelSha256` in their `summary.json`.
 *
 * Nothing here is left to chance, so there is no tolerance: both take the same seeded initial
 * model, the same seeded shards and batch samplers (seed · 1,000,003 + worker index), the same
 * gradient code and momentum (`momentumStep`), the same rule over the gradients in the same
 * order (the server aggregates by worker index, `aggregationOrder`, as the trainer does) and the
 * same SGD step (`sgdStep`); the worker's median of one model is that model. Both processes pick
 * the tensor backend alike (`auto`), checked below: two backends may round differently.
 * Needs the built CLI.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type RunSummary, runSummarySchema } from '@phalanx/lab'
import { describe, expect, it, onTestFinished } from 'vitest'
import { runCli, stderrProblems } from './support/cli.js'

/** The run's summary.json, as the schema docs/OUTPUTS.md is rendered from says it must be. */
async function run(command: 'simulate' | 'local', args: readonly string[]): Promise<RunSummary> {
  const out = mkdtempSync(join(tmpdir(), `phalanx-equivalence-${command}-`))
  onTestFinished(() => rmSync(out, { recursive: true, force: true }))
  const result = await runCli([command, ...args, '--out', out], { timeoutMs: 180_000 })
  expect(stderrProblems(result.stderr)).toEqual([])
  expect(result.code).toBe(0)
  return runSummarySchema.parse(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')))
}

const oneServer = ['--servers', '1', '--byzantine-servers', '0', '--replication', 'vanilla']
const small = ['--model', 'logistic', '--eval-every', '3', '--learning-rate', '0.5']

describe('phalanx simulate ≡ a one-server vanilla cluster', () => {
  it.each([
    // Worker momentum on, an average (whose float sums depend on the order of its inputs).
    [['--workers', '3', '--byzantine-workers', '0', '--rule', 'average', '--momentum', '0.9', '--seed', '3']],
    // The default rule (Multi-Krum) over more workers, no momentum.
    [['--workers', '5', '--byzantine-workers', '0', '--momentum', '0', '--seed', '5']],
  ])('%j: the same final model, bit for bit', async (config) => {
    const args = [...oneServer, ...small, ...config, '--rounds', '6']
    const reference = await run('simulate', args)
    const cluster = await run('local', args)
    expect(cluster.backend).toBe(reference.backend)
    expect(reference.rounds).toBe(6)
    expect(cluster.rounds).toBe(6)
    expect(reference.finalModelSha256).toMatch(/^[0-9a-f]{64}$/)
    expect(cluster.finalModelSha256).toBe(reference.finalModelSha256)
    expect(cluster.honestAccuracy).toBe(reference.honestAccuracy)
    // One honest server has no other to drift from: not measured in either, rather than a 0.
    expect(reference.maxHonestDrift).toBeNull()
    expect(cluster.maxHonestDrift).toBeNull()
  })

  it('tells models apart: one round fewer is another model', async () => {
    const args = [...oneServer, ...small, '--workers', '3', '--byzantine-workers', '0', '--seed', '3']
    const six = await run('simulate', [...args, '--rounds', '6'])
    const five = await run('simulate', [...args, '--rounds', '5'])
    expect(five.finalModelSha256).toMatch(/^[0-9a-f]{64}$/)
    expect(five.finalModelSha256).not.toBe(six.finalModelSha256)
  })
})
