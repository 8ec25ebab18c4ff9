/**
 * The single-process reference run of a config: the same rule, attack, model and data as the
 * cluster, but all workers in one process and one (honest) server, through the reference
 * trainer (`trainer.ts`). It is what the cluster is compared with, and a quick way to try a
 * rule against an attack.
 */
import { createModel, initBackend, loadDataset } from '@phalanx/model'
import {
  type ByzantineBehaviour,
  type ClusterConfig,
  createAggregator,
  modelSha256,
  simulatedBehaviour,
} from '@phalanx/node'
import type { Logger } from 'pino'
import type { RoundRow, RunSummary } from './report.js'
import { train } from './trainer.js'

function byzantineBehaviour(config: ClusterConfig): ByzantineBehaviour | undefined {
  // Some attacks are undefined without attackers (ALIE's z needs 0 < s < n).
  if (config.byzantineWorkers === 0) return undefined
  return simulatedBehaviour(config, config.seed)
}

export interface SimulationResult {
  summary: RunSummary
  rows: RoundRow[]
}

export async function runSimulation(
  config: ClusterConfig,
  init: { log: Logger; onRound?: (row: RoundRow) => void },
): Promise<SimulationResult> {
  const backend = await initBackend({ backend: config.backend, logger: init.log })
  const data = await loadDataset(config.dataset, {
    ...(config.datasetPath === undefined ? {} : { fashionMnistDir: config.datasetPath }),
    seed: config.seed,
    dimension: config.dimension,
  })
  const model = createModel(config.model, { seed: config.seed, dimension: config.dimension })
  const aggregate = createAggregator(config)
  const behaviour = byzantineBehaviour(config)
  const rows: RoundRow[] = []
  const started = performance.now()
  const result = await train({
    model,
    train: data.train,
    test: data.test,
    workers: config.workers,
    rule: (inputs) => aggregate(inputs),
    ruleName: config.rule,
    f: config.byzantineWorkers,
    ...(behaviour === undefined ? {} : { byzantine: { count: config.byzantineWorkers, behaviour } }),
    rounds: config.rounds,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    momentum: config.momentum,
    seed: config.seed,
    evaluateEvery: config.evalEvery,
    logger: init.log,
    onRound: (report) => {
      const row: RoundRow = {
        round: report.round,
        honestAccuracy: report.test?.accuracy,
        honestLoss: report.test?.loss,
        maxHonestDrift: 0,
        rejectedMessages: 0,
        roundSeconds: report.roundDurationMs / 1000,
      }
      rows.push(row)
      init.onRound?.(row)
    },
  })
  return {
    rows,
    summary: {
      honestAccuracy: result.final.accuracy ?? null,
      honestLoss: result.final.loss,
      finalModelSha256: modelSha256(result.parameters),
      rounds: result.rounds,
      wallSeconds: (performance.now() - started) / 1000,
      maxHonestDrift: 0,
      rejectedMessages: {},
      backend: backend.name,
      mode: 'single-process',
      // Present only when training blew up: the rounds count alone would hide why it stopped.
      ...(result.divergedAtRound === undefined ? {} : { divergedAtRound: result.divergedAtRound }),
      config: { ...config },
    },
  }
}
