/**
 * A node's side of the control plane: the ops endpoints (when `opsPort` is set), the named NATS
 * connection, per-round telemetry and the chaos listener (when `natsUrl` is set). Training never
 * waits for any of it: NATS dials in the background, telemetry is fire-and-forget with a bounded
 * outage buffer, and the chaos listener subscribes whenever NATS first answers.
 */
import {
  type ChaosCommand,
  type ChaosListener,
  type ControlConnection,
  connectControl,
  createChaosListener,
  createEvidencePublisher,
  createMembershipStore,
  createMetrics,
  createTelemetry,
  createVerifiedMembers,
  type EquivocationInput,
  type EvidencePublisher,
  type Member,
  type MemberChange,
  type MembersWatch,
  NatsCredentialsError,
  type NodeMetrics,
  type OpsServer,
  observeRound,
  parseNatsServers,
  type RoundRecord,
  type RoundReport,
  signJoinRecord,
  startOpsServer,
  type TelemetryPublisher,
  type VerifiedMembers,
} from '@phalanx/control'
import { type MemberRole, type Membership, type NetCounters, verifyPeerSignature } from '@phalanx/net'
import type { Logger } from 'pino'
import { Registry } from 'prom-client'
import { buildInfo } from './build-info.js'
import type { ClusterConfig } from './config.js'
import { ConfigError } from './errors.js'

export interface ControlPlane {
  /** Where `/metrics` `/healthz` `/readyz` listen, when the ops endpoints are on. */
  readonly opsUrl: string | undefined
  readonly connection: ControlConnection | undefined
  /** The round loop starts at `round` (after loading, joining or resuming): the current round. */
  started(round: number): void
  /** Records the round in the metrics and publishes it; never blocks, never throws. */
  roundCompleted(record: RoundRecord): void
  /** Without a reason: ready. With one: not ready, and `/readyz` answers 503 with the reason. */
  setReady(reason?: string): void
  /**
   * Peer ids of the verified member servers: the config's and those the operator admitted (signed
   * records only, see `createVerifiedMembers`), once the records already stored have been read.
   * What checkpoints are agreed among; never a bucket's raw contents.
   */
  memberServers(): Promise<readonly string[]>
  close(): Promise<void>
}

export interface ControlPlaneInit {
  config: ClusterConfig
  log: Logger
  nodeId: string
  role: MemberRole
  /** Executes an accepted chaos command (only called when the node runs with `chaos` on). */
  onChaos: (command: ChaosCommand) => void | Promise<void>
  /**
   * The node's member set: verified changes from the membership buckets (operator-signed admits
   * and evictions, workers' own joins under `workerAdmission: open`) are applied to it as they
   * arrive until the node completes its first round (round 0 cannot start without members), then
   * only at round boundaries, so no quorum changes under a round in progress.
   */
  membership?: Membership
  /**
   * This node as a member. A worker outside the config's members registers itself with a `join`
   * signed through `sign` (its peer key) when `workerAdmission` is open; no node ever gives itself
   * a role otherwise.
   */
  self?: {
    peerId: string
    multiaddrs: readonly string[]
    sign?: (statement: Uint8Array) => Promise<Uint8Array>
  }
  /** Registry the node metrics go to (a fresh one by default, so tests can run many nodes per process). */
  registry?: Registry
  /**
   * The data plane's counters, copied into `/metrics` at every round and every scrape (its
   * rejections by reason reach `/metrics` through the round reports instead).
   */
  netCounters?: () => NetCounters
  /** A server's state-file refusals by what was refused, copied into `/metrics` like `netCounters`. */
  stateCounters?: () => Readonly<Record<string, number>>
  /** What `/readyz` and `/healthz` answer (health.ts); without it, `setReady` decides and it is always live. */
  health?: { ready(): boolean | string; live(): boolean | string }
  /**
   * Takes (and makes the data plane forget) the equivocation evidence it holds: called at every
   * round while NATS is connected, each pair is signed and published once. While NATS is away
   * the evidence stays in the data plane's bounded store.
   */
  takeEvidence?: () => readonly EquivocationInput[]
}

const NOT_READY_AT_START = 'starting: no round yet'

