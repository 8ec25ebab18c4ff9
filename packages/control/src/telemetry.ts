/**
 * Per-round telemetry. Publishing never waits and never throws, because a training round must not
 * depend on the control plane: while NATS is away events go to a bounded buffer (oldest dropped and
 * counted), the outage is logged once, and the buffer is flushed in order when NATS returns.
 *
 * Events are signed by the node's libp2p peer key (`signer`), and a watcher given `verifyPeer`
 * shows only events whose signature checks out, that arrived on their own node's subject, and
 * whose peer id is the one pinned for that node id (the configured members', else the first
 * verified one). Anyone who can publish on a telemetry subject could otherwise pin a node's row
 * at a forged round 2⁴⁰; the rest are counted by reason.
 */
import type { Subscription } from '@nats-io/transport-node'
import type { ControlConnection } from './connection.js'
import { createLogOnce } from './connection.js'
import type { PeerSignatureVerifier } from './operator.js'
import { canonicalJson } from './operator.js'
import type { NodeMetrics } from './ops.js'
import { observeRound } from './ops.js'
import type { RoundReport } from './round-report.js'
import type { Role, TelemetryEvent } from './subjects.js'
import { TelemetryEventSchema } from './subjects.js'

export type { RoundReport } from './round-report.js'

export interface TelemetryStats {
  /** Events handed to the NATS client (including flushed ones). */
  published: number
  /** Events currently waiting in the outage buffer. */
  buffered: number
  /** Events lost because the buffer was full (oldest first). */
  dropped: number
  /** Events rejected by the schema (a caller bug; counted by the connection too). */
  invalid: number
  /** Outages seen by this publisher (each logged once). */
  outages: number
  /** Events not published because signing failed (logged once). */
  signFailures: number
}

export interface TelemetryPublisher {
  publish(report: RoundReport): void
  stats(): TelemetryStats
  /** Resolves once every event published so far has been signed and handed on (tests, shutdown). */
  settled(): Promise<void>
  close(): void
}

/** Why a watcher did not show an event (`TelemetryWatch.refused()`). */
export const telemetryRefusals = [
  'malformed',
  'unsigned',
  'bad_signature',
  /** Published on another node's subject than the node id it claims. */
  'wrong_subject',
  /** Signed by another key than the one pinned for its node id. */
  'wrong_peer',
  /** More distinct node ids than `maxNodes`. */
  'too_many_nodes',
  /** More events awaiting verification than `queueLimit`. */
  'overload',
] as const
export type TelemetryRefusal = (typeof telemetryRefusals)[number]

export interface TelemetryWatch extends AsyncIterable<TelemetryEvent> {
  /** The newest event of every node seen so far (highest round, then newest timestamp). */
  latest(): TelemetryEvent[]
  /** Events not shown, by reason (all zero without `verifyPeer`, except `malformed`). */
  refused(): Readonly<Record<TelemetryRefusal, number>>
  stop(): void
}

export interface WatchTelemetryInit {
  conn: ControlConnection
  onEvent?: (event: TelemetryEvent) => void
  /** Only this node's events (default: every node of the cluster). */
  nodeId?: string
  queueLimit?: number
  /**
   * Checks a peer signature (`verifyPeerSignature` of @phalanx/net). Given: only signed events
   * that verify are shown. Absent: every well-formed event is (tests, trusted local runs).
   */
  verifyPeer?: PeerSignatureVerifier
  /**
   * The peer id a node id must be signed by, where known (the configured members); for other node
   * ids the first verified event pins it.
   */
  expectedPeerId?: (nodeId: string) => string | undefined
  /** Distinct node ids tracked; events of further ones are refused (`too_many_nodes`). */
  maxNodes?: number
}

/** Signs telemetry with the node's peer key. */
export interface TelemetrySigner {
  /** The node's libp2p peer id: what a watcher checks the signature against. */
  peerId: string
  sign(statement: Uint8Array): Promise<Uint8Array> | Uint8Array
}

export interface RenderTableOptions {
  /** When given, an AGE_S column shows how long ago each node reported. */
  nowMs?: number
}

export interface TelemetryInit {
  conn: ControlConnection
  nodeId: string
  role: Role
  /** When given, every published report is also recorded in these Prometheus metrics. */
  metrics?: NodeMetrics
  /** When given, every event carries `peerId` and a signature (node code passes the libp2p node's). */
  signer?: TelemetrySigner
  bufferLimit?: number
  now?: () => number
}

