/**
 * The single-process run of a config: the same rule, attacks, model and data as the cluster, all
 * workers and all N servers (F of them Byzantine, with the config's `serverAttack`) in one
 * process, through the reference trainer (`trainer.ts`, `server-replicas.ts`). With one honest
 * server (`replication: vanilla`) it is the reference the cluster is compared with bit for bit;
 * with N servers, the median replication without a network, deterministic for a seed.
 */
import { createModel, initBackend, loadDataset } from '@phalanx/model'
import {
  type ByzantineBehaviour,
  type ClusterConfig,
  checkClusterBounds,
  createAggregator,
  gradientQuorum,
  modelMedian,
  modelSha256,
  type ReplicationModeName,
  serverBehaviour,
  simulatedBehaviour,
} from '@phalanx/node'
import type { Logger } from 'pino'
import { SimulateUnsupportedError } from './errors.js'
import { maxMeasured, type RoundRow, type RunSummary } from './outputs.js'
import { runProvenance } from './provenance.js'
import type { ReportDetail, ServerSeries } from './report-html.js'
import type { ServerReplicasInit } from './server-replicas.js'
import { train } from './trainer.js'

function byzantineBehaviour(config: ClusterConfig): ByzantineBehaviour | undefined {
  // Some attacks are undefined without attackers (ALIE's z needs 0 < s < n).
  if (config.byzantineWorkers === 0) return undefined
  return simulatedBehaviour(config, config.seed)
}

/** What each replication mode is in one process: whether servers step from the median. */
const simulatedModes: Partial<Record<ReplicationModeName, { antiDrift: boolean }>> = {
  median: { antiDrift: true },
  'no-anti-drift': { antiDrift: false },
  vanilla: { antiDrift: false },
}

function serverReplicas(config: ClusterConfig): ServerReplicasInit {
  const mode = simulatedModes[config.replication]
  if (mode === undefined) {
    throw new SimulateUnsupportedError({
      field: 'replication',
      value: config.replication,
      allowed: Object.keys(simulatedModes),
      why: 'the SMR baseline orders gradients through a replicated JetStream log, which needs the cluster',
    })
  }
  return {
    count: config.servers,
    byzantine: config.byzantineServers,
    // Server i's seed as the cluster derives it (`serverBehaviour`); every Byzantine server here
    // shares server-0's, which only the seeded attacks read.
    behaviour: serverBehaviour(config, 0),
    antiDrift: mode.antiDrift,
    exchangeEvery: config.exchangeEvery,
    gradientQuorum: gradientQuorum(config),
    median: modelMedian,
    seed: config.seed,
  }
}

export interface SimulationResult {
  summary: RunSummary
  rows: RoundRow[]
  /** For the report: each honest server's accuracy and loss per round (server F on). */
  detail: ReportDetail
}

export async function runSimulation(
  config: ClusterConfig,
  init: {
    log: Logger
    onRound?: (row: RoundRow) => void
    /** Stops before the next round once aborted; the result is that of the rounds done (`interrupted`). */
    signal?: AbortSignal
  },
): Promise<SimulationResult> {
  // Before any work: a bound or a mode this run cannot honour fails here, as the cluster's does.
  checkClusterBounds(config)
  const servers = serverReplicas(config)
  const startedAt = new Date()
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
  // Each honest server's evaluations (server F first), for the report's per-server lines.
  const honestCount = config.servers - config.byzantineServers
  const serverPoints: ServerSeries['points'][number][][] = Array.from({ length: honestCount }, () => [])
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
    servers,
    rounds: config.rounds,
    batchSize: config.batchSize,
    learningRate: config.learningRate,
    momentum: config.momentum,
    seed: config.seed,
    evaluateEvery: config.evalEvery,
    logger: init.log,
    ...(init.signal === undefined ? {} : { signal: init.signal }),
    onRound: (report) => {
      const row: RoundRow = {
        round: report.round,
        honestAccuracy: report.test?.accuracy,
        honestLoss: report.test?.loss,
        // Unmeasured (one honest server) stays empty rather than a 0 that reads as measured.
        maxHonestDrift: report.maxHonestDrift,
        // One process exchanges no messages: nothing is rejected, and nothing was measured.
        rejectedMessages: undefined,
        roundSeconds: report.roundDurationMs / 1000,
      }
      rows.push(row)
      report.testByServer?.forEach(({ accuracy, loss }, i) => {
        serverPoints[i]?.push({ round: report.round, accuracy, loss })
      })
      init.onRound?.(row)
    },
  })
  return {
    rows,
    detail: {
      servers: serverPoints.map((points, i) => ({
        nodeId: `server-${config.byzantineServers + i}`,
        byzantine: false,
        points,
      })),
    },
    summary: {
      mode: 'single-process',
      provenance: runProvenance({ seed: config.seed, startedAt }),
      honestAccuracy: result.final.accuracy ?? null,
      honestLoss: result.final.loss,
      ...finalHashes(config, result.honestParameters ?? [result.parameters]),
      rounds: result.rounds,
      wallSeconds: (performance.now() - started) / 1000,
      maxHonestDrift: maxMeasured(rows.map((row) => row.maxHonestDrift)),
      rejectedMessages: {},
      backend: backend.name,
      // Present only when training blew up: the rounds count alone would hide why it stopped.
      ...(result.divergedAtRound === undefined ? {} : { divergedAtRound: result.divergedAtRound }),
      // Present only when a signal stopped it: the summary is that of the rounds done.
      ...(result.interrupted ? { interrupted: 'aborted' as const } : {}),
      config: { ...config },
    },
  }
}

/** As the cluster's summary: each honest server's final model hash by node id, and the one they share (null if they differ). */
function finalHashes(
  config: ClusterConfig,
  honest: readonly Float32Array[],
): { finalModelSha256: string | null; finalModelSha256ByServer: Record<string, string> } {
  const byServer = Object.fromEntries(
    honest.map((parameters, i) => [`server-${config.byzantineServers + i}`, modelSha256(parameters)]),
  )
  const distinct = new Set(Object.values(byServer))
  return {
    finalModelSha256: distinct.size === 1 ? [...distinct][0]! : null,
    finalModelSha256ByServer: byServer,
  }
}