/** The NATS credential and TLS files of the config, named by their config fields in errors. */
function natsAuthOf(
  config: ClusterConfig,
): Pick<Parameters<typeof connectControl>[0], 'credsFile' | 'nkeySeedFile' | 'tls' | 'authOptionNames'> {
  const tls = {
    ...(config.natsTlsCaFile === undefined ? {} : { caFile: config.natsTlsCaFile }),
    ...(config.natsTlsCertFile === undefined ? {} : { certFile: config.natsTlsCertFile }),
    ...(config.natsTlsKeyFile === undefined ? {} : { keyFile: config.natsTlsKeyFile }),
  }
  return {
    ...(config.natsCredsFile === undefined ? {} : { credsFile: config.natsCredsFile }),
    ...(config.natsNkeySeedFile === undefined ? {} : { nkeySeedFile: config.natsNkeySeedFile }),
    ...(Object.keys(tls).length === 0 ? {} : { tls }),
    authOptionNames: {
      credsFile: 'natsCredsFile',
      nkeySeedFile: 'natsNkeySeedFile',
      caFile: 'natsTlsCaFile',
      certFile: 'natsTlsCertFile',
      keyFile: 'natsTlsKeyFile',
    },
  }
}

/** A node's role is its id's prefix (`server-<i>`, `worker-<suffix>`, as the config schema requires). */
export function roleOfNodeId(nodeId: string): MemberRole {
  return nodeId.startsWith('server-') ? 'server' : 'worker'
}

/** `<nodeId>:<peerId>` config entries as members (the role is the node id's prefix). */
export function configuredMembers(config: ClusterConfig): Member[] {
  return config.members.map((entry) => {
    const separator = entry.indexOf(':')
    const nodeId = entry.slice(0, separator)
    return { peerId: entry.slice(separator + 1), nodeId, role: roleOfNodeId(nodeId), multiaddrs: [] }
  })
}