const TELEMETRY_DOMAIN = 'phalanx-telemetry/v1\n'
const textEncoder = new TextEncoder()

/**
 * The bytes a telemetry event's signature covers: a domain tag (so no other signed message of the
 * system can pass for telemetry) and the canonical JSON of every field but the signature.
 */
export function telemetryStatement(event: TelemetryEvent): Uint8Array {
  const { signature: _ignored, ...signed } = event
  return textEncoder.encode(TELEMETRY_DOMAIN + canonicalJson(signed))
}

const TELEMETRY_DEFAULTS = {
  // ~1 KiB per event, so at most ~1 MiB of memory; at one round per second that is 17 minutes of
  // history, longer than any NATS restart, while a dead NATS cannot grow the heap without bound.
  bufferLimit: 1024,
  now: () => Date.now(),
} as const

export function createTelemetry(init: TelemetryInit): TelemetryPublisher {
  const bufferLimit = init.bufferLimit ?? TELEMETRY_DEFAULTS.bufferLimit
  const now = init.now ?? TELEMETRY_DEFAULTS.now
  const { conn } = init
  const log = conn.log.child({ component: 'telemetry' })
  const subject = conn.subjects.telemetry(init.nodeId)
  const buffer: TelemetryEvent[] = []
  const stats: TelemetryStats = {
    published: 0,
    buffered: 0,
    dropped: 0,
    invalid: 0,
    outages: 0,
    signFailures: 0,
  }
  const logOnce = createLogOnce(log)
  let inOutage = false
  let droppedThisOutage = 0
  // Signing is asynchronous (the libp2p key's API): events are signed one after the other, so they
  // leave in the order they were published, and at most `bufferLimit` wait to be signed.
  let signing: Promise<void> = Promise.resolve()
  let awaitingSignature = 0

  const bufferEvent = (event: TelemetryEvent): void => {
    if (!inOutage) {
      inOutage = true
      droppedThisOutage = 0
      stats.outages += 1
      log.warn(
        { bufferLimit, state: conn.state() },
        'NATS unavailable: buffering telemetry (oldest dropped beyond the limit); training continues',
      )
    }
    buffer.push(event)
    if (buffer.length > bufferLimit) {
      buffer.shift()
      stats.dropped += 1
      droppedThisOutage += 1
      conn.metrics?.telemetryDropped(1)
    }
  }

  /** Sends what was buffered, oldest first; stops at the first event the client does not take. */
  const flush = (): void => {
    let flushed = 0
    while (buffer.length > 0) {
      const outcome = conn.publish('telemetry', subject, buffer[0]!)
      if (outcome === 'not-connected' || outcome === 'failed') break
      buffer.shift()
      if (outcome === 'sent') {
        stats.published += 1
        flushed += 1
      } else {
        stats.invalid += 1
      }
    }
    if (inOutage && buffer.length === 0) {
      inOutage = false
      log.info({ flushed, dropped: droppedThisOutage }, 'NATS back: telemetry buffer flushed')
    }
  }

  const unsubscribe = conn.onStateChange((state) => {
    if (state === 'connected') flush()
  })

  const deliver = (event: TelemetryEvent): void => {
    if (buffer.length > 0 && conn.state() === 'connected') flush()
    if (buffer.length > 0) {
      bufferEvent(event)
      return
    }
    const outcome = conn.publish('telemetry', subject, event)
    if (outcome === 'sent') stats.published += 1
    else if (outcome === 'not-connected' || outcome === 'failed') bufferEvent(event)
    else stats.invalid += 1
  }

  const signAndDeliver = async (signer: TelemetrySigner, event: TelemetryEvent): Promise<void> => {
    // Signed exactly as it will be encoded: the schema's output, which is what a watcher decodes.
    const parsed = TelemetryEventSchema.safeParse({ ...event, peerId: signer.peerId })
    if (!parsed.success) {
      // Published unsigned, so the connection counts and logs the invalid payload as it always has.
      deliver(event)
      return
    }
    try {
      const signature = await signer.sign(telemetryStatement(parsed.data))
      deliver({ ...parsed.data, signature: Buffer.from(signature).toString('base64url') })
    } catch (error) {
      stats.signFailures += 1
      logOnce('sign-failed', { err: error }, 'telemetry signing failed; event not published (logged once)')
    }
  }

  return {
    publish(report) {
      if (init.metrics !== undefined) observeRound(init.metrics, report)
      const event: TelemetryEvent = {
        timestampMs: Math.round(now()),
        quorumWaitSeconds: 0,
        ...definedFields(withoutLocalFields(report)),
        // The publisher's identity, whatever a record handed in says.
        nodeId: init.nodeId,
        role: init.role,
        round: report.round,
        rejected: { ...(report.rejected ?? {}) },
        suspicions: [...(report.suspicions ?? [])],
      }
      const signer = init.signer
      if (signer === undefined) {
        deliver(event)
        return
      }
      if (awaitingSignature >= bufferLimit) {
        stats.dropped += 1
        conn.metrics?.telemetryDropped(1)
        return
      }
      awaitingSignature += 1
      signing = signing
        .then(() => signAndDeliver(signer, event))
        .finally(() => {
          awaitingSignature -= 1
        })
    },
    stats: () => ({ ...stats, buffered: buffer.length }),
    settled: () => signing,
    close() {
      unsubscribe()
    },
  }
}

