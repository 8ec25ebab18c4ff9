/**
 * `npm run bench -- model`: gradients per second of each @phalanx/model model on each
 * TensorFlow.js backend available here (batch 32 and 128), with PyTorch (one thread) timed in
 * the same run as the anchor, and the time the single-process trainer takes to reach 95% test
 * accuracy on the embedded MNIST with the MLP and plain averaging of 10 workers.
 * Prints a markdown table and writes bench/results/model.json.
 */
import { spawnSync } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import { rules } from '@phalanx/aggregation'
import { train } from '@phalanx/lab'
import {
  type BackendInfo,
  type BackendName,
  backendNames,
  createBatchSampler,
  createModel,
  type Dataset,
  initBackend,
  loadEmbeddedMnist,
  syntheticLinearRegression,
} from '@phalanx/model'
import { writeResults } from './results.js'

const loadAtStart = loadavg()[0] ?? 0
const modelNames = ['logistic', 'mlp', 'cnn', 'linear'] as const
const batchSizes = [32, 128] as const
// Each cell runs until this much time has passed (at least 5 calls, at most 60): enough for a
// stable median on a machine shared with other jobs, short enough for the slow CPU backend.
const CELL_BUDGET_MS = 1_500

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const { train: mnistTrain, test: mnistTest } = await loadEmbeddedMnist()
const synthetic = syntheticLinearRegression({ dimension: 100, trainSize: 512, seed: 1 })

function batchFor(model: string, size: number): Dataset {
  const source = model === 'linear' ? synthetic.train : mnistTrain
  return createBatchSampler(source, { batchSize: size, seed: 7 }).next()
}

interface Cell {
  backend: BackendName
  model: string
  batch: number
  calls: number
  medianMs: number
  gradientsPerSecond: number
}

const cells: Cell[] = []
const backends: Record<string, { available: boolean; info?: BackendInfo; reason?: string }> = {}
for (const backend of backendNames) {
  try {
    backends[backend] = { available: true, info: await initBackend({ backend }) }
  } catch (error) {
    backends[backend] = { available: false, reason: error instanceof Error ? error.message : String(error) }
  }
}
const available = backendNames.filter((b) => backends[b]?.available)

// PyTorch anchor, same architectures, one thread (Debian's python3 with torch, if present),
// timed right after the tfjs backends on the same cell so all of them see the same load.
const torchScript = fileURLToPath(new URL('./model_torch_reference.py', import.meta.url))
let torchVersion: string | undefined
const torchMs: Record<string, Record<string, number>> = {}
function timeTorch(name: string, size: number): number | undefined {
  const run = spawnSync('/usr/bin/python3', [torchScript, name, String(size)], { encoding: 'utf8' })
  if (run.status !== 0) return undefined
  const parsed = JSON.parse(run.stdout) as { torch: string; models: Record<string, Record<string, number>> }
  torchVersion = parsed.torch
  return parsed.models[name]?.[String(size)]
}

for (const name of modelNames) {
  const model = createModel(name, { dimension: 100 })
  const params = model.parameters()
  for (const size of batchSizes) {
    const batch = batchFor(name, size)
    for (const backend of available) {
      await initBackend({ backend })
      model.gradient(params, batch)
      model.gradient(params, batch)
      const samples: number[] = []
      const start = performance.now()
      while (samples.length < 60 && (samples.length < 5 || performance.now() - start < CELL_BUDGET_MS)) {
        const t = performance.now()
        model.gradient(params, batch)
        samples.push(performance.now() - t)
      }
      const medianMs = median(samples)
      cells.push({
        backend,
        model: name,
        batch: size,
        calls: samples.length,
        medianMs,
        gradientsPerSecond: 1_000 / medianMs,
      })
    }
    const anchor = timeTorch(name, size)
    if (anchor !== undefined) torchMs[name] = { ...torchMs[name], [String(size)]: anchor }
  }
}
const torch = torchVersion === undefined ? undefined : { torch: torchVersion, threads: 1, models: torchMs }