export async function attachControlPlane(init: ControlPlaneInit): Promise<ControlPlane> {
  const { config, nodeId, role } = init
  const log = init.log.child({ component: 'control-plane' })
  const registry = init.registry ?? new Registry()
  let notReadyReason: string | undefined = NOT_READY_AT_START
  const health = init.health
  let metrics: NodeMetrics | undefined
  let ops: OpsServer | undefined
  let connection: ControlConnection | undefined
  // The data plane's, the NATS client's and the state files' counters, which `/metrics` gets as deltas.
  const countersSoFar = new Map<string, number>()
  const copyCountersIn = () => {
    if (metrics !== undefined) copyCounters(metrics, init, connection, countersSoFar)
  }
  if (config.opsPort > 0) {
    metrics = createMetrics(registry)
    const build = buildInfo()
    metrics.buildInfo.set(
      { version: build.version, commit: build.commit, nodejs_version: build.nodejsVersion, role },
      1,
    )
    ops = await startOpsServer({
      registry,
      beforeScrape: copyCountersIn,
      port: config.opsPort,
      host: config.opsHost,
      log,
      ready: () => health?.ready() ?? notReadyReason ?? true,
      ...(health === undefined ? {} : { live: () => health.live() }),
    })
  }

  let telemetry: TelemetryPublisher | undefined
  let chaos: ChaosListener | undefined
  let evidence: EvidencePublisher | undefined
  const configured = configuredMembers(config)
  const verified: VerifiedMembers = createVerifiedMembers({
    cluster: config.cluster,
    servers: config.servers,
    configured,
    operatorPublicKey: config.operatorPublicKey,
    workerAdmission: config.workerAdmission,
    verifyPeer: verifyPeerSignature,
    // The node's logger: the component binds its own `component`, which this one's would repeat.
    log: init.log,
    onRejected: (kind, reason) => metrics?.sink.controlRejected?.(kind, reason),
  })
  /** Settles once the records already in the buckets have been verified (never, without NATS). */
  let membersRead: Promise<void> | undefined
  if (config.natsUrl !== undefined) {
    // Only the credential-free form reaches a log line; connectControl does the same internally.
    const { servers } = parseNatsServers(config.natsUrl)
    try {
      connection = connectControl({
        servers: config.natsUrl,
        cluster: config.cluster,
        name: `phalanx-${config.cluster}-${nodeId}`,
        log: init.log,
        ...(metrics === undefined ? {} : { metrics: metrics.sink }),
        ...natsAuthOf(config),
      })
    } catch (error) {
      // An unusable credentials or TLS file is a start-up error naming its config field.
      await ops?.close()
      if (!(error instanceof NatsCredentialsError)) throw error
      throw new ConfigError(error.message, { field: error.option, value: error.path, cause: error })
    }
    telemetry = createTelemetry({
      conn: connection,
      nodeId,
      role,
      ...(metrics === undefined ? {} : { metrics }),
      // Signed by the peer key, so `phalanx watch` can tell this node's reports from forgeries.
      ...(init.self?.sign === undefined
        ? {}
        : { signer: { peerId: init.self.peerId, sign: init.self.sign } }),
    })
    if (init.self?.sign !== undefined && init.takeEvidence !== undefined)
      evidence = createEvidencePublisher({
        conn: connection,
        nodeId,
        signer: { peerId: init.self.peerId, sign: init.self.sign },
      })
    // Commands are operator-signed records, refused (and counted) without `operatorPublicKey`.
    chaos = createChaosListener({
      conn: connection,
      nodeId,
      enabled: config.chaos,
      operatorPublicKey: config.operatorPublicKey,
      onCommand: init.onChaos,
    })
    const conn = connection
    membersRead = followMembership(conn)
    membersRead.catch((error: unknown) =>
      log.warn({ err: error }, 'membership KV unavailable: keeping the member set from the config'),
    )
    log.info({ servers, chaos: config.chaos }, 'control plane dialling NATS in the background')
  } else if (config.chaos) {
    log.warn('chaos is enabled but there is no natsUrl: no command can reach this node')
  }

  let firstRoundDone = false
  let membersWatch: MembersWatch | undefined
  let closed = false
  const staged: MemberChange[] = []
  const applyStaged = (): void => {
    const membership = init.membership
    if (membership === undefined) return
    for (const change of staged.splice(0)) {
      if (change.kind === 'admit') membership.add(change.member.peerId, change.member.role)
      else membership.remove(change.peerId)
      const peerId = change.kind === 'admit' ? change.member.peerId : change.peerId
      log.info({ change: change.kind, peerId, revision: change.revision }, 'membership change applied')
    }
  }
  async function followMembership(conn: ControlConnection): Promise<void> {
    const store = await createMembershipStore({ conn, replicas: config.natsReplicas })
    const self = init.self
    const listed = configured.some((member) => member.peerId === self?.peerId)
    if (role === 'worker' && config.workerAdmission === 'open' && self?.sign !== undefined && !listed) {
      const record = await signJoinRecord(self.sign, {
        cluster: config.cluster,
        member: { peerId: self.peerId, nodeId, role: 'worker', multiaddrs: self.multiaddrs.slice(0, 32) },
      })
      const revision = await store.putRecord(record)
      log.info({ revision, seq: record.seq }, 'registered as a worker in the joins bucket')
    }
    if (closed) return
    const watch = await store.watch((entry) => {
      void verified.apply(entry).then((verdict) => {
        if (!verdict.ok || verdict.change === undefined || init.membership === undefined) return
        staged.push(verdict.change)
        if (!firstRoundDone) applyStaged()
      })
    })
    membersWatch = watch
    await watch.initialized
    await verified.idle()
  }

  return {
    opsUrl: ops?.url,
    connection,
    started(round) {
      metrics?.roundCurrent.set(round)
    },
    roundCompleted(record) {
      firstRoundDone = true
      applyStaged()
      copyCountersIn()
      if (evidence !== undefined && connection?.state() === 'connected')
        evidence.publish(init.takeEvidence?.() ?? [])
      try {
        const report = publishable(record)
        if (telemetry !== undefined) telemetry.publish(report)
        else if (metrics !== undefined) observeRound(metrics, report)
      } catch (error) {
        log.error({ err: error, round: record.round }, 'could not record round telemetry')
      }
    },
    setReady(reason) {
      notReadyReason = reason
    },
    async memberServers() {
      // A bucket that cannot be read leaves the config's servers (the verified set starts there).
      await membersRead?.catch(() => undefined)
      return verified.servers().map((member) => member.peerId)
    },
    async close() {
      closed = true
      membersWatch?.stop()
      chaos?.stop()
      telemetry?.close()
      await Promise.allSettled([connection?.close(), ops?.close()])
    },
  }
}