/**
 * The report's fields the telemetry schema has: the record's local ones (and anything else a
 * caller's object carries, such as a node report's `type`) stay here.
 */
function withoutLocalFields(report: RoundReport): Partial<TelemetryEvent> {
  return Object.fromEntries(
    Object.entries(report).filter(([key]) => Object.hasOwn(TelemetryEventSchema.shape, key)),
  ) as Partial<TelemetryEvent>
}

function definedFields<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}

const WATCH_DEFAULTS = {
  // An iterator nobody drains must not grow without bound; the table only needs the latest events.
  queueLimit: 10_000,
  // Far above any real cluster's node count; a flood of invented node ids stops here.
  maxNodes: 1_024,
} as const

type TelemetryVerdict = { ok: true } | { ok: false; reason: TelemetryRefusal }

/** Subscribes to telemetry; resolves once the subscription is registered on the server. */
export async function watchTelemetry(init: WatchTelemetryInit): Promise<TelemetryWatch> {
  const { conn } = init
  const queueLimit = init.queueLimit ?? WATCH_DEFAULTS.queueLimit
  const maxNodes = init.maxNodes ?? WATCH_DEFAULTS.maxNodes
  const log = conn.log.child({ component: 'telemetry-watch' })
  const logOnce = createLogOnce(log)
  const nc = await conn.connected()
  const latestByNode = new Map<string, TelemetryEvent>()
  /** Peer id each node id is bound to: configured, or pinned by its first verified event. */
  const pinned = new Map<string, string>()
  const refused = Object.fromEntries(telemetryRefusals.map((reason) => [reason, 0])) as Record<
    TelemetryRefusal,
    number
  >
  const queue: TelemetryEvent[] = []
  let wake: (() => void) | undefined
  let stopped = false
  let verifying: Promise<void> = Promise.resolve()
  let awaitingVerification = 0
  const subject =
    init.nodeId === undefined ? conn.subjects.telemetryAll : conn.subjects.telemetry(init.nodeId)

  const refuse = (reason: TelemetryRefusal, fields: Record<string, unknown>): void => {
    refused[reason] += 1
    logOnce(`refused:${reason}`, { reason, ...fields }, 'telemetry event not shown (logged once per reason)')
  }

  const accept = (event: TelemetryEvent): void => {
    const previous = latestByNode.get(event.nodeId)
    if (previous === undefined || isNewer(event, previous)) latestByNode.set(event.nodeId, event)
    init.onEvent?.(event)
    queue.push(event)
    if (queue.length > queueLimit) queue.shift()
    wake?.()
  }

  const verify = async (
    verifyPeer: PeerSignatureVerifier,
    event: TelemetryEvent,
    msgSubject: string,
  ): Promise<TelemetryVerdict> => {
    if (msgSubject !== conn.subjects.telemetry(event.nodeId)) return { ok: false, reason: 'wrong_subject' }
    if (event.peerId === undefined || event.signature === undefined) return { ok: false, reason: 'unsigned' }
    const expected = pinned.get(event.nodeId) ?? init.expectedPeerId?.(event.nodeId)
    if (expected !== undefined && expected !== event.peerId) return { ok: false, reason: 'wrong_peer' }
    if (expected === undefined && pinned.size >= maxNodes) return { ok: false, reason: 'too_many_nodes' }
    const signature = Buffer.from(event.signature, 'base64url')
    if (!(await verifyPeer(event.peerId, telemetryStatement(event), signature))) {
      return { ok: false, reason: 'bad_signature' }
    }
    // Re-checked after the await: another event of the same node id may have pinned it meanwhile.
    const now = pinned.get(event.nodeId)
    if (now !== undefined && now !== event.peerId) return { ok: false, reason: 'wrong_peer' }
    pinned.set(event.nodeId, event.peerId)
    return { ok: true }
  }

  const sub: Subscription = nc.subscribe(subject, {
    callback: (error, msg) => {
      if (error !== null) return
      const event = conn.decode('telemetry', msg.data)
      if (event === undefined) {
        refused.malformed += 1
        return
      }
      const verifyPeer = init.verifyPeer
      if (verifyPeer === undefined) {
        if (latestByNode.has(event.nodeId) || latestByNode.size < maxNodes) accept(event)
        else refuse('too_many_nodes', { nodeId: event.nodeId })
        return
      }
      if (awaitingVerification >= queueLimit) {
        refuse('overload', { queueLimit })
        return
      }
      awaitingVerification += 1
      // One at a time, in arrival order: the first verified event of a node id is the one that pins it.
      verifying = verifying
        .then(async () => {
          const verdict = await verify(verifyPeer, event, msg.subject)
          if (stopped) return
          if (verdict.ok) accept(event)
          else refuse(verdict.reason, { nodeId: event.nodeId, peerId: event.peerId, subject: msg.subject })
        })
        .catch((cause: unknown) => log.error({ err: cause }, 'telemetry verification failed'))
        .finally(() => {
          awaitingVerification -= 1
        })
    },
  })
  await nc.flush()
  return {
    latest: () => [...latestByNode.values()],
    refused: () => ({ ...refused }),
    stop() {
      stopped = true
      sub.unsubscribe()
      wake?.()
    },
    async *[Symbol.asyncIterator]() {
      while (true) {
        const next = queue.shift()
        if (next !== undefined) {
          yield next
          continue
        }
        if (stopped || sub.isClosed()) return
        await new Promise<void>((resolve) => {
          wake = resolve
        })
        wake = undefined
      }
    },
  }
}

