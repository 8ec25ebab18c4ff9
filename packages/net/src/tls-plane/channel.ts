/**
 * The payload plane on Node's own TLS socket, beside libp2p, for the bulk bytes. libp2p's stream
 * stack (Yamux over Noise over a JS duplex, `Uint8ArrayList` framing) cost ~6× the CPU of a
 * `node:tls` socket per MiB delivered (issue #15, docs/BENCHMARKS.md); gossip carries only
 * signed announcements, so the payload streams are the bytes to move.
 *
 * - Each node listens on a second TCP port and advertises it over identify (`payloadPortProtocol`:
 *   a protocol id carrying the port, read from the authenticated libp2p connection and validated
 *   here); the dialer connects to that port at the IP it already reaches the peer at.
 * - TLS 1.3 only, with a throw-away self-signed certificate (`cert.ts`). Authentication is channel
 *   binding (`binding.ts`): the client accepts only the peer it dialed, the server only members
 *   (`Membership`), and it refuses and counts everyone else before reading any request.
 * - One socket per peer pair, requests in turn: u32 big-endian length + `PayloadRequest`, answered
 *   by u32 length + `PayloadResponseHeader` and exactly `size` raw bytes. The client's socket reads
 *   straight into the destination vector (`onread` with a buffer that is a window of it): no
 *   `Buffer` per chunk, no copy in JS; the hash and the finiteness scan run on each window as it
 *   fills (`PayloadSink.commit`).
 * - A peer that advertises no port, or whose TLS dial or binding fails, is fetched from over the
 *   fallback channel (the libp2p stream), so nodes of mixed versions interoperate; a failed dial
 *   sends that peer to the fallback for `redialBackoffMs`.
 */

import { type ConnectionOptions, connect, createServer, type Server, type TLSSocket } from 'node:tls'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import {
  decodePayloadHeader,
  decodePayloadRequest,
  encodePayloadHeader,
  encodePayloadRequest,
  toHex,
} from '../codec.js'
import { IdleTimer } from '../limits.js'
import type { FetchRequest, FetchResult } from '../payload.js'
import type { PayloadChannel, PayloadServeInit } from '../payload-channel.js'
import { PayloadSink, sizeProblem } from '../receive.js'
import type { Membership } from '../types.js'
import { bindingFrame, clientRole, maxBindingBytes, serverRole, verifyBinding } from './binding.js'
import { selfSignedCertificate } from './cert.js'

/** Identify protocol id that advertises a node's payload port: this prefix, then the port. */
export const payloadPortProtocol = '/phalanx/payload-tls/1.0.0/port/'

/** The port a protocol list advertises, validated (an integer 1–65535), or undefined. */
export function payloadPortOf(protocols: readonly string[]): number | undefined {
  for (const protocol of protocols) {
    if (!protocol.startsWith(payloadPortProtocol)) continue
    const text = protocol.slice(payloadPortProtocol.length)
    if (!/^[1-9][0-9]{0,4}$/.test(text)) continue
    const port = Number(text)
    if (port <= 65_535) return port
  }
  return undefined
}

export interface PayloadAddress {
  host: string
  port: number
}

/** Requests and headers are a few dozen bytes; anything longer is not this protocol. */
const maxControlBytes = 1024

/**
 * The largest window of the destination handed to the socket for one read. Node's TLS layer
 * hands over at most one TLS record (16 KiB) per read anyway; a larger window only saves
 * making the next one.
 */
const readWindowBytes = 64 * 1024

const tlsVersions = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const

