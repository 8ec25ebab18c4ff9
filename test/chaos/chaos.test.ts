/**
 * The chaos suite: every scenario of scenarios.ts, in order, on one real cluster per seed
 * (4 servers F=1, 6 workers f=1 plus 3 that join late, Krum, logistic regression on MNIST, one
 * process per node, libp2p on loopback, its own nats-server). Each scenario must meet its
 * criterion; the per-scenario table is printed at the end and, with an output directory (the long
 * profile, or PHALANX_CHAOS_OUT), written as chaos.json and chaos.md.
 * Short profile under `npm test`; `npm run chaos` runs the long one. Needs the built CLI.
 */
import { cpus, loadavg } from 'node:os'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ChaosCluster } from './cluster.js'
import { chaosProfile } from './profile.js'
import { renderMarkdown, type ScenarioRow, writeChaosReport } from './report.js'
import { CLUSTER_SHAPE, PROXIED_LINK, type ScenarioContext, scenarios, seededRandom } from './scenarios.js'

const profile = chaosProfile()
const rows: ScenarioRow[] = []
const startedAt = new Date().toISOString()

const nodeEnv = {
  PHALANX_MODEL: 'logistic',
  PHALANX_DATASET: 'mnist',
  PHALANX_RULE: 'krum',
  // The run ends when the suite kills it, not at a round count.
  PHALANX_ROUNDS: '1000000',
  PHALANX_EVAL_EVERY: '5',
  // Counted Byzantine (so quorums are N−F and n−f), honest until `corrupt` switches them.
  PHALANX_BYZANTINE_NODE_IDS: 'server-0,worker-0',
  PHALANX_SERVER_ATTACK: 'none',
  PHALANX_WORKER_ATTACK: 'none',
  // A stall is logged after this long (the over-F scenarios await that line); it is also how long
  // a (re)starting node waits for N−F models to catch up from, so not too short on a busy machine.
  PHALANX_QUORUM_TIMEOUT_MS: '5000',
}

describe.each(profile.seeds)(`chaos suite (${profile.name} profile), seed %i`, (seed) => {
  let cluster: ChaosCluster | undefined
  let failed = false
  const ctx = { profile, random: seededRandom(seed), yardstick: undefined } as Omit<
    ScenarioContext,
    'cluster'
  >

  beforeAll(async () => {
    cluster = await ChaosCluster.start({
      cluster: `chaos-${seed}`,
      ...CLUSTER_SHAPE,
      seed,
      env: nodeEnv,
      proxied: PROXIED_LINK,
    })
  }, 300_000)

  afterAll(async () => {
    // A failure's message names the node log directory: it must still be there to be read.
    const keep = failed || profile.keepLogs
    if (keep && cluster !== undefined) process.stdout.write(`node logs kept in ${cluster.work}\n`)
    await cluster?.dispose({ keepLogs: keep })
  }, 120_000)

  it.each(scenarios(profile).map((scenario) => [scenario.name, scenario] as const))(
    '%s',
    async (_name, scenario) => {
      if (cluster === undefined) throw new Error('cluster did not start')
      const scenarioCtx: ScenarioContext = Object.assign(ctx, { cluster })
      // Set first, so a scenario that throws counts as failed too.
      const failedBefore = failed
      failed = true
      const result = await scenario.run(scenarioCtx)
      const passed = result.checks.every((check) => check.ok)
      failed = failedBefore || !passed
      rows.push({
        seed,
        scenario: scenario.name,
        criterion: scenario.criterion,
        passed,
        ...result.measurement,
        checks: result.checks,
        notes: result.notes,
      })
      expect(result.checks.filter((check) => !check.ok)).toEqual([])
    },
    profile.name === 'long' ? 900_000 : 300_000,
  )
})

afterAll(() => {
  if (rows.length === 0) return
  const table = renderMarkdown(rows)
  // The table is this suite's product: shown with the test output, not logged.
  process.stdout.write(`\nchaos results (${profile.name} profile)\n${table}\n`)
  if (profile.out !== undefined) {
    writeChaosReport(profile.out, rows, {
      profile: profile.name,
      startedAt,
      finishedAt: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
      shape: CLUSTER_SHAPE,
    })
  }
})
