/**
 * @phalanx/control — the NATS control plane: telemetry, membership, chaos commands, checkpoints,
 * a replicated log for the SMR baseline, and the operations endpoints. It imports no other
 * @phalanx package; what it needs from them (the coordinate-wise median) is passed in.
 * Nothing here makes training wait for NATS: the connection dials in the background, telemetry is
 * fire-and-forget with a bounded outage buffer, and the chaos listener subscribes when it can.
 *
 * @example
 * ```ts
 * import { pino } from 'pino'
 * import { Registry } from 'prom-client'
 * import {
 *   connectControl, createChaosListener, createMembershipStore, createMembershipView, createMetrics,
 *   createTelemetry, startOpsServer,
 * } from '@phalanx/control'
 *
 * const log = pino()
 * const registry = new Registry()
 * const metrics = createMetrics(registry)
 * await startOpsServer({ port: 9464, host: '0.0.0.0', registry, ready: () => round > 0 || 'no round yet' })
 * const conn = connectControl({ servers: process.env.PHALANX_NATS_URL!, cluster: 'demo', name: 's0', log, metrics: metrics.sink })
 * const telemetry = createTelemetry({ conn, nodeId: 's0', role: 'server', metrics })
 * createChaosListener({ conn, nodeId: 's0', enabled: false, onCommand: (command) => node.chaos(command) })
 * const view = createMembershipView({ members: configMembers, round: 0 })
 * const verified = createVerifiedMembers({ cluster: 'demo', servers: 4, configured: configMembers, operatorPublicKey })
 * const store = await createMembershipStore({ conn })
 * await store.watch(async (entry) => {
 *   const verdict = await verified.apply(entry) // refused records are counted, never applied
 *   if (verdict.ok && verdict.change) view.stage(verdict.change)
 * })
 * // at every round boundary:
 * const members = view.advanceTo(round)
 * telemetry.publish({ round, drift, quorumWaitSeconds, rejected: { wrong_dimension: 1 } }) // never blocks
 * ```
 */

