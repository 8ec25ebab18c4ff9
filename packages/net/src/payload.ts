/**
 * Direct-stream payload transfer (`/phalanx/payload/2.0.0`). A receiver that validated a signed
 * announcement asks a peer that has the payload — the one that relayed the announcement to it, or
 * the announcer — for it by hash; the server answers with a header and exactly the announced
 * number of raw bytes, and the caller checks the hash before use.
 *
 * Each pair of peers keeps one payload stream open and sends its requests over it one after the
 * other (2.0.0; 1.0.0 opened a stream per payload). Opening a stream costs a protocol
 * negotiation and, on both ends, a libp2p peer-store merge of the protocol into the peer's record
 * (decode, merge, re-encode): 8% of a cluster worker's CPU when every model received or relayed
 * opened one (docs/BENCHMARKS.md, "Where a worker's CPU goes").
 *
 * The fetcher receives into place (`receive.ts`: the list of every copy and pass on the way):
 * the announced size is bounded before the destination is allocated, and the bytes are copied,
 * hashed and scanned piece by piece as they come off the stream.
 */
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { type ByteStream, byteStream } from 'it-byte-stream'
import * as lp from 'it-length-prefixed'
import type { Logger } from 'pino'
import {
  decodePayloadHeader,
  decodePayloadRequest,
  encodePayloadHeader,
  encodePayloadRequest,
  toHex,
} from './codec.js'
import { netDefaults } from './defaults.js'
import type { PayloadPlaneName } from './encrypters.js'
import { PayloadProtocolError } from './errors.js'
import { type ByteBuckets, IdleTimer, type StreamRefusal } from './limits.js'
import { PayloadSink, type ReceivedPayload, sizeProblem } from './receive.js'

export const payloadProtocol = '/phalanx/payload/2.0.0'

/** Requests and headers are a few dozen bytes; anything longer is not this protocol. */
const maxControlMessageBytes = 1024

/**
 * A payload is taken off the stream in pieces of this size: about one Yamux frame (65 519 bytes,
 * one Noise frame), so each piece is copied, hashed and scanned while it is in cache and the
 * stream's read buffer holds at most two frames, instead of the whole payload until its last byte.
 */
const receivePieceBytes = 64 * 1024

/** Recent payloads by hash, evicting the oldest past a byte budget. */
export class PayloadStore {
  readonly #entries = new Map<string, Uint8Array>()
  #bytes = 0

  constructor(readonly capacityBytes: number) {}