export interface TlsPayloadChannelInit {
  cluster: string
  /** The node's libp2p key: what the binding proves this end holds. */
  privateKey: PrivateKey
  /** The server admits members only. */
  membership: Membership
  log: Logger
  /** Where to listen (`port` 0: any free one). */
  listen: PayloadAddress
  /** Where a peer's payload plane is, when it advertised one. */
  addressOf(peer: PeerId): PayloadAddress | undefined
  /** For peers without a payload plane, or whose TLS dial failed. */
  fallback?: PayloadChannel
  maxPayloadBytes: number
  /** The TLS handshake and the binding together, either side. */
  handshakeTimeoutMs: number
  /** Served sockets not yet bound to a member, all peers together: what an outsider can hold. */
  maxUnboundSockets: number
  /** After a failed dial the peer goes to the fallback for this long. */
  redialBackoffMs: number
  /** Bytes this plane's sockets wrote and read (TLS framing included), as they move. */
  onWire?(sent: number, received: number): void
  /** A payload dial failed and the fallback was used (for counters and tests). */
  onFallback?(peer: string, detail: string): void
}

interface PeerQueue {
  /** The tail of this peer's exchanges: the next one starts when it settles (it never rejects). */
  tail: Promise<unknown>
  link?: TlsLink
  /** No TLS dial to this peer before this time (performance.now()). */
  backoffUntil: number
}

export class TlsPayloadChannel implements PayloadChannel {
  readonly plane = 'tls'
  readonly #init: TlsPayloadChannelInit
  readonly #certificate = selfSignedCertificate()
  readonly #peers = new Map<string, PeerQueue>()
  readonly #served = new Set<TLSSocket>()
  #server: Server | undefined
  #unbound = 0

  constructor(init: TlsPayloadChannelInit) {
    this.#init = init
  }

  /** Where this node's payload plane listens, once serving. */
  address(): PayloadAddress | undefined {
    const bound = this.#server?.address()
    if (bound === null || bound === undefined || typeof bound === 'string') return undefined
    return { host: bound.address, port: bound.port }
  }

