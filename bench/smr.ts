/**
 * `npm run bench -- smr [--mlp]`: the median cluster against the SMR baseline on the same
 * workload, under no fault, one crashed server and one Byzantine server. Both run through
 * `runLocalCluster` (one OS process per node, libp2p on loopback); the SMR gradient log lives on
 * a 3-node JetStream cluster (R3, Raft) that this program starts on loopback ports and stops.
 *
 * Workload (both modes): N = 4 servers (F = 1 slot: server-0), n = 6 workers (f = 1 slot, honest
 * here), Multi-Krum, MNIST. Default model: logistic regression, 40 rounds, η = 0.5, no momentum,
 * target 80% test accuracy (what ~25 rounds reach). `--mlp`: the MLP, 60 rounds, η = 1, momentum
 * 0.9, target 90%.
 *
 * Faults, all on server-0:
 * - crash: SIGKILL of its process once it reports round 2;
 * - Byzantine: `reversed` (it publishes −θ). Median mode filters it with the model median; in SMR
 *   mode the replica's state is right but the workers reading from it compute gradients at −θ.
 *
 * Round time = median over rounds ≥ 3 of the round time honest servers report; rounds/s its
 * inverse; time to target = sum of round times up to the first evaluation at or above the target.
 * Prints a markdown table and writes bench/results/smr.json.
 */
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { type RoundRow, runLocalCluster } from '@phalanx/lab'
import { type ClusterConfigInput, type NodeReport, resolveConfig } from '@phalanx/node'
import pino from 'pino'
import { startNatsCluster, waitForJetStream } from '../test/support/nats.js'
import { writeResults } from './results.js'

const mlp = process.argv.includes('--mlp')
// `--scenario=crash` (or `none`, `byzantine`): only the cells whose scenario names that word.
const only = process.argv.find((arg) => arg.startsWith('--scenario='))?.slice('--scenario='.length)
const TARGET = mlp ? 0.9 : 0.8
const SKIP = 3
const CRASH_AT_ROUND = 2
const workload: ClusterConfigInput = {
  servers: 4,
  byzantineServers: 1,
  workers: 6,
  byzantineWorkers: 1,
  workerAttack: 'none',
  rule: 'multiKrum',
  dataset: 'mnist',
  seed: 3,
  evalEvery: 2,
  // Short enough that a stalled cluster fails the cell in 4 × 10 s, long enough for a round.
  quorumTimeoutMs: 10_000,
  ...(mlp
    ? { model: 'mlp', rounds: 60, learningRate: 1, momentum: 0.9 }
    : { model: 'logistic', rounds: 40, learningRate: 0.5, momentum: 0 }),
}
const allScenarios = ['no fault', 'crashed server', 'Byzantine server (reversed)'] as const
type Scenario = (typeof allScenarios)[number]
const keywords: Record<Scenario, string> = {
  'no fault': 'none',
  'crashed server': 'crash',
  'Byzantine server (reversed)': 'byzantine',
}
const scenarios = allScenarios.filter((scenario) => only === undefined || keywords[scenario] === only)
const modes = ['median', 'smr'] as const

const cli = fileURLToPath(new URL('../packages/cli/dist/bin.js', import.meta.url))
const log = pino({ level: 'warn' }, pino.destination(2))
const abort = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => abort.abort(new Error(`got ${signal}`)))
}

const median = (values: number[]) => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

interface Cell {
  mode: (typeof modes)[number]
  scenario: Scenario
  outcome: 'reached target' | 'below target' | 'diverged' | 'stalled'
  rounds: number
  medianRoundSeconds: number | null
  roundsPerSecond: number | null
  reachedAtRound: number | null
  secondsToTarget: number | null
  finalAccuracy: number | null
  bestAccuracy: number | null
  wallSeconds: number
  error?: string
}

