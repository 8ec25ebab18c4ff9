/**
 * @packageDocumentation
 * `@phalanx/node`: the parameter-server and worker roles of a Phalanx cluster, the round
 * protocol they run, the one configuration schema, and the reports a run leaves behind.
 *
 * @example
 * ```ts
 * import { resolveConfig, configFromEnv } from '@phalanx/node'
 * const config = resolveConfig({ rule: 'krum', workers: 12 }, configFromEnv(process.env))
 * ```
 */

/** Checks a libp2p peer signature: what `phalanx watch` verifies signed telemetry with. */
export { verifyPeerSignature } from '@phalanx/net'
export { type ChaosActions, type ChaosActionsInit, createChaosActions } from './chaos-actions.js'
export {
  configHash,
  createNodeCheckpoints,
  type NodeCheckpoints,
  type NodeCheckpointsInit,
} from './checkpointing.js'
export type { ClusterConfig, ClusterConfigInput } from './config.js'
export {
  attackStrengthFields,
  backendNames,
  clusterConfigSchema,
  configBounds,
  configFromEnv,
  configFromFile,
  datasetNames,
  envName,
  flagName,
  hiddenShiftSigns,
  listFields,
  modelNames,
  preAggregatorNames,
  replicationModes,
  resolveConfig,
  ruleNames,
  serverAttackNames,
  withConfigSource,
  workerAttackNames,
} from './config.js'
export {
  attachControlPlane,
  type ControlPlane,
  type ControlPlaneInit,
  type RoundNodeReport,
} from './control-plane.js'
export {
  ChaosActionError,
  ClusterBoundError,
  ConfigError,
  ExperimentCellError,
  LocalClusterError,
  MatrixError,
  type NodeErrorCode,
  nodeErrorCodes,
  ServerStateError,
  type ServerStateErrorCode,
  SmrLogError,
  serverStateErrorCodes,
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
export {
  createHealth,
  HEALTH_DEFAULTS,
  type HealthLimits,
  type HealthState,
  healthLimits,
  liveness,
  type NodeHealth,
  readiness,
  withHeartbeat,
} from './health.js'
export { configEnv, type LocalClusterInit, type LocalClusterResult, runLocalCluster } from './local.js'
export { MemoryBus } from './memory-transport.js'
export { netTransport } from './net-transport.js'
export { type NodeProcessInit, type NodeReport, nodeIndex, roleOf, runNodeProcess } from './node-process.js'
export type {
  RoundEvent,
  ServerBehaviour,
  ServerLoopInit,
  WorkerBehaviour,
  WorkerLoopInit,
} from './protocol.js'
export { collectPatiently, honestServer, honestWorker, runServer, runWorker } from './protocol.js'
export type { RoundRecord, RunSummary } from './report.js'
export { reportHtml, roundsCsv, svgLineChart, writeRunReport } from './report.js'
export {
  checkClusterBounds,
  createAggregator,
  gradientQuorum,
  isByzantine,
  modelMedian,
  serverBehaviour,
  serverQuorum,
  vectorAttack,
  workerBehaviour,
  workerGradient,
} from './roles.js'
export { runSimulation, type SimulationResult } from './simulate.js'
export {
  createSmrStateMachine,
  resetSmrLog,
  runSmrServer,
  runSmrWorker,
  type SmrGradient,
  type SmrRoundApplied,
  type SmrSkipReason,
  type SmrStateMachine,
  type SmrStateMachineInit,
  smrFailoverMs,
  smrLogName,
  smrReplicaOrder,
  smrWorkerIds,
} from './smr.js'
export {
  type CollectOptions,
  QuorumTimeoutError,
  type RoundTransport,
  type RoundVector,
  type VectorKind,
} from './transport.js'
