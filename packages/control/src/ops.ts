/**
 * Operations endpoints of every node: Prometheus `/metrics`, liveness `/healthz`, readiness `/readyz`.
 * The node metrics are defined here once, so every process exports the same names; each name ends in
 * its unit (`_total`, `_seconds`, `_bytes`, `_ratio`) as Prometheus conventions require.
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

export interface NodeMetrics {
  roundsTotal: Counter
  roundDurationSeconds: Histogram
  quorumWaitSeconds: Histogram<'input'>
  rejectedMessagesTotal: Counter<'reason'>
  suspicionsTotal: Counter<'reason'>
  accuracyRatio: Gauge
  /** ‖θ_s − median‖ / ‖median‖ of a server's model against the median it received. */
  modelDriftRatio: Gauge
  networkSentBytesTotal: Counter<'plane'>
  networkReceivedBytesTotal: Counter<'plane'>
  telemetryDroppedEventsTotal: Counter
  invalidPayloadsTotal: Counter<'kind' | 'direction'>
  natsDisconnectsTotal: Counter
  /** Control records (membership, chaos) refused, by action kind and reason (see operator.ts). */
  controlRejectedTotal: Counter<'kind' | 'reason'>
  /** libp2p connections the gater refused (a non-member of a closed set, a graylisted stranger). */
  connectionsRefusedTotal: Counter
  /** Connected non-members dropped once their score fell to the graylist threshold. */
  peersDisconnectedTotal: Counter
  /** Served payload and sync streams refused or cut short, by reason (concurrent, rate, idle). */
  streamsRefusedTotal: Counter<'reason'>
  /**
   * A server's state and signed-round watermark files refused at start-up, and model signatures
   * the watermark refused (a second model for a round already signed), by `what`.
   */
  stateRefusedTotal: Counter<'what'>
  /** Pass to `connectControl({ metrics })` so the control plane counts what it drops. */
  sink: ControlMetricsSink
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
  const reuse = <M>(name: string, make: () => M): M =>
    (registry.getSingleMetric(name) as M | undefined) ?? make()
  const registers = [registry]
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    reuse(name, () => new Counter<L>({ name, help, labelNames, registers }))
  const histogram = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    reuse(
      name,
      () => new Histogram<L>({ name, help, labelNames, buckets: DURATION_BUCKETS_SECONDS, registers }),
    )
  const gauge = (name: string, help: string) => reuse(name, () => new Gauge({ name, help, registers }))

  if (defaultMetrics && registry.getSingleMetric('process_cpu_seconds_total') === undefined) {
    collectDefaultMetrics({ register: registry })
  }
  const metrics: Omit<NodeMetrics, 'sink'> = {
    roundsTotal: counter('phalanx_rounds_total', 'Training rounds completed by this node.'),
    roundDurationSeconds: histogram('phalanx_round_duration_seconds', 'Wall time of one round.'),
    quorumWaitSeconds: histogram('phalanx_quorum_wait_seconds', 'Time spent waiting for a quorum.', [
      'input',
    ]),
    rejectedMessagesTotal: counter('phalanx_rejected_messages_total', 'Messages dropped, by reason.', [
      'reason',
    ]),
    suspicionsTotal: counter('phalanx_suspicions_total', 'Peers suspected of Byzantine behaviour.', [
      'reason',
    ]),
    accuracyRatio: gauge('phalanx_accuracy_ratio', 'Latest test accuracy, in [0, 1].'),
    modelDriftRatio: gauge('phalanx_model_drift_ratio', 'Relative L2 distance of the model from the median.'),
    networkSentBytesTotal: counter('phalanx_network_sent_bytes_total', 'Bytes sent, by plane.', ['plane']),
    networkReceivedBytesTotal: counter('phalanx_network_received_bytes_total', 'Bytes received.', ['plane']),
    telemetryDroppedEventsTotal: counter(
      'phalanx_telemetry_dropped_events_total',
      'Telemetry events lost because the outage buffer was full.',
    ),
    invalidPayloadsTotal: counter(
      'phalanx_invalid_payloads_total',
      'Control-plane payloads that failed schema validation.',
      ['kind', 'direction'],
    ),
    natsDisconnectsTotal: counter('phalanx_nats_disconnects_total', 'Times the NATS connection was lost.'),
    controlRejectedTotal: counter(
      'phalanx_control_rejected_total',
      'Control records (admit, evict, join, chaos) refused before anything was applied, by kind and reason.',
      ['kind', 'reason'],
    ),
    connectionsRefusedTotal: counter(
      'phalanx_connections_refused_total',
      'libp2p connections refused by the connection gater (non-members, graylisted strangers).',
    ),
    peersDisconnectedTotal: counter(
      'phalanx_peers_disconnected_total',
      'Connected non-member peers dropped for a score under the graylist threshold.',
    ),
    streamsRefusedTotal: counter(
      'phalanx_streams_refused_total',
      'Served payload and sync streams refused or cut short: over the per-peer concurrent streams or bytes per second, or idle.',
      ['reason'],
    ),
    stateRefusedTotal: counter(
      'phalanx_state_refused_total',
      'State files (state_file, watermark_file) refused at start-up and model signatures (signature) the signed-round watermark refused.',
      ['what'],
    ),
  }
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

/** Records one round's report in the metrics (what `createTelemetry({ metrics })` does on publish). */
export function observeRound(metrics: NodeMetrics, report: RoundReport): void {
  metrics.roundsTotal.inc()
  if (report.roundDurationSeconds !== undefined)
    metrics.roundDurationSeconds.observe(report.roundDurationSeconds)
  for (const [input, seconds] of Object.entries(report.quorumWaitByInputSeconds ?? {})) {
    if (seconds !== undefined) metrics.quorumWaitSeconds.observe({ input }, seconds)
  }
  if (report.accuracy !== undefined && Number.isFinite(report.accuracy))
    metrics.accuracyRatio.set(report.accuracy)
  for (const [reason, count] of Object.entries(report.rejected ?? {})) {
    if (count > 0) metrics.rejectedMessagesTotal.inc({ reason }, count)
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