async function measure(
  mode: Cell['mode'],
  scenario: Scenario,
  smrNatsUrl: string,
  index: number,
): Promise<Cell> {
  const config = resolveConfig({
    ...workload,
    replication: mode,
    serverAttack: scenario.startsWith('Byzantine') ? 'reversed' : 'none',
    // A fresh stream per cell: SMR replicas replay their log from its first entry.
    cluster: `bench-smr-${index}`,
    // Node logs of every cell stay in bench/results/smr-logs/<cluster>/logs for a post-mortem.
    out: fileURLToPath(new URL(`./results/smr-logs/bench-smr-${index}/`, import.meta.url)),
    ...(mode === 'smr' ? { smrNatsUrl } : {}),
  } as Record<string, unknown>)
  process.stderr.write(`${mode} / ${scenario}: ${config.rounds} rounds … `)
  const started = performance.now()
  let killed = false
  const onNodeReport = (nodeId: string, message: NodeReport, pid: number | undefined) => {
    if (scenario !== 'crashed server' || killed || nodeId !== 'server-0' || pid === undefined) return
    if (message.type === 'round' && message.round >= CRASH_AT_ROUND) {
      killed = true
      process.kill(pid, 'SIGKILL')
    }
  }
  let rows: RoundRow[]
  let finalAccuracy: number | null
  try {
    const result = await runLocalCluster({
      config,
      log,
      command: [process.execPath, cli],
      onNodeReport,
      signal: abort.signal,
    })
    rows = result.rows
    finalAccuracy = result.summary.honestAccuracy
  } catch (error) {
    if (abort.signal.aborted) throw error
    const cell: Cell = {
      mode,
      scenario,
      outcome: 'stalled',
      rounds: 0,
      medianRoundSeconds: null,
      roundsPerSecond: null,
      reachedAtRound: null,
      secondsToTarget: null,
      finalAccuracy: null,
      bestAccuracy: null,
      wallSeconds: (performance.now() - started) / 1000,
      error: (error as Error).message,
    }
    process.stderr.write(`stalled: ${cell.error}\n`)
    return cell
  }
  const times = rows
    .filter((row) => row.round >= SKIP)
    .map((row) => row.roundSeconds)
    .filter((s): s is number => s !== undefined)
  const medianRoundSeconds = median(times)
  const evaluated = rows.filter((row) => row.honestAccuracy !== undefined)
  const reached = evaluated.find((row) => row.honestAccuracy! >= TARGET)
  const best = Math.max(...evaluated.map((row) => row.honestAccuracy!))
  const secondsToTarget =
    reached === undefined
      ? null
      : rows
          .filter((row) => row.round <= reached.round)
          .reduce((sum, row) => sum + (row.roundSeconds ?? 0), 0)
  // Chance on ten digits is 10%: a model that ends near it (or NaN) has been destroyed.
  const diverged = finalAccuracy === null || !Number.isFinite(finalAccuracy) || finalAccuracy < 0.2
  const cell: Cell = {
    mode,
    scenario,
    outcome: reached !== undefined ? 'reached target' : diverged ? 'diverged' : 'below target',
    rounds: rows.length,
    medianRoundSeconds,
    roundsPerSecond: 1 / medianRoundSeconds,
    reachedAtRound: reached?.round ?? null,
    secondsToTarget,
    finalAccuracy,
    bestAccuracy: Number.isFinite(best) ? best : null,
    wallSeconds: (performance.now() - started) / 1000,
  }
  process.stderr.write(
    `${cell.outcome}, median round ${(medianRoundSeconds * 1000).toFixed(0)} ms, final ${pct(finalAccuracy)}\n`,
  )
  return cell
}

const pct = (v: number | null) => (v === null ? '—' : `${(v * 100).toFixed(1)}%`)
const fixed = (v: number | null, digits: number) =>
  v === null || !Number.isFinite(v) ? '—' : v.toFixed(digits)

const loadAtStart = loadavg()[0] ?? 0
const nats = await startNatsCluster({ size: 3 })
const cells: Cell[] = []
try {
  await waitForJetStream(nats.urls)
  for (const scenario of scenarios) {
    for (const mode of modes) {
      const index = allScenarios.indexOf(scenario) * modes.length + modes.indexOf(mode)
      cells.push(await measure(mode, scenario, nats.urls.join(','), index))
    }
  }
} finally {
  await nats.dispose()
}

const machine = `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load ${loadAtStart.toFixed(1)} → ${(loadavg()[0] ?? 0).toFixed(1)} (shared)`
const lines = [
  `Workload: N=4 (F=1 slot: server-0), n=6 (f=1 slot, honest), Multi-Krum, ${workload.model}/MNIST, ${workload.rounds} rounds, η=${workload.learningRate}, momentum ${workload.momentum}; target ${TARGET * 100}%.`,
  `Machine: ${machine}. Date: ${new Date().toISOString().slice(0, 10)}.`,
  '',
  '| scenario | mode | outcome | median round (ms) | rounds/s | target at round | s to target | final acc. | best acc. | wall (s) |',
  '|---|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ...cells.map(
    (c) =>
      `| ${c.scenario} | ${c.mode} | ${c.outcome} | ${fixed(c.medianRoundSeconds === null ? null : c.medianRoundSeconds * 1000, 0)} | ${fixed(c.roundsPerSecond, 2)} | ${c.reachedAtRound ?? '—'} | ${fixed(c.secondsToTarget, 1)} | ${pct(c.finalAccuracy)} | ${pct(c.bestAccuracy)} | ${c.wallSeconds.toFixed(0)} |`,
  ),
]
console.log(lines.join('\n'))
writeResults(`smr${mlp ? '-mlp' : ''}${only ? `-${only}` : ''}`, { workload, target: TARGET, machine, cells })