  /** Payload sockets this node holds open to peers. */
  get openLinks(): number {
    return [...this.#peers.values()].filter((p) => p.link?.usable === true).length
  }

  async serve(init: PayloadServeInit): Promise<void> {
    const server = createServer({
      ...this.#certificate,
      ...tlsVersions,
      handshakeTimeout: this.#init.handshakeTimeoutMs,
    })
    server.on('secureConnection', (socket) => this.#admit(socket, init))
    // A failed handshake (an outsider speaking anything but TLS 1.3) never reaches `#admit`.
    server.on('tlsClientError', (_error, socket) => {
      init.onRefused('binding', socket.remoteAddress ?? '')
      socket.destroy()
    })
    server.on('connection', (socket) => socket.setNoDelay(true))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#init.listen.port, this.#init.listen.host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (error) => this.#init.log.warn({ err: error }, 'payload plane server error'))
    this.#server = server
  }

  fetch(peer: PeerId, request: FetchRequest, signal: AbortSignal): Promise<FetchResult> {
    const problem = sizeProblem(request.size, this.#init.maxPayloadBytes)
    if (problem !== undefined) return Promise.resolve({ ok: false, detail: problem })
    const key = peer.toString()
    let queue = this.#peers.get(key)
    if (queue === undefined) {
      queue = { tail: Promise.resolve(), backoffUntil: 0 }
      this.#peers.set(key, queue)
    }
    const current = queue
    const result = current.tail.then(() => this.#exchange(current, peer, request, signal))
    current.tail = result
    return result
  }

  forget(peer: PeerId): void {
    const key = peer.toString()
    this.#peers.get(key)?.link?.destroy('peer forgotten')
    this.#peers.delete(key)
    this.#init.fallback?.forget(peer)
  }

  async close(): Promise<void> {
    for (const queue of this.#peers.values()) queue.link?.destroy('closing')
    this.#peers.clear()
    for (const socket of this.#served) socket.destroy()
    this.#served.clear()
    const server = this.#server
    this.#server = undefined
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()))
    await this.#init.fallback?.close()
  }

  #fallback(peer: PeerId, request: FetchRequest, signal: AbortSignal, detail: string): Promise<FetchResult> {
    if (this.#init.fallback === undefined) return Promise.resolve({ ok: false, detail })
    this.#init.onFallback?.(peer.toString(), detail)
    return this.#init.fallback.fetch(peer, request, signal)
  }

  /**
   * One exchange. A socket kept open from an earlier one may have been closed by the peer
   * meanwhile (its idle timeout): when it fails before any answer, it is retried once on a new
   * socket, so an idle close never costs a fetch.
   */
  async #exchange(
    queue: PeerQueue,
    peer: PeerId,
    request: FetchRequest,
    signal: AbortSignal,
  ): Promise<FetchResult> {
    if (signal.aborted) return { ok: false, detail: 'timed out waiting for an earlier fetch from this peer' }
    for (let attempt = 0; ; attempt++) {
      const reused = queue.link?.usable === true
      if (!reused) {
        const address = this.#init.addressOf(peer)
        if (address === undefined) return this.#fallback(peer, request, signal, 'no payload port advertised')
        if (performance.now() < queue.backoffUntil)
          return this.#fallback(peer, request, signal, 'payload plane dial failed recently')
        const opened = await TlsLink.open(address, peer.toString(), this.#init, signal)
        if (typeof opened === 'string') {
          // Even when the caller's signal cut the dial short: a port that swallows SYNs (a
          // firewall letting only the libp2p port through) must not cost every fetch a timeout.
          queue.backoffUntil = performance.now() + this.#init.redialBackoffMs
          this.#init.log.debug({ peer: peer.toString(), detail: opened }, 'payload plane dial failed')
          if (signal.aborted) return { ok: false, detail: opened }
          return this.#fallback(peer, request, signal, opened)
        }
        queue.link = opened
      }
      const result = await queue.link!.exchange(request, signal)
      if (!result.ok && result.unanswered && reused && attempt === 0 && !signal.aborted) continue
      return result.ok ? result : { ok: false, detail: result.detail }
    }
  }

  /** A served socket: bound to a member before anything else is read, then served. */
  #admit(socket: TLSSocket, init: PayloadServeInit): void {
    if (this.#unbound >= this.#init.maxUnboundSockets) {
      init.onRefused('concurrent', socket.remoteAddress ?? '')
      socket.destroy()
      return
    }
    this.#unbound++
    this.#served.add(socket)
    const flush = meter(socket, this.#init.onWire)
    let bound = false
    let release: (() => void) | undefined
    const settle = (): void => {
      if (!bound) this.#unbound--
      bound = true
    }
    const refuse = (reason: 'outsider' | 'binding' | 'malformed' | 'concurrent', peer: string): void => {
      settle()
      init.onRefused(reason, peer)
      socket.destroy()
    }
    const timer = setTimeout(
      () => refuse('binding', socket.remoteAddress ?? ''),
      this.#init.handshakeTimeoutMs,
    )
    timer.unref()
    socket.on('close', () => {
      clearTimeout(timer)
      settle()
      this.#served.delete(socket)
      release?.()
    })
    socket.on('error', (error) => init.log.debug({ err: error }, 'served payload socket failed'))
    void bindingFrame(socket, serverRole, this.#init.cluster, this.#init.privateKey).then(
      (frame) => socket.write(frame),
      () => socket.destroy(),
    )
    let pending: Buffer = Buffer.alloc(0)
    const onData = (chunk: Buffer): void => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
      if (pending.length < 2) return
      const length = pending.readUInt16BE(0)
      if (length > maxBindingBytes) {
        refuse('malformed', socket.remoteAddress ?? '')
        return
      }
      if (pending.length < 2 + length) return
      // Nothing past the binding frame is read before the peer is known to be a member.
      socket.off('data', onData)
      socket.pause()
      const body = pending.subarray(2, 2 + length)
      const rest = pending.subarray(2 + length)
      void verifyBinding(socket, body, clientRole, this.#init.cluster).then((verdict) => {
        if (socket.destroyed) return
        if (!verdict.ok) {
          init.log.debug({ detail: verdict.detail, from: socket.remoteAddress }, 'payload binding failed')
          return refuse('binding', socket.remoteAddress ?? '')
        }
        if (!this.#init.membership.has(verdict.peer)) return refuse('outsider', verdict.peer)
        release = init.slots.acquire(verdict.peer)
        if (release === undefined) return refuse('concurrent', verdict.peer)
        clearTimeout(timer)
        settle()
        new ServedSocket(socket, verdict.peer, init, flush).start(rest)
      })
    }
    socket.on('data', onData)
  }
}

/**
 * The requests of one bound socket, answered in turn from the store: the socket is paused while
 * an answer is written, so a member cannot queue more than one request's bytes in this process.
 */
class ServedSocket {
  #pending: Buffer = Buffer.alloc(0)
  #busy = false
  readonly #idle: IdleTimer

  constructor(
    readonly socket: TLSSocket,
    readonly peer: string,
    readonly init: PayloadServeInit,
    readonly flush: () => void,
  ) {
    this.#idle = new IdleTimer(init.idleTimeoutMs)
    this.#idle.signal.addEventListener('abort', () => {
      init.onRefused('idle', peer)
      socket.destroy()
    })
    socket.on('close', () => this.#idle.clear())
  }

  start(first: Buffer): void {
    this.#pending = first
    this.socket.on('data', (chunk: Buffer) => {
      this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
      void this.#pump()
    })
    this.socket.resume()
    void this.#pump()
  }

  async #pump(): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      while (!this.socket.destroyed && this.#pending.length >= 4) {
        const length = this.#pending.readUInt32BE(0)
        if (length > maxControlBytes) return this.#malformed(`request of ${length} bytes`)
        if (this.#pending.length < 4 + length) break
        const frame = this.#pending.subarray(4, 4 + length)
        this.#pending = this.#pending.subarray(4 + length)
        const request = decodePayloadRequest(frame)
        if (request === undefined || request.cluster !== this.init.cluster)
          return this.#malformed('bad payload request')
        this.#idle.reset()
        this.socket.pause()
        await this.#answer(toHex(request.hash))
        this.flush()
        this.socket.resume()
      }
    } finally {
      this.#busy = false
    }
  }