export type { OpenBucketOptions } from './bucket-open.js'
export { BUCKET_OPEN_DEFAULTS, isBucketNotCreated, openCreatedBucket } from './bucket-open.js'
export type { ChaosListener, ChaosListenerInit, SendChaosInit } from './chaos.js'
export { createChaosListener, sendChaosCommand } from './chaos.js'
export type {
  AgreedCheckpoint,
  AgreementOptions,
  AgreementResult,
  CheckpointInfo,
  CheckpointInput,
  CheckpointStore,
  CheckpointStoreInit,
  ChooseAgreedInit,
  ExcludedCheckpoint,
  ExclusionReason,
  MedianFn,
} from './checkpoints.js'
export {
  checkpointObjectName,
  checkpointStatement,
  chooseAgreedCheckpoint,
  createCheckpointStore,
  decodeModel,
  encodeModel,
  sha256Hex,
} from './checkpoints.js'
export type {
  ConnectionState,
  ControlConnection,
  ControlConnectionInit,
  ControlMetricsSink,
  ParsedServers,
  PublishOutcome,
  RetryOptions,
} from './connection.js'
export {
  connectControl,
  connectedWithin,
  createLogOnce,
  parseNatsServers,
  retryDelayMs,
  untilConnected,
  withRetries,
} from './connection.js'
export {
  BucketNotCreatedError,
  ChaosCommandFailedError,
  ChaosDisabledError,
  ChaosNoResponderError,
  ChaosRefusedError,
  ChaosTimeoutError,
  CheckpointQuorumError,
  type ControlErrorCode,
  ControlRecordRejectedError,
  controlErrorCodes,
  InvalidCheckpointError,
  InvalidMemberError,
  InvalidPayloadError,
  InvalidSubjectTokenError,
  LogEntryCorruptError,
  MedianResultError,
  NatsCredentialsError,
  type NatsCredentialsErrorCode,
  NotConnectedError,
  natsCredentialsErrorCodes,
  OperatorKeyError,
  type OperatorKeyErrorCode,
  OpsServerListenError,
  operatorKeyErrorCodes,
  PayloadTooLargeError,
  RoundRegressionError,
} from './errors.js'
export type {
  EquivocationInput,
  EvidencePublisher,
  EvidencePublisherInit,
  EvidenceSigner,
  EvidenceStats,
  SignedMessageInput,
} from './evidence.js'
export { createEvidencePublisher, evidenceRecord, evidenceStatement } from './evidence.js'
export type { MemberVerdict, VerifiedMembers, VerifiedMembersInit } from './member-set.js'
export { createVerifiedMembers } from './member-set.js'
export type {
  MemberChange,
  MembershipBucket,
  MembershipEntry,
  MembershipStore,
  MembershipStoreInit,
  MembershipView,
  MembershipViewInit,
  MembersWatch,
} from './membership.js'
export {
  bucketOf,
  createMembershipStore,
  createMembershipView,
  recordPeerId,
  signAdmitRecord,
  signEvictRecord,
} from './membership.js'
export type { NatsAuthFiles, NatsAuthOptions, NatsTlsFiles } from './nats-auth.js'
export { loadNatsAuth } from './nats-auth.js'
export type {
  ControlAction,
  ControlActionKind,
  ControlRecord,
  ControlRecordVerdict,
  ControlRecordVerifier,
  ControlRecordVerifierInit,
  ControlRejectReason,
  OperatorKey,
  PeerSignatureVerifier,
  SignControlRecordInit,
  UnsignedControlRecord,
} from './operator.js'
export {
  CONTROL_RECORD_DEFAULTS,
  ControlActionSchema,
  ControlRecordSchema,
  canonicalJson,
  controlRecordStatement,
  controlRecordTarget,
  controlRejectReasons,
  createControlRecordVerifier,
  encodeControlRecord,
  generateOperatorKey,
  loadOperatorKey,
  loadOrCreateOperatorKey,
  nextSequenceNumber,
  operatorPublicKeyObject,
  signControlRecord,
  signJoinRecord,
  writeOperatorKey,
} from './operator.js'
export type { CreateMetricsOptions, MetricDefinition, NodeMetrics, OpsServer, OpsServerInit } from './ops.js'
export {
  createMetrics,
  nodeMetricDefinitions,
  observeRound,
  startOpsServer,
  unitlessMetricNames,
} from './ops.js'
export type {
  NatsPermissions,
  NatsPrincipal,
  NatsRole,
  NatsServerConfigInit,
  NatsUser,
} from './permissions.js'
export { natsPermissions, natsRoles, renderNatsServerConfig } from './permissions.js'
export type {
  FollowInit,
  LogEntry,
  LogFollower,
  ReplicatedLog,
  ReplicatedLogInfo,
  ReplicatedLogInit,
} from './replicated-log.js'
export { createReplicatedLog } from './replicated-log.js'
export type {
  ChaosCommand,
  ChaosCommandKind,
  ChaosReply,
  CheckpointAnnouncement,
  ClusterSubjects,
  DecodeResult,
  EquivocationRecord,
  Member,
  MembershipChange,
  PayloadInput,
  PayloadKind,
  PayloadOf,
  Role,
  RoundRecord,
  Suspicion,
  TelemetryEvent,
} from './subjects.js'
export {
  ChaosCommandSchema,
  ChaosReplySchema,
  CheckpointAnnouncementSchema,
  clusterSubjects,
  decode,
  EquivocationRecordSchema,
  encode,
  MemberSchema,
  MembershipChangeSchema,
  payloadSchemas,
  RoleSchema,
  RoundRecordSchema,
  roundRecordLocalFields,
  SUBJECT_CATALOG,
  SuspicionSchema,
  TelemetryEventSchema,
} from './subjects.js'
export type {
  RenderTableOptions,
  RoundReport,
  TelemetryInit,
  TelemetryPublisher,
  TelemetryRefusal,
  TelemetrySigner,
  TelemetryStats,
  TelemetryWatch,
  WatchTelemetryInit,
} from './telemetry.js'
export {
  createTelemetry,
  renderClusterTable,
  telemetryRefusals,
  telemetryStatement,
  watchTelemetry,
} from './telemetry.js'
