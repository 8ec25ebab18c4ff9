/**
 * Where a payload's bytes travel, behind one interface: a receiver that validated a signed
 * announcement `fetch`es the payload from a peer into place (`receive.ts`), and every node
 * `serve`s its store to its peers. Two planes implement it: `Libp2pPayloadChannel`, the
 * `/phalanx/payload/2.0.0` stream over the libp2p connection (Yamux over Noise), and
 * `TlsPayloadChannel` (`tls-plane/channel.ts`), a socket of Node's own TLS beside libp2p for the
 * bulk bytes, authenticated by channel binding to the peers' libp2p keys. Both deliver the same
 * `FetchResult`, checked by the caller against the signed header before anyone sees it, and both
 * answer the same compliance suite (`test/payload-channel.test.ts`).
 */
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Logger } from 'pino'
import type { PayloadPlaneName } from './encrypters.js'
import type { ByteBuckets, StreamRefusal, StreamSlots } from './limits.js'
import {
  type FetchRequest,
  type FetchResult,
  PayloadFetcher,
  type PayloadStore,
  payloadProtocol,
  servePayload,
} from './payload.js'

/** The planes' names come from one list, `payloadPlaneNames` (`encrypters.ts`). */
export type PayloadPlane = PayloadPlaneName

/**
 * Why a served payload exchange, stream or socket was refused: the stream limits of
 * `limits.ts`, and the TLS plane's own (an outsider or a failed binding before any request
 * is read, a request that is not this protocol).
 */
export type PayloadRefusal = StreamRefusal | 'outsider' | 'binding' | 'malformed'

export interface PayloadServeInit {
  cluster: string
  store: PayloadStore
  log: Logger
  /** Inbound payload streams or sockets per peer (`maxStreamsPerPeer`), shared with sync streams. */
  slots: StreamSlots
  /** Bytes per second per peer: a request over it is answered NOT_FOUND (the peer asks elsewhere). */
  buckets: ByteBuckets
  /** A stream or socket on which nothing moves for this long is closed. */
  idleTimeoutMs: number
  onServed(bytes: number): void
  onRefused(reason: PayloadRefusal, peer: string): void
}

export interface PayloadChannel {
  readonly plane: PayloadPlane
  /** Starts answering peers' payload requests from `init.store`. */
  serve(init: PayloadServeInit): Promise<void>
  /** Pulls one payload from one peer into place. Never throws: failures are `{ ok: false }`. */
  fetch(peer: PeerId, request: FetchRequest, signal: AbortSignal): Promise<FetchResult>
  /** Drops what is open to a peer (it disconnected). */
  forget(peer: PeerId): void
  /** Drops every connection and stops serving. */
  close(): Promise<void>
}

export interface Libp2pPayloadChannelInit {
  maxPayloadBytes?: number
  /** Served streams of this protocol in all (libp2p's per-protocol stream limits). */
  maxStreams?: number
}

/** The payload protocol over libp2p streams (`payload.ts`), as a `PayloadChannel`. */
export class Libp2pPayloadChannel implements PayloadChannel {
  readonly plane = 'libp2p'
  readonly #libp2p: Libp2p
  readonly #fetcher: PayloadFetcher
  readonly #maxStreams: number | undefined

  constructor(libp2p: Libp2p, init: Libp2pPayloadChannelInit = {}) {
    this.#libp2p = libp2p
    this.#fetcher = new PayloadFetcher(
      libp2p,
      init.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: init.maxPayloadBytes },
    )
    this.#maxStreams = init.maxStreams
  }

  get maxPayloadBytes(): number {
    return this.#fetcher.maxPayloadBytes
  }

  /** Open payload streams, one per peer at most. */
  get openStreams(): number {
    return this.#fetcher.openStreams
  }

  async serve(init: PayloadServeInit): Promise<void> {
    const limits =
      this.#maxStreams === undefined
        ? {}
        : { maxInboundStreams: this.#maxStreams, maxOutboundStreams: this.#maxStreams }
    await this.#libp2p.handle(
      payloadProtocol,
      ({ stream, connection }) => {
        const peer = connection.remotePeer.toString()
        const release = init.slots.acquire(peer)
        if (release === undefined) {
          init.onRefused('concurrent', peer)
          ;(stream as Stream).abort(new Error(`more than ${init.slots.maxPerPeer} streams open`))
          return
        }
        void servePayload(stream, connection.remotePeer, {
          cluster: init.cluster,
          store: init.store,
          log: init.log,
          onServed: init.onServed,
          idleTimeoutMs: init.idleTimeoutMs,
          buckets: init.buckets,
          onRefused: (reason) => init.onRefused(reason, peer),
        }).finally(release)
      },
      limits,
    )
  }

  fetch(peer: PeerId, request: FetchRequest, signal: AbortSignal): Promise<FetchResult> {
    return this.#fetcher.fetch(peer, request, signal)
  }

  forget(peer: PeerId): void {
    this.#fetcher.forget(peer)
  }

  async close(): Promise<void> {
    this.#fetcher.close()
  }
}