function isNewer(a: TelemetryEvent, b: TelemetryEvent): boolean {
  return a.round > b.round || (a.round === b.round && a.timestampMs >= b.timestampMs)
}

/** Plain-text table of the latest event per node: servers first, then workers, by node id. */
export function renderClusterTable(
  events: Iterable<TelemetryEvent>,
  options: RenderTableOptions = {},
): string {
  const latest = new Map<string, TelemetryEvent>()
  for (const event of events) {
    const previous = latest.get(event.nodeId)
    if (previous === undefined || isNewer(event, previous)) latest.set(event.nodeId, event)
  }
  if (latest.size === 0) return 'no telemetry yet'
  const rows = [...latest.values()].sort((a, b) =>
    a.role === b.role
      ? a.nodeId < b.nodeId
        ? -1
        : a.nodeId > b.nodeId
          ? 1
          : 0
      : a.role === 'server'
        ? -1
        : 1,
  )
  const header = [
    'NODE',
    'ROLE',
    'ROUND',
    'ACCURACY',
    'LOSS',
    'DRIFT',
    'QUORUM_WAIT_S',
    'REJECTED',
    'SUSPECTS',
  ]
  if (options.nowMs !== undefined) header.push('AGE_S')
  const body = rows.map((event) => {
    const cells = [
      event.nodeId,
      event.role,
      String(event.round),
      event.accuracy === undefined ? '-' : `${(event.accuracy * 100).toFixed(1)}%`,
      formatNumber(event.loss),
      formatNumber(event.drift),
      event.quorumWaitSeconds.toFixed(3),
      formatRejected(event.rejected),
      event.suspicions.length === 0 ? '-' : event.suspicions.map((s) => `${s.suspect}:${s.reason}`).join(','),
    ]
    if (options.nowMs !== undefined) cells.push(((options.nowMs - event.timestampMs) / 1000).toFixed(1))
    return cells
  })
  const widths = header.map((title, column) =>
    Math.max(title.length, ...body.map((cells) => cells[column]!.length)),
  )
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => cell.padEnd(widths[column]!))
      .join('  ')
      .trimEnd()
  return [line(header), ...body.map(line)].join('\n')
}

function formatNumber(value: number | undefined): string {
  return value === undefined ? '-' : String(Number(value.toPrecision(4)))
}

function formatRejected(rejected: Readonly<Record<string, number>>): string {
  const reasons = Object.entries(rejected)
    .filter(([, count]) => count > 0)
    .sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1))
  if (reasons.length === 0) return '0'
  const total = reasons.reduce((sum, [, count]) => sum + count, 0)
  return `${total} (${reasons.map(([reason, count]) => `${reason}:${count}`).join(',')})`
}
