/**
 * Direct-stream payload transfer (`/phalanx/payload/1.0.0`). A receiver that validated a signed
 * announcement asks a peer that has the payload — the one that relayed the announcement to it, or
 * the announcer — for it by hash; the server answers with a header and the raw bytes. The receiver
 * refuses anything longer than the announced size, and the caller checks the hash before use.
 */
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import * as lp from 'it-length-prefixed'
import type { Logger } from 'pino'
import type { Uint8ArrayList } from 'uint8arraylist'
import {
  decodePayloadHeader,
  decodePayloadRequest,
  encodePayloadHeader,
  encodePayloadRequest,
  toHex,
} from './codec.js'

export const payloadProtocol = '/phalanx/payload/1.0.0'

/** Requests and headers are a few dozen bytes; anything longer is not this protocol. */
const maxControlMessageBytes = 1024

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
 * Reads one varint-length-prefixed message from the front of a stream; returns it with the bytes
 * that followed it in the last chunk.
 */
export async function readPrefixed(
  source: AsyncIterator<Uint8ArrayList | Uint8Array>,
): Promise<{ message: Uint8Array; rest: Uint8Array[] } | undefined> {
  let buffered = new Uint8Array(0)
  for (;;) {
    // Parse the varint prefix from what we have so far.
    let length = 0
    let shift = 0
    let index = 0
    let complete = false
    while (index < buffered.byteLength && index < 5) {
      const byte = buffered[index]!
      length += (byte & 0x7f) * 2 ** shift
      shift += 7
      index++
      if ((byte & 0x80) === 0) {
        complete = true
        break
      }
    }
    if (length > maxControlMessageBytes || (!complete && index >= 5)) return undefined
    if (complete && buffered.byteLength >= index + length) {
      const message = buffered.subarray(index, index + length)
      const tail = buffered.subarray(index + length)
      return { message, rest: tail.byteLength > 0 ? [tail] : [] }
    }
    const next = await source.next()
    if (next.done === true) return undefined
    const chunk = next.value instanceof Uint8Array ? next.value : next.value.subarray()
    const joined = new Uint8Array(buffered.byteLength + chunk.byteLength)
    joined.set(buffered)
    joined.set(chunk, buffered.byteLength)
    buffered = joined
  }
}

export interface ServeInit {
  cluster: string
  store: PayloadStore
  log: Logger
  onServed: (bytes: number) => void
}

/** Answers payload requests from the store; unknown hashes get NOT_FOUND, never an error. */
export async function servePayload(stream: Stream, remotePeer: PeerId, init: ServeInit): Promise<void> {
  try {
    const request = await readPrefixed(stream.source[Symbol.asyncIterator]())
    const decoded = request === undefined ? undefined : decodePayloadRequest(request.message)
    if (decoded === undefined || decoded.cluster !== init.cluster) {
      stream.abort(new Error('bad payload request'))
      return
    }
    const payload = init.store.get(toHex(decoded.hash))
    const header = lp.encode.single(encodePayloadHeader(payload !== undefined, payload?.byteLength ?? 0))
    await stream.sink(payload === undefined ? [header] : [header, payload])
    if (payload !== undefined) init.onServed(payload.byteLength)
  } catch (error) {
    init.log.debug({ peer: remotePeer.toString(), err: error }, 'payload request failed')
    stream.abort(error as Error)
  }
}

export interface FetchRequest {
  cluster: string
  round: number
  hash: Uint8Array
  /** Exactly this many bytes are expected; a peer offering more or fewer is refused. */
  size: number
}

export type FetchResult = { ok: true; bytes: Uint8Array } | { ok: false; detail: string }

/** Pulls one payload from one peer. Never throws: failures come back as `{ ok: false }`. */
export async function fetchPayload(
  libp2p: Libp2p,
  peer: PeerId,
  request: FetchRequest,
  signal: AbortSignal,
): Promise<FetchResult> {
  let stream: Stream | undefined
  try {
    stream = await libp2p.dialProtocol(peer, payloadProtocol, { signal })
    await stream.sink([lp.encode.single(encodePayloadRequest(request))])
    const source = stream.source[Symbol.asyncIterator]()
    const first = await readPrefixed(source)
    const header = first === undefined ? undefined : decodePayloadHeader(first.message)
    if (first === undefined || header === undefined) return { ok: false, detail: 'bad payload header' }
    if (!header.found) return { ok: false, detail: 'peer does not have the payload' }
    if (header.size !== request.size) {
      return { ok: false, detail: `peer offers ${header.size} bytes, announced ${request.size}` }
    }
    // One allocation of the announced size; chunks are copied straight into it.
    const bytes = new Uint8Array(request.size)
    let offset = 0
    const append = (chunk: Uint8Array): boolean => {
      if (offset + chunk.byteLength > bytes.byteLength) return false
      bytes.set(chunk, offset)
      offset += chunk.byteLength
      return true
    }
    for (const chunk of first.rest)
      if (!append(chunk)) return { ok: false, detail: 'payload longer than announced' }
    for (;;) {
      signal.throwIfAborted()
      const next = await source.next()
      if (next.done === true) break
      const list = next.value
      if (list instanceof Uint8Array) {
        if (!append(list)) return { ok: false, detail: 'payload longer than announced' }
      } else {
        for (const chunk of list)
          if (!append(chunk)) return { ok: false, detail: 'payload longer than announced' }
      }
    }
    if (offset !== request.size)
      return { ok: false, detail: `stream ended after ${offset} of ${request.size} bytes` }
    await stream.close().catch(() => undefined)
    return { ok: true, bytes }
  } catch (error) {
    stream?.abort(error as Error)
    return { ok: false, detail: (error as Error).message }
  }
}