  put(hash: string, payload: Uint8Array): void {
    if (this.#entries.has(hash)) return
    this.#entries.set(hash, payload)
    this.#bytes += payload.byteLength
    for (const [oldest, bytes] of this.#entries) {
      if (this.#bytes <= this.capacityBytes || oldest === hash) break
      this.#entries.delete(oldest)
      this.#bytes -= bytes.byteLength
    }
  }

  get(hash: string): Uint8Array | undefined {
    return this.#entries.get(hash)
  }

  get bytes(): number {
    return this.#bytes
  }
}

/**
 * Reads one varint-length-prefixed control message (a payload or sync request, a payload header)
 * from a byte stream;
 * `undefined` when the stream ends cleanly before its first byte, i.e. between two exchanges.
 */
export async function readControl(
  bytes: Pick<ByteStream<Stream>, 'read'>,
  signal?: AbortSignal,
): Promise<Uint8Array | undefined> {
  const options = signal === undefined ? {} : { signal }
  let length = 0
  for (let index = 0; ; index++) {
    if (index >= 5) throw new PayloadProtocolError('control message length is not a varint')
    let byte: number
    try {
      byte = (await bytes.read({ bytes: 1, ...options })).get(0)
    } catch (error) {
      if (index === 0 && (error as Error).name === 'UnexpectedEOFError') return undefined
      throw error
    }
    length += (byte & 0x7f) * 2 ** (7 * index)
    if ((byte & 0x80) === 0) break
  }
  if (length > maxControlMessageBytes) {
    throw new PayloadProtocolError(`control message of ${length} bytes, at most ${maxControlMessageBytes}`)
  }
  if (length === 0) return new Uint8Array(0)
  return (await bytes.read({ bytes: length, ...options })).subarray()
}

export interface ServeInit {
  cluster: string
  store: PayloadStore
  log: Logger
  onServed: (bytes: number) => void
  /** A stream on which no request arrives, or whose reader stops taking bytes, for this long is closed. */
  idleTimeoutMs: number
  /** Bytes per second per peer: a request over it is answered NOT_FOUND (the peer asks elsewhere). */
  buckets: ByteBuckets
  onRefused: (reason: StreamRefusal) => void
}

/**
 * Answers the payload requests of one stream, in order, from the store, until the requester
 * closes it; unknown hashes get NOT_FOUND, never an error, and so does a request over the peer's
 * byte budget (counted). A malformed request ends the stream, and so does `idleTimeoutMs` without
 * progress (counted).
 */
export async function servePayload(stream: Stream, remotePeer: PeerId, init: ServeInit): Promise<void> {
  const bytes = byteStream(stream)
  const peer = remotePeer.toString()
  const idle = new IdleTimer(init.idleTimeoutMs)
  try {
    for (;;) {
      idle.reset()
      const request = await readControl(bytes, idle.signal)
      if (request === undefined) break
      const decoded = decodePayloadRequest(request)
      if (decoded === undefined || decoded.cluster !== init.cluster) {
        stream.abort(new PayloadProtocolError('bad payload request'))
        return
      }
      let payload = init.store.get(toHex(decoded.hash))
      if (payload !== undefined && !init.buckets.take(peer, payload.byteLength)) {
        init.onRefused('rate')
        payload = undefined
      }
      idle.reset()
      await bytes.write(
        lp.encode.single(encodePayloadHeader(payload !== undefined, payload?.byteLength ?? 0)),
        { signal: idle.signal },
      )
      if (payload === undefined) continue
      // Written on its own: one write of header and payload together would copy the payload.
      idle.reset()
      await bytes.write(payload, { signal: idle.signal })
      init.onServed(payload.byteLength)
    }
    await stream.close()
  } catch (error) {
    if (idle.fired) init.onRefused('idle')
    init.log.debug({ peer, err: error, idle: idle.fired }, 'payload stream failed')
    stream.abort(error as Error)
  } finally {
    idle.clear()
  }
}

export interface FetchRequest {
  cluster: string
  round: number
  hash: Uint8Array
  /** Exactly this many bytes are expected; a peer offering more or fewer is refused. */
  size: number
}

/**
 * A payload received whole (not judged yet: the caller checks it against the signed header with
 * `checkReceived`), or why it was not.
 */
export type FetchResult =
  | ({ ok: true; plane: PayloadPlaneName } & ReceivedPayload)
  | { ok: false; detail: string }

export interface PayloadFetcherInit {
  /** The largest payload a request may ask for: the destination is allocated only below it. */
  maxPayloadBytes?: number
}

interface PeerChannel {
  /** The tail of this peer's exchanges: the next one starts when it settles (it never rejects). */
  queue: Promise<unknown>
  stream?: Stream
  bytes?: ByteStream<Stream>
}

/**
 * Pulls payloads from peers over one long-lived stream per peer, one exchange at a time, and
 * opens a new stream when the last one failed or was closed. An exchange that fails half-way
 * (timeout, short read, a header that does not fit) leaves the stream in an unknown state, so the
 * stream is dropped with it; a NOT_FOUND answer keeps it.
 */
export class PayloadFetcher {
  readonly #channels = new Map<string, PeerChannel>()
  readonly maxPayloadBytes: number

  constructor(
    readonly libp2p: Libp2p,
    init: PayloadFetcherInit = {},
  ) {
    this.maxPayloadBytes = init.maxPayloadBytes ?? netDefaults.maxPayloadBytes
  }

  /** Pulls one payload from one peer. Never throws: failures come back as `{ ok: false }`. */
  fetch(peer: PeerId, request: FetchRequest, signal: AbortSignal): Promise<FetchResult> {
    // Refused before any stream or memory is touched (validation refuses such an announcement
    // as `oversize` already; this holds for every caller).
    const problem = sizeProblem(request.size, this.maxPayloadBytes)
    if (problem !== undefined) return Promise.resolve({ ok: false, detail: problem })
    const key = peer.toString()
    let channel = this.#channels.get(key)
    if (channel === undefined) {
      channel = { queue: Promise.resolve() }
      this.#channels.set(key, channel)
    }
    const current = channel
    const result = current.queue.then(() => this.#exchange(current, peer, request, signal))
    current.queue = result
    return result
  }

  /** Drops a peer's stream (it disconnected, or this node stops). */
  forget(peer: PeerId): void {
    const key = peer.toString()
    const channel = this.#channels.get(key)
    this.#channels.delete(key)
    channel?.stream?.abort(new PayloadProtocolError('peer forgotten'))
  }

  /** Drops every stream. */
  close(): void {
    for (const channel of this.#channels.values()) channel.stream?.abort(new PayloadProtocolError('closing'))
    this.#channels.clear()
  }

  /** Open payload streams, one per peer at most. */
  get openStreams(): number {
    return [...this.#channels.values()].filter((c) => c.stream?.status === 'open').length
  }

  /**
   * One exchange. A stream kept open from an earlier exchange may have been closed by the peer
   * meanwhile (its idle timeout): when it fails before any answer, it is retried once on a new
   * stream, so an idle close never costs a fetch.
   */
  async #exchange(
    channel: PeerChannel,
    peer: PeerId,
    request: FetchRequest,
    signal: AbortSignal,
  ): Promise<FetchResult> {
    if (signal.aborted) return { ok: false, detail: 'timed out waiting for an earlier fetch from this peer' }
    const reused = channel.stream?.status === 'open' && channel.bytes !== undefined
    let result = await this.#attempt(channel, peer, request, signal)
    if (!result.ok && reused && result.unanswered === true && !signal.aborted)
      result = await this.#attempt(channel, peer, request, signal)
    return result.ok ? result : { ok: false, detail: result.detail }
  }

  async #attempt(
    channel: PeerChannel,
    peer: PeerId,
    request: FetchRequest,
    signal: AbortSignal,
  ): Promise<FetchResult & { unanswered?: boolean }> {
    let answered = false
    const fail = (detail: string): FetchResult & { unanswered: boolean } => {
      channel.stream?.abort(new PayloadProtocolError(detail))
      delete channel.stream
      delete channel.bytes
      return { ok: false, detail, unanswered: !answered }
    }
    try {
      if (channel.stream?.status !== 'open' || channel.bytes === undefined) {
        const stream = await this.libp2p.dialProtocol(peer, payloadProtocol, { signal })
        channel.stream = stream
        channel.bytes = byteStream(stream)
      }
      const bytes = channel.bytes
      await bytes.write(lp.encode.single(encodePayloadRequest(request)), { signal })
      const first = await readControl(bytes, signal)
      if (first === undefined) return fail('stream closed before an answer')
      answered = true
      const header = decodePayloadHeader(first)
      if (header === undefined) return fail('bad payload header')
      if (!header.found) return { ok: false, detail: 'peer does not have the payload' }
      // The peer would send header.size bytes, which the stream cannot skip safely.
      if (header.size !== request.size)
        return fail(`peer offers ${header.size} bytes, announced ${request.size}`)
      const sink = PayloadSink.open(request.size, this.maxPayloadBytes)
      if (typeof sink === 'string') return fail(sink)
      while (sink.received < sink.size) {
        const piece = await bytes.read({
          bytes: Math.min(receivePieceBytes, sink.size - sink.received),
          signal,
        })
        // A piece spans at most a few of the stream's buffers: each is copied into place as is.
        for (const chunk of piece) sink.write(chunk)
      }
      return { ok: true, plane: 'libp2p', ...sink.finish() }
    } catch (error) {
      return fail((error as Error).message)
    }
  }
}
