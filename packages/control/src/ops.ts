/**
 * Operations endpoints of every node: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.
 * The node metrics are defined here once, so every process exports the same names; each name ends in
 * its unit (`_total`, `_seconds`, `_bytes`, `_ratio`) as Prometheus conventions require, but for the
 * two the conventions name otherwise: the info metric `phalanx_build_info` (constant 1, the facts
 * are labels) and the round index `phalanx_round_current` (a dimensionless gauge).
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { Counter, collectDefaultMetrics, Gauge, Histogram } from 'prom-client'
import type { ControlMetricsSink } from './connection.js'
import { OpsServerListenError } from './errors.js'
import type { RoundReport } from './round-report.js'
import type { Role } from './subjects.js'

/** What one metric family is, who produces it and when: the one list `/metrics` and its docs follow. */
export interface MetricDefinition {
  readonly name: string
  readonly type: 'counter' | 'gauge' | 'histogram'
  readonly help: string
  readonly labels: readonly string[]
  /** The nodes that produce it. */
  readonly roles: readonly Role[]
  /**
   * Absent: every node of `roles` produces it within its first rounds of the default protocol.
   * Otherwise the condition under which it gets samples (a refusal, an outage, large vectors).
   */
  readonly when?: string
}

const both: readonly Role[] = ['server', 'worker']
const servers: readonly Role[] = ['server']

/**
 * Every node metric family. Counters the data plane and the state files keep (NetCounters, the
 * server's refusals) are copied in as deltas whenever `/metrics` is read and at every round.
 */
/**
 * The node metrics whose names carry no unit suffix, as the Prometheus conventions have it: an
 * info metric (its facts are labels, its value 1) and a round index (dimensionless). Every other
 * name ends in its unit (`_total`, `_seconds`, `_bytes`, `_ratio`).
 */
export const unitlessMetricNames: readonly string[] = ['phalanx_build_info', 'phalanx_round_current']

