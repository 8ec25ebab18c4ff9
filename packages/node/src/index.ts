/**
 * @packageDocumentation
 * `@phalanx/node`: what a node process runs — the parameter-server and worker roles of a
 * Phalanx cluster, the round protocol they run and the one configuration schema. What a
 * researcher runs on one machine (local cluster, simulation, experiment grid, reports) is
 * `@phalanx/lab`.
 *
 * @example
 * ```ts
 * import { resolveConfig, configFromEnv } from '@phalanx/node'
 * const config = resolveConfig({ rule: 'krum', workers: 12 }, configFromEnv(process.env))
 * ```
 */

/** The names the config takes from the registries below, re-exported for the CLI and tests. */
export { preAggregatorNames, ruleNames } from '@phalanx/aggregation'
export { datasetNames, modelNames } from '@phalanx/model'
/** Checks a libp2p peer signature: what `phalanx watch` verifies signed telemetry with. */
export { verifyPeerSignature } from '@phalanx/net'
export { type BuildInfo, buildInfo, sourceCommit } from './build-info.js'
export {
  attackStrengthFields,
  type BehaviourContext,
  type ByzantineBehaviour,
  type ByzantineSettings,
  hiddenShiftSigns,
  type ServerBehaviourEntry,
  type ServerBehaviourName,
  serverBehaviourNames,
  serverBehaviours,
  type WorkerBehaviourEntry,
  type WorkerBehaviourName,
  workerBehaviourNames,
  workerBehaviours,
} from './byzantine.js'
export { type ChaosActions, type ChaosActionsInit, createChaosActions } from './chaos-actions.js'
export {
  configHash,
  createNodeCheckpoints,
  type NodeCheckpoints,
  type NodeCheckpointsInit,
} from './checkpointing.js'
export { checkClusterBounds } from './cluster-bounds.js'
export type { ClusterConfig, ClusterConfigInput, FieldHelp } from './config.js'
export {
  backendChoices,
  clusterConfigSchema,
  configBounds,
  configFieldHelp,
  configFromEnv,
  configFromFile,
  configSourceOf,
  envName,
  flagName,
  listFields,
  resolveConfig,
  serverAttackNames,
  withConfigSource,
  workerAttackNames,
} from './config.js'
export { allowedText, closestName, didYouMean, type FieldShape } from './config-words.js'
export {
  attachControlPlane,
  type ControlPlane,
  type ControlPlaneInit,
  configuredMembers,
} from './control-plane.js'
export {
  ChaosActionError,
  ClusterBoundError,
  ConfigError,
  type NodeErrorCode,
  nodeErrorCodes,
  ServerStateError,
  type ServerStateErrorCode,
  SmrLogError,
  serverStateErrorCodes,
} from './errors.js'
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
export { MemoryBus } from './memory-transport.js'
export { modelSha256 } from './model-hash.js'
export { netTransport } from './net-transport.js'
export { type NodeProcessInit, type NodeReport, roleOf, runNodeProcess } from './node-process.js'
export type {
  RoundEvent,
  ServerBehaviour,
  ServerLoopInit,
  WorkerBehaviour,
  WorkerLoopInit,
} from './protocol.js'
export {
  aggregationOrder,
  collectPatiently,
  honestServer,
  honestWorker,
  runServer,
  runWorker,
} from './protocol.js'
export type {
  ClusterShape,
  JoinContext,
  NodeStart,
  ReplicationMode,
  ServerRun,
  WorkerRun,
} from './replication/mode.js'
export {
  type ReplicationModeName,
  replicationModeDescriptions,
  replicationModeNames,
} from './replication/names.js'
export { replicationMode, replicationModeRegistry } from './replication/registry.js'
export {
  createAggregator,
  gradientQuorum,
  isByzantine,
  modelMedian,
  nodeIndex,
  serverBehaviour,
  serverQuorum,
  simulatedBehaviour,
  vectorAttack,
  workerBehaviour,
  workerGradient,
} from './roles.js'
export { medianOf } from './round-record.js'
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