/**
 * Adds what the data plane's, the NATS client's and the state files' counters gained since
 * `soFar`. They only go up; one that started again from zero would be counted from there on,
 * never backwards.
 */
function copyCounters(
  metrics: NodeMetrics,
  init: Pick<ControlPlaneInit, 'netCounters' | 'stateCounters'>,
  connection: ControlConnection | undefined,
  soFar: Map<string, number>,
): void {
  const add = (key: string, total: number, inc: (delta: number) => void) => {
    const delta = total - (soFar.get(key) ?? 0)
    if (delta > 0) inc(delta)
    soFar.set(key, total)
  }
  const net = init.netCounters?.()
  if (net !== undefined) {
    add('connections_refused', net.connections_refused_total, (d) => metrics.connectionsRefusedTotal.inc(d))
    add('peers_disconnected', net.peers_disconnected_total, (d) => metrics.peersDisconnectedTotal.inc(d))
    for (const [reason, total] of Object.entries(net.streams_refused_total))
      add(`streams_refused:${reason}`, total, (d) => metrics.streamsRefusedTotal.inc({ reason }, d))
    for (const [reason, total] of Object.entries(net.messages_rejected_total))
      add(`rejected:${reason}`, total, (d) => metrics.rejectedMessagesTotal.inc({ reason }, d))
    add('messages_received', net.messages_received_total, (d) => metrics.netMessagesReceivedTotal.inc(d))
    add('messages_delivered', net.messages_delivered_total, (d) => metrics.netMessagesDeliveredTotal.inc(d))
    add('messages_synced', net.messages_synced_total, (d) => metrics.netMessagesSyncedTotal.inc(d))
    add('equivocations', net.equivocations_total, (d) => metrics.equivocationsTotal.inc(d))
    for (const [plane, total] of Object.entries(net.payload_fetched_plane_bytes_total))
      add(`payload_fetched:${plane}`, total, (d) =>
        metrics.payloadFetchedBytesTotal.inc({ payload_plane: plane }, d),
      )
    add('payload_plane_fallbacks', net.payload_plane_fallbacks_total, (d) =>
      metrics.payloadPlaneFallbacksTotal.inc(d),
    )
    for (const [reason, total] of Object.entries(net.payload_plane_refused_total))
      add(`payload_plane_refused:${reason}`, total, (d) =>
        metrics.payloadPlaneRefusedTotal.inc({ reason }, d),
      )
    add('payload_served', net.payload_served_bytes_total, (d) => metrics.payloadServedBytesTotal.inc(d))
    add('sync_served', net.sync_served_bytes_total, (d) => metrics.syncServedBytesTotal.inc(d))
    add('wire_sent', net.wire_sent_bytes_total, (d) =>
      metrics.networkSentBytesTotal.inc({ plane: 'data' }, d),
    )
    add('wire_received', net.wire_received_bytes_total, (d) =>
      metrics.networkReceivedBytesTotal.inc({ plane: 'data' }, d),
    )
  }
  // The NATS client's own byte counts: telemetry, evidence, checkpoints, membership, chaos.
  const nats = connection?.nats()?.stats()
  if (nats !== undefined) {
    add('nats_sent', nats.outBytes, (d) => metrics.networkSentBytesTotal.inc({ plane: 'control' }, d))
    add('nats_received', nats.inBytes, (d) => metrics.networkReceivedBytesTotal.inc({ plane: 'control' }, d))
  }
  for (const [what, total] of Object.entries(init.stateCounters?.() ?? {}))
    add(`state_refused:${what}`, total, (d) => metrics.stateRefusedTotal.inc({ what }, d))
}

/**
 * The record as the control plane publishes it: a loss that is not finite (a diverged model) is
 * left out, as the telemetry schema has it; `phalanx local` still reads it as it was.
 */
function publishable(record: RoundRecord): RoundReport {
  if (record.loss === undefined || Number.isFinite(record.loss)) return record
  const { loss: _, ...rest } = record
  return rest
}