export const nodeMetricDefinitions = {
  buildInfo: {
    name: 'phalanx_build_info',
    type: 'gauge',
    help: 'Always 1: what this node runs, as labels (the Phalanx version, the source commit or unknown, the Node.js version, the role), to join on other series by instance.',
    labels: ['version', 'commit', 'nodejs_version', 'role'],
    roles: both,
  },
  roundCurrent: {
    name: 'phalanx_round_current',
    type: 'gauge',
    help: 'The round this node works on: the one its round loop started at, then the one after each round it completes (the number of rounds once training is over). A round index, so no unit suffix.',
    labels: [],
    roles: both,
  },
  roundsTotal: {
    name: 'phalanx_rounds_total',
    type: 'counter',
    help: 'Training rounds completed by this node.',
    labels: [],
    roles: both,
  },
  roundDurationSeconds: {
    name: 'phalanx_round_duration_seconds',
    type: 'histogram',
    help: 'Wall time of one round, from its start to its completion (evaluation excluded).',
    labels: [],
    roles: both,
  },
  quorumWaitSeconds: {
    name: 'phalanx_quorum_wait_seconds',
    type: 'histogram',
    help: 'Time one round spent waiting for a quorum, by input: N−F models (servers with anti-drift, workers) or n−f gradients (servers).',
    labels: ['input'],
    roles: both,
  },
  rejectedMessagesTotal: {
    name: 'phalanx_rejected_messages_total',
    type: 'counter',
    help: 'Data-plane messages dropped by the validation pipeline, by reason.',
    labels: ['reason'],
    roles: both,
    when: 'a received message is refused (a duplicate of a re-announced vector, sent every 2 s while a peer waits for a quorum, is one)',
  },
  suspicionsTotal: {
    name: 'phalanx_suspicions_total',
    type: 'counter',
    help: 'Peers suspected of Byzantine behaviour, by reason.',
    labels: ['reason'],
    roles: servers,
    when: 'an honest server receives a model more than 10× the median distance (and over 1e-3) from its own (model_far_from_median)',
  },
  accuracyRatio: {
    name: 'phalanx_accuracy_ratio',
    type: 'gauge',
    help: 'Test accuracy of this server’s model at its latest evaluation, in [0, 1].',
    labels: [],
    roles: servers,
    when: 'an honest server evaluates a classification model (every evalEvery rounds and after the last)',
  },
  modelDriftRatio: {
    name: 'phalanx_model_drift_ratio',
    type: 'gauge',
    help: 'drift / ‖θ_s(r)‖ of the latest round: drift is the lower median of the ℓ2 distances from the model this server published for the round, θ_s(r), to each other server’s model of that round it received.',
    labels: [],
    roles: servers,
    when: 'an honest server receives other servers’ models of its rounds (not in the SMR baseline, whose replicas receive none)',
  },
  networkSentBytesTotal: {
    name: 'phalanx_network_sent_bytes_total',
    type: 'counter',
    help: "Bytes sent, by plane: data = every byte libp2p wrote to its TCP connections (TLS or Noise and Yamux framing included) and the TLS payload plane's sockets wrote (TLS records included), control = bytes the NATS client wrote.",
    labels: ['plane'],
    roles: both,
  },
  networkReceivedBytesTotal: {
    name: 'phalanx_network_received_bytes_total',
    type: 'counter',
    help: 'Bytes received, by plane: data = every byte libp2p and the TLS payload plane read from their TCP connections, control = bytes the NATS client read.',
    labels: ['plane'],
    roles: both,
  },
  netMessagesReceivedTotal: {
    name: 'phalanx_net_messages_received_total',
    type: 'counter',
    help: 'Vector messages (models, gradients) that reached the validation pipeline, from gossip or sync.',
    labels: [],
    roles: both,
  },
  netMessagesDeliveredTotal: {
    name: 'phalanx_net_messages_delivered_total',
    type: 'counter',
    help: 'Vectors of other nodes delivered to the round protocol after validation.',
    labels: [],
    roles: both,
  },
  netMessagesSyncedTotal: {
    name: 'phalanx_net_messages_synced_total',
    type: 'counter',
    help: 'Vectors delivered from a peer’s sync answer rather than from gossip.',
    labels: [],
    roles: both,
    when: 'a node waiting for a quorum pulls a vector it lacked from a peer that holds it',
  },
  equivocationsTotal: {
    name: 'phalanx_equivocations_total',
    type: 'counter',
    help: 'Second versions of a signer’s vector for one round seen (kept as evidence).',
    labels: [],
    roles: both,
    when: 'a peer signs two different vectors for one round',
  },
  payloadFetchedBytesTotal: {
    name: 'phalanx_payload_fetched_bytes_total',
    type: 'counter',
    help: 'Payload bytes pulled for announced vectors, by the plane that carried them: tls = the node:tls payload socket, libp2p = the libp2p payload stream (the configured plane, or the fallback from tls).',
    labels: ['payload_plane'],
    roles: both,
    when: 'vectors are larger than inlineMaxBytes (64 KiB), e.g. the default MLP',
  },
  payloadServedBytesTotal: {
    name: 'phalanx_payload_served_bytes_total',
    type: 'counter',
    help: 'Payload bytes served to peers that pulled an announced vector.',
    labels: [],
    roles: both,
    when: 'vectors are larger than inlineMaxBytes (64 KiB), e.g. the default MLP',
  },
  syncServedBytesTotal: {
    name: 'phalanx_sync_served_bytes_total',
    type: 'counter',
    help: 'Bytes of sync answers served to peers that pulled the signed vectors this node holds.',
    labels: [],
    roles: both,
    when: 'a peer waiting for a quorum pulls (every 2 s of its wait) and this node holds vectors of the kinds it asks for (peers ask servers first)',
  },
  telemetryDroppedEventsTotal: {
    name: 'phalanx_telemetry_dropped_events_total',
    type: 'counter',
    help: 'Telemetry events lost because the outage buffer was full.',
    labels: [],
    roles: both,
    when: 'NATS is away for longer than the outage buffer holds (1024 events)',
  },
  invalidPayloadsTotal: {
    name: 'phalanx_invalid_payloads_total',
    type: 'counter',
    help: 'Control-plane payloads that failed schema validation, by kind and direction.',
    labels: ['kind', 'direction'],
    roles: both,
    when: 'a payload this node publishes fails its schema (a bug, or a report past the schema bounds such as more than 64 peers’ distances); incoming ones are counted by the readers that decode them (phalanx watch, chaos replies), not by nodes',
  },
  natsDisconnectsTotal: {
    name: 'phalanx_nats_disconnects_total',
    type: 'counter',
    help: 'Times the NATS connection was lost.',
    labels: [],
    roles: both,
    when: 'the NATS connection is lost (the node reconnects by itself)',
  },
  controlRejectedTotal: {
    name: 'phalanx_control_rejected_total',
    type: 'counter',
    help: 'Control records (admit, evict, join, chaos) refused before anything was applied, by kind and reason.',
    labels: ['kind', 'reason'],
    roles: both,
    when: 'a control record fails verification (not signed by the operator key, expired, replayed, malformed, not allowed)',
  },
  connectionsRefusedTotal: {
    name: 'phalanx_connections_refused_total',
    type: 'counter',
    help: 'libp2p connections refused by the connection gater (non-members, graylisted strangers), and TLS payload-plane sockets refused before any request was read (a peer proving a non-member key, a failed or missing binding, a failed TLS handshake).',
    labels: [],
    roles: both,
    when: 'a peer outside a closed member set, or a graylisted stranger, connects or is dialled',
  },
  peersDisconnectedTotal: {
    name: 'phalanx_peers_disconnected_total',
    type: 'counter',
    help: 'Connected non-member peers dropped for a score under the graylist threshold.',
    labels: [],
    roles: both,
    when: 'a connected non-member (an open member set only) hands over enough invalid messages to be graylisted',
  },
  payloadPlaneFallbacksTotal: {
    name: 'phalanx_payload_plane_fallbacks_total',
    type: 'counter',
    help: 'Payload fetches that went over the libp2p stream though the TLS payload plane is configured: the peer advertised no payload port, or a dial to it failed in the last payloadRedialBackoffMs.',
    labels: [],
    roles: both,
    when: 'payloadPlane is tls and a peer runs the libp2p plane, is of an older version, or its payload port cannot be reached',
  },
  payloadPlaneRefusedTotal: {
    name: 'phalanx_payload_plane_refused_total',
    type: 'counter',
    help: 'Sockets and requests the TLS payload plane refused, by reason: outsider (a proven non-member key), binding (a failed or missing channel binding, or TLS handshake), malformed (not the protocol).',
    labels: ['reason'],
    roles: both,
    when: 'a non-member, or anything that is not a bound peer speaking the protocol, connects to the payload port',
  },
  streamsRefusedTotal: {
    name: 'phalanx_streams_refused_total',
    type: 'counter',
    help: 'Served payload and sync streams refused or cut short: over the per-peer concurrent streams or bytes per second, or idle.',
    labels: ['reason'],
    roles: both,
    when: 'a peer exceeds maxStreamsPerPeer or servedBytesPerSecond, or idles past streamIdleTimeoutMs, on a stream this node serves',
  },
  stateRefusedTotal: {
    name: 'phalanx_state_refused_total',
    type: 'counter',
    help: 'State files (state_file, watermark_file) refused at start-up and model signatures (signature) the signed-round watermark refused.',
    labels: ['what'],
    roles: servers,
    when: 'a server with stateDir finds its state or watermark file corrupt at start-up, or would sign a second model for a round it signed',
  },
} as const satisfies Record<string, MetricDefinition>

