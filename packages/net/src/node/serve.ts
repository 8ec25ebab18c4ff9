import type { PeerId, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import type { RelayedFields } from '../codec.js'
import type { MutableNetCounters } from '../counters.js'
import { ByteBuckets, type StreamRefusal, StreamSlots } from '../limits.js'
import type { PayloadStore } from '../payload.js'
import type { PayloadChannel, PayloadServeInit } from '../payload-channel.js'
import { serveSync, syncProtocol } from '../sync.js'
import type { VectorKind } from '../types.js'
import type { ResolvedNetNodeInit } from './init.js'
import type { NetLibp2p } from './libp2p.js'

export interface ServeParts {
  libp2p: NetLibp2p
  init: ResolvedNetNodeInit
  counters: MutableNetCounters
  log: Logger
  /** Payloads peers may pull by hash. */
  store: PayloadStore
  /** Where peers pull them: the libp2p stream always (mixed versions), the TLS plane when on. */
  payloadChannels: readonly PayloadChannel[]
  /** The signed messages held for `kind` from `fromRound` on, for a sync answer (the inbox's `held`). */
  held(kind: VectorKind, fromRound: number): Iterable<RelayedFields>
}

/**
 * What this node serves to its peers over direct streams: payloads by hash
 * (`/phalanx/payload/…`) and the signed vectors it holds (`/phalanx/sync/…`), each peer within
 * its stream slots (`maxStreamsPerPeer`) and its byte bucket (`servedBytesPerSecond`).
 */
export async function serveStreams(parts: ServeParts): Promise<void> {
  const { libp2p, init, counters, log, store } = parts
  /** Inbound payload and sync streams per peer (`maxStreamsPerPeer`). */
  const slots = new StreamSlots(init.maxStreamsPerPeer)
  /** Bytes served per peer per second (`servedBytesPerSecond`). */
  const buckets = new ByteBuckets(init.servedBytesPerSecond, init.servedBurstBytes, init.maxRateLimitedPeers)
  const refuseStream = (reason: StreamRefusal, peer: PeerId, protocol: string): void => {
    counters.streams_refused_total[reason]++
    log.debug({ reason, peer: peer.toString(), protocol }, 'served stream refused')
  }
  /** Runs one served stream inside the peer's stream slots; a peer over its limit is refused. */
  const serveStream = (stream: Stream, peer: PeerId, serve: () => Promise<void>): void => {
    const release = slots.acquire(peer.toString())
    if (release === undefined) {
      refuseStream('concurrent', peer, stream.protocol ?? '')
      stream.abort(new Error(`more than ${init.maxStreamsPerPeer} streams open`))
      return
    }
    void serve().finally(release)
  }
  const servePayloads: PayloadServeInit = {
    cluster: init.cluster,
    store,
    log,
    slots,
    buckets,
    idleTimeoutMs: init.streamIdleTimeoutMs,
    onServed: (bytes) => {
      counters.payload_served_bytes_total += bytes
    },
    onRefused: (reason, peer) => {
      if (reason === 'concurrent' || reason === 'rate' || reason === 'idle')
        counters.streams_refused_total[reason]++
      else {
        counters.payload_plane_refused_total[reason]++
        if (reason !== 'malformed') counters.connections_refused_total++
      }
      log.debug({ reason, peer }, 'served payload refused')
    },
  }
  for (const channel of parts.payloadChannels) await channel.serve(servePayloads)
  await libp2p.handle(
    syncProtocol,
    ({ stream, connection }) =>
      serveStream(stream, connection.remotePeer, () =>
        serveSync(stream, connection.remotePeer, {
          cluster: init.cluster,
          // Read as the stream takes them, converted one at a time: nothing is copied up front.
          held: (kind, fromRound) => parts.held(kind, fromRound),
          log,
          idleTimeoutMs: init.streamIdleTimeoutMs,
          buckets,
          onRefused: (reason) => refuseStream(reason, connection.remotePeer, syncProtocol),
          onServed: (bytes) => {
            counters.sync_served_bytes_total += bytes
          },
        }),
      ),
    { maxInboundStreams: init.maxPayloadStreams, maxOutboundStreams: init.maxPayloadStreams },
  )
}