// Time to 95% on the fastest available backend (the order of backendNames), as the tests run it.
const trainBackend = backendNames.find((name) => backends[name]?.available)!
await initBackend({ backend: trainBackend })
const roundTimes: number[] = []
const trainStart = performance.now()
const result = await train({
  model: createModel('mlp', { seed: 1 }),
  train: mnistTrain,
  test: mnistTest,
  workers: 10,
  rule: rules.average.aggregate,
  ruleName: 'average',
  rounds: 1_500,
  batchSize: 32,
  learningRate: 1,
  evaluateEvery: 10,
  targetAccuracy: 0.95,
  seed: 1,
  onRound: (report) => {
    roundTimes.push(report.roundDurationMs)
  },
})
const trainSeconds = (performance.now() - trainStart) / 1_000

const cpuModel = cpus()[0]?.model ?? 'unknown'
// The machine is shared: the load average says how much the numbers below were contended.
const machine = {
  nproc: cpus().length,
  cpu: cpuModel,
  node: process.version,
  platform: `${process.platform}-${process.arch}`,
  loadAverage1m: { start: loadAtStart, end: loadavg()[0] ?? 0 },
}
const timeTo95 = {
  backend: trainBackend,
  reached: result.reachedTargetAtRound !== undefined,
  rounds: result.rounds,
  gradients: result.rounds * 10,
  seconds: trainSeconds,
  medianRoundMs: median(roundTimes),
  finalAccuracy: result.final.accuracy,
  config:
    'mlp 784-128-10, 10 workers, average, batch 32 per worker, lr 1.0 constant, evaluate every 10 rounds, seed 1',
}

const fmt = (v: number | undefined, digits?: number) =>
  v === undefined ? '—' : v.toFixed(digits ?? (v < 10 ? 1 : 0))
const header = [
  'model',
  'batch',
  ...available.map((b) => `${b} grad/s`),
  ...(torch ? ['torch 1-thread grad/s', `${available[0]}/torch`] : []),
]
console.log(
  `\nmachine: ${machine.nproc} × ${machine.cpu}, node ${machine.node}, load average ${machine.loadAverage1m.start.toFixed(1)} → ${machine.loadAverage1m.end.toFixed(1)}`,
)
for (const b of backendNames) {
  const entry = backends[b]!
  console.log(
    entry.available
      ? `${b}: available (simd ${entry.info!.simd}, threads ${entry.info!.threads})`
      : `${b}: unavailable — ${entry.reason?.split('\n')[0]}`,
  )
}
console.log(`\n| ${header.join(' | ')} |\n|${header.map(() => ' --- ').join('|')}|`)
for (const name of modelNames) {
  for (const size of batchSizes) {
    const rates = available.map(
      (b) => cells.find((c) => c.backend === b && c.model === name && c.batch === size)?.gradientsPerSecond,
    )
    const torchMs = torch?.models[name]?.[String(size)]
    const torchRate = torchMs === undefined ? undefined : 1_000 / torchMs
    const row = [name, String(size), ...rates.map((r) => fmt(r))]
    if (torch) row.push(fmt(torchRate), torchRate && rates[0] ? `${(rates[0] / torchRate).toFixed(2)}×` : '—')
    console.log(`| ${row.join(' | ')} |`)
  }
}
console.log(
  `\ntime to 95% (MNIST, MLP, average of 10 workers, ${trainBackend}): ${timeTo95.reached ? 'reached' : 'NOT reached'} after ${timeTo95.rounds} rounds (${timeTo95.gradients} gradients) in ${timeTo95.seconds.toFixed(1)} s; median round ${timeTo95.medianRoundMs.toFixed(1)} ms; final accuracy ${fmt((timeTo95.finalAccuracy ?? 0) * 100, 2)}%`,
)

writeResults('model', {
  date: new Date().toISOString(),
  machine,
  backends,
  cells,
  torch: torch ?? null,
  timeTo95,
})