type Definitions = typeof nodeMetricDefinitions
type LabelOf<K extends keyof Definitions> = Definitions[K]['labels'][number]
/** The prom-client object of each definition, with its label names as types. */
type MetricOf<K extends keyof Definitions> = Definitions[K]['type'] extends 'counter'
  ? Counter<LabelOf<K>>
  : Definitions[K]['type'] extends 'histogram'
    ? Histogram<LabelOf<K>>
    : Gauge<LabelOf<K>>

export type NodeMetrics = { readonly [K in keyof Definitions]: MetricOf<K> } & {
  /** Pass to `connectControl({ metrics })` so the control plane counts what it drops. */
  readonly sink: ControlMetricsSink
}

export interface CreateMetricsOptions {
  /** Node.js process metrics (`process_*`, `nodejs_*`); some of those names carry no unit suffix. */
  defaultMetrics?: boolean
}

export interface OpsServer {
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

export interface OpsServerInit {
  registry: Registry
  /** true when ready; false or a reason string while not (the reason is the 503 body). */
  ready: () => boolean | string
  /**
   * true while the process works; false or a reason while it is wedged (503 with the reason).
   * Absent: live whenever it answers at all.
   */
  live?: () => boolean | string
  /**
   * Called before every `/metrics` answer: copies counters kept outside the registry (the data
   * plane's, the NATS client's) in, so a scrape sees them as they are, not as of the last round.
   */
  beforeScrape?: () => void
  port?: number
  host?: string
  log?: Logger
}

const METRICS_DEFAULTS = {
  defaultMetrics: true,
} as const

// Rounds take from milliseconds (synthetic data, loopback) to minutes (big models, slow quorums).
const DURATION_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300]