  async #answer(hash: string): Promise<void> {
    let payload = this.init.store.get(hash)
    if (payload !== undefined && !this.init.buckets.take(this.peer, payload.byteLength)) {
      this.init.onRefused('rate', this.peer)
      payload = undefined
    }
    const header = encodePayloadHeader(payload !== undefined, payload?.byteLength ?? 0)
    const frame = Buffer.alloc(4 + header.length)
    frame.writeUInt32BE(header.length, 0)
    frame.set(header, 4)
    this.socket.write(frame)
    // Written on its own: one write of header and payload together would copy the payload.
    const flushed = payload === undefined || this.socket.write(payload)
    if (payload !== undefined) this.init.onServed(payload.byteLength)
    if (!flushed) {
      // The idle timer fires (and destroys the socket) if the peer stops reading.
      this.#idle.reset()
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.socket.off('drain', done)
          this.socket.off('close', done)
          resolve()
        }
        this.socket.on('drain', done)
        this.socket.on('close', done)
      })
    }
    this.#idle.reset()
  }

  #malformed(detail: string): void {
    this.init.log.debug({ peer: this.peer, detail }, 'malformed payload request')
    this.init.onRefused('malformed', this.peer)
    this.socket.destroy()
  }
}

/** Hands a socket's bytes moved since the last call to `onWire`; also at its close. */
function meter(socket: TLSSocket, onWire: TlsPayloadChannelInit['onWire']): () => void {
  let [sent, received] = [0, 0]
  const flush = (): void => {
    // A TLSSocket's counts are of the TCP socket under it, TLS records included.
    const [s, r] = [socket.bytesWritten ?? 0, socket.bytesRead ?? 0]
    if (s !== sent || r !== received) onWire?.(s - sent, r - received)
    ;[sent, received] = [s, r]
  }
  socket.once('close', flush)
  return flush
}

type LinkResult = FetchResult & { unanswered?: boolean }

interface Exchange {
  size: number
  answered: boolean
  sink?: PayloadSink
  resolve(result: LinkResult): void
}

/**
 * The client end of one payload socket to one peer. Reads land in `#scratch` (control frames)
 * or, while a payload is coming, straight in a window of its destination; either way the
 * read callback runs the exchange's state machine synchronously, so the read after a header
 * already goes into place.
 */
