import { type PayloadPlaneName, payloadPlaneNames } from './encrypters.js'
import { type StreamRefusal, streamRefusals } from './limits.js'
import { type RejectReason, rejectReasons } from './types.js'

export const payloadPlaneRefusals = ['outsider', 'binding', 'malformed'] as const
export type PayloadPlaneRefusal = (typeof payloadPlaneRefusals)[number]

/**
 * Monotonic counters of one node, readable by other packages (the control plane exports them as
 * metrics). Names end in their unit.
 */
export interface NetCounters {
  /** Vector messages that reached the validation pipeline. */
  readonly messages_received_total: number
  readonly messages_delivered_total: number
  /** Vectors delivered from a peer's sync answer rather than from gossip (a straggler's pull). */
  readonly messages_synced_total: number
  /** Rejections by reason; every reason is present, zero when it never happened. */
  readonly messages_rejected_total: Readonly<Record<RejectReason, number>>
  readonly equivocations_total: number
  /** Connections the gater refused: a non-member of a closed set, or a graylisted stranger. */
  readonly connections_refused_total: number
  /** Connections closed to non-members graylisted for the invalid messages they handed us. */
  readonly peers_disconnected_total: number
  readonly payload_fetched_bytes_total: number
  /** The same bytes by the plane that carried them (`payloadPlane`: a fallback shows as libp2p). */
  readonly payload_fetched_plane_bytes_total: Readonly<Record<PayloadPlaneName, number>>
  readonly payload_served_bytes_total: number
  /** Bytes of sync answers served to stragglers. */
  readonly sync_served_bytes_total: number
  /**
   * Served payload and sync streams refused or cut short, by reason: a peer over its concurrent
   * streams, over its bytes per second, or idle past `streamIdleTimeoutMs`.
   */
  readonly streams_refused_total: Readonly<Record<StreamRefusal, number>>
  /**
   * Sockets and requests the TLS payload plane refused, by reason: a peer that proved it is no
   * member (`outsider`), a binding that failed or never came (`binding`, failed TLS handshakes
   * included), a request that is not the protocol (`malformed`). Outsiders and failed bindings
   * also count in `connections_refused_total`.
   */
  readonly payload_plane_refused_total: Readonly<Record<PayloadPlaneRefusal, number>>
  /** Payload fetches that went over the libp2p stream because the TLS plane could not be used. */
  readonly payload_plane_fallbacks_total: number
  /**
   * Bytes written to this node's TCP connections, every protocol and its framing included:
   * libp2p's and the TLS payload plane's sockets.
   */
  readonly wire_sent_bytes_total: number
  /** Bytes read from this node's TCP connections (libp2p's and the TLS payload plane's). */
  readonly wire_received_bytes_total: number
}

export class MutableNetCounters implements NetCounters {
  messages_received_total = 0
  messages_delivered_total = 0
  messages_synced_total = 0
  readonly messages_rejected_total: Record<RejectReason, number>
  equivocations_total = 0
  connections_refused_total = 0
  peers_disconnected_total = 0
  payload_fetched_bytes_total = 0
  readonly payload_fetched_plane_bytes_total: Record<PayloadPlaneName, number> = Object.fromEntries(
    payloadPlaneNames.map((plane) => [plane, 0]),
  ) as Record<PayloadPlaneName, number>
  payload_served_bytes_total = 0
  sync_served_bytes_total = 0
  readonly streams_refused_total: Record<StreamRefusal, number> = Object.fromEntries(
    streamRefusals.map((reason) => [reason, 0]),
  ) as Record<StreamRefusal, number>
  readonly payload_plane_refused_total: Record<PayloadPlaneRefusal, number> = Object.fromEntries(
    payloadPlaneRefusals.map((reason) => [reason, 0]),
  ) as Record<PayloadPlaneRefusal, number>
  payload_plane_fallbacks_total = 0
  wire_sent_bytes_total = 0
  wire_received_bytes_total = 0

  constructor() {
    this.messages_rejected_total = Object.fromEntries(rejectReasons.map((reason) => [reason, 0])) as Record<
      RejectReason,
      number
    >
  }

  reject(reason: RejectReason): void {
    this.messages_rejected_total[reason]++
  }

  /** A plain-object copy, safe to serialise or compare. */
  snapshot(): NetCounters {
    return {
      messages_received_total: this.messages_received_total,
      messages_delivered_total: this.messages_delivered_total,
      messages_synced_total: this.messages_synced_total,
      messages_rejected_total: { ...this.messages_rejected_total },
      equivocations_total: this.equivocations_total,
      connections_refused_total: this.connections_refused_total,
      peers_disconnected_total: this.peers_disconnected_total,
      payload_fetched_bytes_total: this.payload_fetched_bytes_total,
      payload_fetched_plane_bytes_total: { ...this.payload_fetched_plane_bytes_total },
      payload_served_bytes_total: this.payload_served_bytes_total,
      sync_served_bytes_total: this.sync_served_bytes_total,
      streams_refused_total: { ...this.streams_refused_total },
      payload_plane_refused_total: { ...this.payload_plane_refused_total },
      payload_plane_fallbacks_total: this.payload_plane_fallbacks_total,
      wire_sent_bytes_total: this.wire_sent_bytes_total,
      wire_received_bytes_total: this.wire_received_bytes_total,
    }
  }
}