/** Defines the node metrics on `registry`; calling it again on the same registry returns the same ones. */
export function createMetrics(registry: Registry, options: CreateMetricsOptions = {}): NodeMetrics {
  const defaultMetrics = options.defaultMetrics ?? METRICS_DEFAULTS.defaultMetrics
  const registers = [registry]
  const make = (definition: MetricDefinition): Counter | Gauge | Histogram => {
    const { name, help } = definition
    const labelNames = [...definition.labels]
    if (definition.type === 'counter') return new Counter({ name, help, labelNames, registers })
    if (definition.type === 'gauge') return new Gauge({ name, help, labelNames, registers })
    return new Histogram({ name, help, labelNames, buckets: DURATION_BUCKETS_SECONDS, registers })
  }

  if (defaultMetrics && registry.getSingleMetric('process_cpu_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry })
  }
  const metrics = Object.fromEntries(
    Object.entries(nodeMetricDefinitions).map(([key, definition]) => [
      key,
      registry.getSingleMetric(definition.name) ?? make(definition),
    ]),
  ) as unknown as Omit<NodeMetrics, 'sink'>
  return {
    ...metrics,
    sink: {
      invalidPayload: (kind, direction) => metrics.invalidPayloadsTotal.inc({ kind, direction }),
      telemetryDropped: (count) => metrics.telemetryDroppedEventsTotal.inc(count),
      natsDisconnected: () => metrics.natsDisconnectsTotal.inc(),
      controlRejected: (kind, reason) => metrics.controlRejectedTotal.inc({ kind, reason }),
    },
  }
}

/**
 * Records one round's report in the metrics (what `createTelemetry({ metrics })` does on publish).
 * Rejected messages are not taken from it: a stalled node completes no round yet keeps refusing
 * (duplicates of re-announced vectors, above all), so `phalanx_rejected_messages_total` is copied
 * from the data plane's counters at every round and every scrape, as its other counters are.
 */
export function observeRound(metrics: NodeMetrics, report: RoundReport): void {
  metrics.roundsTotal.inc()
  metrics.roundCurrent.set(report.round + 1)
  if (report.roundDurationSeconds !== undefined)
    metrics.roundDurationSeconds.observe(report.roundDurationSeconds)
  for (const [input, seconds] of Object.entries(report.quorumWaitByInputSeconds ?? {})) {
    if (seconds !== undefined) metrics.quorumWaitSeconds.observe({ input }, seconds)
  }
  if (report.accuracy !== undefined && Number.isFinite(report.accuracy))
    metrics.accuracyRatio.set(report.accuracy)
  // drift / ‖θ_s(r)‖: both are of the model the server published for the round.
  if (report.drift !== undefined && report.modelNorm !== undefined && report.modelNorm > 0) {
    const ratio = report.drift / report.modelNorm
    if (Number.isFinite(ratio)) metrics.modelDriftRatio.set(ratio)
  }
  for (const suspicion of report.suspicions ?? []) metrics.suspicionsTotal.inc({ reason: suspicion.reason })
}

const OPS_DEFAULTS = {
  // The OpenTelemetry Prometheus exporter's port: free on most hosts and known to scrapers.
  port: 9464,
  // Loopback unless told otherwise: in Kubernetes the manifests pass 0.0.0.0 so the kubelet can probe.
  host: '127.0.0.1',
} as const

/** 200 with `ok`, or 503 with the reason (a probe's body is for the operator reading it). */
function answerProbe(response: ServerResponse, verdict: boolean | string, ok: string, failed: string): void {
  if (verdict === true) {
    response.writeHead(200, { 'content-type': 'text/plain' }).end(`${ok}\n`)
  } else {
    response.writeHead(503, { 'content-type': 'text/plain' }).end(`${verdict === false ? failed : verdict}\n`)
  }
}

export async function startOpsServer(init: OpsServerInit): Promise<OpsServer> {
  const port = init.port ?? OPS_DEFAULTS.port
  const host = init.host ?? OPS_DEFAULTS.host
  const log = init.log?.child({ component: 'ops' })

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = (request.url ?? '/').split('?')[0]
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD' }).end()
      return
    }
    if (path === '/metrics') {
      init.beforeScrape?.()
      const body = await init.registry.metrics()
      response.writeHead(200, { 'content-type': init.registry.contentType }).end(body)
    } else if (path === '/healthz') {
      answerProbe(response, init.live?.() ?? true, 'ok', 'not live')
    } else if (path === '/readyz') {
      answerProbe(response, init.ready(), 'ready', 'not ready')
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    }
  }

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      log?.error({ err: error, url: request.url }, 'ops endpoint failed')
      if (!response.headersSent) response.writeHead(500)
      response.end()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) =>
      reject(new OpsServerListenError(`cannot listen on ${host}:${port}`, { host, port }, { cause })),
    )
    server.listen(port, host, () => resolve())
  })
  const bound = (server.address() as AddressInfo).port
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${bound}`
  log?.info({ url }, 'operations endpoints listening')
  return {
    url,
    port: bound,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections()
        server.close((error) => (error ? reject(error) : resolve()))
      }),
  }
}
