/**
 * @packageDocumentation
 * `@phalanx/lab`: what a researcher runs on one machine — a whole cluster as local processes
 * (`runLocalCluster`), the same configuration in one process without a network
 * (`runSimulation`, on the reference trainer `train`), a grid of runs compared in one table
 * (`runExperiment`), and the reports a run leaves behind. A node process never imports it:
 * `@phalanx/node` is what a container runs.
 *
 * @example
 * ```ts
 * import { resolveConfig } from '@phalanx/node'
 * import { runSimulation, writeRunReport } from '@phalanx/lab'
 * const config = resolveConfig({ rule: 'krum', workers: 12, rounds: 50 })
 * const { summary, rows } = await runSimulation(config, { log: logger })
 * writeRunReport('out/krum', 'krum, simulated', summary, rows)
 * ```
 */

export { type BaselineKind, baselineConfig, baselineKinds, runBaseline } from './baseline.js'
export { type ChartEvent, type ChartOptions, type ChartSeries, niceTicks, svgLineChart } from './chart.js'
export {
  ExperimentCellError,
  LocalClusterError,
  labErrorCodes,
  MatrixError,
  OutDirError,
  SimulateUnsupportedError,
} from './errors.js'
export {
  type CellResult,
  type CellRunner,
  type CellStatus,
  cellId,
  type ExperimentCell,
  type ExperimentInit,
  type ExperimentMatrix,
  type ExperimentMode,
  type ExperimentResult,
  expandMatrix,
  experimentHtml,
  experimentModes,
  parseMatrix,
  parseRoundsCsv,
  readMatrix,
  resultsCsv,
  resultsMarkdown,
  runExperiment,
  storedCellResult,
  tableRow,
} from './experiment.js'
export { type ChartedCell, experimentCharts, meanAndSpread } from './experiment-charts.js'
export { configEnv, type LocalClusterInit, type LocalClusterResult, runLocalCluster } from './local.js'
export { createNodeRecorder, type NodeRecorder, runNodeWithOutputs } from './node-run.js'
export {
  maxMeasured,
  outputsMarkers,
  outputsTables,
  type Provenance,
  provenanceSchema,
  type RoundRow,
  type RunMode,
  type RunSummary,
  roundColumns,
  roundRowSchema,
  runModes,
  runSummarySchema,
} from './outputs.js'
export { gitProvenance, runProvenance } from './provenance.js'
export { checkOutDir, roundsCsv } from './report.js'
export {
  attackEvents,
  type BaselineRun,
  byzantineNodes,
  type ReportDetail,
  type RunEvent,
  reportHtml,
  type ServerSeries,
} from './report-html.js'
export { writeRunReport } from './run-report.js'
export { runSimulation, type SimulationResult } from './simulate.js'
export type {
  AggregationRule,
  ByzantineBehaviour,
  LearningRateSchedule,
  TrainInit,
  TrainingRound,
  TrainResult,
} from './trainer.js'
export { learningRateAt, train, trainDefaults } from './trainer.js'