class TlsLink {
  readonly #scratch = Buffer.allocUnsafe(16 * 1024)
  #control: Buffer = Buffer.alloc(0)
  #window: Uint8Array | undefined
  #exchange: Exchange | undefined
  #bindingBody: ((body: Buffer | undefined) => void) | undefined
  #bound = false
  #dead: string | undefined
  #flush: () => void = () => undefined
  socket!: TLSSocket

  private constructor(readonly maxPayloadBytes: number) {}

  get usable(): boolean {
    return this.#dead === undefined && this.#bound
  }

  /** Connects, shakes hands and checks the binding: a link to `expected`, or why not. */
  static async open(
    address: PayloadAddress,
    expected: string,
    init: TlsPayloadChannelInit,
    signal: AbortSignal,
  ): Promise<TlsLink | string> {
    const link = new TlsLink(init.maxPayloadBytes)
    const timeout = AbortSignal.timeout(init.handshakeTimeoutMs)
    const abort = AbortSignal.any([signal, timeout])
    const body = new Promise<Buffer | undefined>((resolve) => {
      link.#bindingBody = resolve
    })
    link.socket = connect({
      host: address.host,
      port: address.port,
      ...tlsVersions,
      // The certificate authenticates nothing: the binding below does.
      rejectUnauthorized: false,
      onread: {
        buffer: () => link.#nextBuffer(),
        callback: (length: number, buffer: Uint8Array) => link.#onRead(length, buffer),
      },
    } as unknown as ConnectionOptions)
    link.socket.setNoDelay(true)
    link.#flush = meter(link.socket, init.onWire)
    const failed = new Promise<string>((resolve) => {
      link.socket.once('error', (error) => resolve(`payload dial: ${error.message}`))
      link.socket.once('close', () => resolve(link.#dead ?? 'payload socket closed'))
      abort.addEventListener('abort', () =>
        resolve(timeout.aborted ? 'payload handshake timed out' : 'aborted'),
      )
    })
    link.socket.once('close', () => link.#fail('payload socket closed'))
    link.socket.on('error', (error) => link.#fail(`payload socket: ${error.message}`))
    const secure = new Promise<void>((resolve) => link.socket.once('secureConnect', () => resolve()))
    const outcome = await Promise.race([
      (async () => {
        await secure
        link.socket.write(await bindingFrame(link.socket, clientRole, init.cluster, init.privateKey))
        const frame = await body
        if (frame === undefined) return link.#dead ?? 'no binding'
        const verdict = await verifyBinding(link.socket, frame, serverRole, init.cluster)
        if (!verdict.ok) return `payload binding: ${verdict.detail}`
        if (verdict.peer !== expected) return `payload binding: ${verdict.peer} answered for ${expected}`
        return link
      })(),
      failed,
    ])
    if (typeof outcome === 'string' || link.#dead !== undefined) {
      const detail = typeof outcome === 'string' ? outcome : link.#dead!
      link.destroy(detail)
      return detail
    }
    link.#bound = true
    return link
  }

  exchange(request: FetchRequest, signal: AbortSignal): Promise<LinkResult> {
    if (this.#dead !== undefined) return Promise.resolve({ ok: false, detail: this.#dead, unanswered: true })
    return new Promise<LinkResult>((resolve) => {
      const onAbort = (): void => this.destroy('aborted while fetching')
      const exchange: Exchange = {
        size: request.size,
        answered: false,
        resolve: (result) => {
          signal.removeEventListener('abort', onAbort)
          this.#exchange = undefined
          this.#flush()
          resolve(result)
        },
      }
      this.#exchange = exchange
      signal.addEventListener('abort', onAbort, { once: true })
      const body = encodePayloadRequest(request)
      const frame = Buffer.alloc(4 + body.length)
      frame.writeUInt32BE(body.length, 0)
      frame.set(body, 4)
      this.socket.write(frame)
      if (signal.aborted) onAbort()
    })
  }

  destroy(detail: string): void {
    this.#fail(detail)
    this.socket?.destroy()
  }

  #fail(detail: string): void {
    if (this.#dead === undefined) this.#dead = detail
    this.#bindingBody?.(undefined)
    this.#bindingBody = undefined
    const exchange = this.#exchange
    if (exchange !== undefined) exchange.resolve({ ok: false, detail, unanswered: !exchange.answered })
    this.socket?.destroy()
  }

  /** Where the next read goes: into place while a payload is coming, else the scratch buffer. */
  #nextBuffer(): Uint8Array {
    const sink = this.#exchange?.sink
    this.#window = sink === undefined ? undefined : sink.window(readWindowBytes)
    return this.#window ?? this.#scratch
  }

  #onRead(length: number, buffer: Uint8Array): boolean {
    try {
      const sink = this.#exchange?.sink
      if (buffer === this.#window && sink !== undefined) {
        sink.commit(length)
        if (sink.received === sink.size) this.#finish()
      } else this.#feed(buffer.subarray(0, length))
    } catch (error) {
      this.destroy((error as Error).message)
    }
    return true
  }

  /** Bytes that landed in the scratch buffer: control frames, and payload bytes read with a header. */
  #feed(data: Uint8Array): void {
    while (data.length > 0 && this.#dead === undefined) {
      const sink = this.#exchange?.sink
      if (sink !== undefined) {
        const take = Math.min(sink.size - sink.received, data.length)
        sink.write(data.subarray(0, take))
        data = data.subarray(take)
        if (sink.received === sink.size) this.#finish()
        continue
      }
      this.#control = this.#control.length === 0 ? Buffer.from(data) : Buffer.concat([this.#control, data])
      data = new Uint8Array(0)
      this.#frames()
      // Payload bytes that came with the header are in `#control` still: move them into place.
      if (this.#exchange?.sink !== undefined && this.#control.length > 0) {
        data = this.#control
        this.#control = Buffer.alloc(0)
      }
    }
  }

  /** Takes whole control frames off `#control`, as long as no payload is expected. */
  #frames(): void {
    while (this.#dead === undefined && this.#exchange?.sink === undefined) {
      // The server's binding frame has a u16 length, every later frame a u32 one.
      const prefix = this.#bound ? 4 : 2
      if (this.#control.length < prefix) return
      const length = prefix === 2 ? this.#control.readUInt16BE(0) : this.#control.readUInt32BE(0)
      if (length > (prefix === 2 ? maxBindingBytes : maxControlBytes)) {
        this.destroy(`control frame of ${length} bytes`)
        return
      }
      if (this.#control.length < prefix + length) return
      const frame = this.#control.subarray(prefix, prefix + length)
      this.#control = this.#control.subarray(prefix + length)
      if (!this.#bound) {
        const deliver = this.#bindingBody
        this.#bindingBody = undefined
        if (deliver === undefined) {
          this.destroy('bytes before the binding was checked')
          return
        }
        deliver(Buffer.from(frame))
        continue
      }
      this.#onHeader(frame)
    }
  }

  #onHeader(frame: Uint8Array): void {
    const exchange = this.#exchange
    if (exchange === undefined) {
      this.destroy('payload header without a request')
      return
    }
    exchange.answered = true
    const header = decodePayloadHeader(frame)
    if (header === undefined) {
      this.destroy('bad payload header')
      return
    }
    if (!header.found) {
      exchange.resolve({ ok: false, detail: 'peer does not have the payload' })
      return
    }
    // The peer would send header.size bytes, which the socket cannot skip safely.
    if (header.size !== exchange.size) {
      this.destroy(`peer offers ${header.size} bytes, announced ${exchange.size}`)
      return
    }
    const sink = PayloadSink.open(exchange.size, this.maxPayloadBytes)
    if (typeof sink === 'string') {
      this.destroy(sink)
      return
    }
    exchange.sink = sink
    if (sink.size === 0) this.#finish()
  }

  #finish(): void {
    const exchange = this.#exchange!
    const sink = exchange.sink!
    exchange.resolve({ ok: true, plane: 'tls', ...sink.finish() })
  }
}
