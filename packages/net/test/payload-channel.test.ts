/**
 * One compliance suite for every `PayloadChannel`: the libp2p payload stream and the `node:tls`
 * payload plane answer the same fetches the same way (reuse of one connection, NOT_FOUND, a size
 * mismatch, a malformed request, oversize refused before anything moves, a peer that stalls
 * mid-payload, cancel by AbortSignal), between real nodes over loopback. Then the TLS plane's own
 * trust boundary: outsiders at the payload port, members breaking the protocol, keys presented
 * without their private half, and the fallback to the libp2p stream.
 */
import { createHash } from 'node:crypto'
import { connect, createServer, type Server, type TLSSocket } from 'node:tls'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { byteStream } from 'it-byte-stream'
import * as lp from 'it-length-prefixed'
import { createLibp2p } from 'libp2p'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { encodePayloadHeader, encodePayloadRequest } from '../src/codec.js'
import { createMembership, createNetNode, type Membership, type NetNode } from '../src/index.js'
import { type FetchRequest, payloadProtocol, readControl } from '../src/payload.js'
import { Libp2pPayloadChannel, type PayloadChannel } from '../src/payload-channel.js'
import { bindingData, bindingFrame, clientRole, serverRole, verifyBinding } from '../src/tls-plane/binding.js'
import { selfSignedCertificate } from '../src/tls-plane/cert.js'
import { type PayloadAddress, payloadPortOf, TlsPayloadChannel } from '../src/tls-plane/channel.js'

const logger = pino({ level: 'silent' })
const cluster = 'channel-test'
const dimension = 300_000
const maxPayloadBytes = 4 * dimension
let server: NetNode
let worker: NetNode
let serverId: PeerId
let keys: PrivateKey[]
let membership: Membership
/** 4 bytes, 1.2 MB (many TLS records and Yamux frames), 4 bytes. */
const payloads = [
  Uint8Array.of(1, 2, 3, 4),
  new Uint8Array(4 * dimension).map((_, i) => (i * 7) % 251),
  Uint8Array.of(9, 9, 9, 9),
]
let hashes: string[]
/** A libp2p node and a TLS server that answer a payload request with half the bytes, then nothing. */
let stallers: { libp2p: Libp2p; tls: Server; tlsKey: PrivateKey }

const requestOf = (index: number, size = payloads[index]!.byteLength): FetchRequest => ({
  cluster,
  round: 0,
  hash: Buffer.from(hashes[index]!, 'hex'),
  size,
})
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0
const signal = () => AbortSignal.timeout(10_000)
const portOf = (s: Server) => (s.address() as { port: number }).port

/** A TLS payload channel held by `key`, finding peers where `where` says. */
function tlsChannel(
  key: PrivateKey,
  where: (peer: PeerId) => PayloadAddress | undefined,
  extra: Partial<ConstructorParameters<typeof TlsPayloadChannel>[0]> = {},
): TlsPayloadChannel {
  return new TlsPayloadChannel({
    cluster,
    privateKey: key,
    membership,
    log: logger,
    listen: { host: '127.0.0.1', port: 0 },
    addressOf: where,
    maxPayloadBytes,
    handshakeTimeoutMs: 5_000,
    maxUnboundSockets: 8,
    redialBackoffMs: 60_000,
    ...extra,
  })
}

interface Implementation {
  name: string
  /** A fresh channel in the worker, fetching from the server. */
  channel(): PayloadChannel
  /** Connections the channel holds open. */
  open(channel: PayloadChannel): number
  /** A member's malformed request on a raw connection: resolves with what came back before the close. */
  malformed(): Promise<Uint8Array[]>
  /** The staller's peer id and a channel that fetches from it. */
  stalling(): { peer: PeerId; channel: PayloadChannel }
}

const implementations: Implementation[] = [
  {
    name: 'libp2p stream',
    channel: () => new Libp2pPayloadChannel(worker.libp2p, { maxPayloadBytes }),
    open: (channel) => (channel as Libp2pPayloadChannel).openStreams,
    async malformed() {
      const stream = await worker.libp2p.dialProtocol(serverId, payloadProtocol)
      await stream.sink([lp.encode.single(Uint8Array.of(0xff, 0xff, 0xff))])
      const chunks: Uint8Array[] = []
      await (async () => {
        for await (const chunk of stream.source) chunks.push(chunk.subarray())
      })().catch(() => undefined)
      return chunks
    },
    stalling: () => ({
      peer: stallers.libp2p.peerId,
      channel: new Libp2pPayloadChannel(worker.libp2p, { maxPayloadBytes }),
    }),
  },
  {
    name: 'node:tls plane',
    channel: () => tlsChannel(keys[1]!, () => server.payloadAddress()),
    open: (channel) => (channel as TlsPayloadChannel).openLinks,
    async malformed() {
      const raw = await rawClient(server.payloadAddress()!.port, keys[1]!)
      raw.socket.write(frame32(Uint8Array.of(0xff, 0xff, 0xff)))
      await raw.closed
      return raw.received.length > raw.bindingBytes
        ? [Buffer.concat(raw.chunks).subarray(raw.bindingBytes)]
        : []
    },
    stalling: () => ({
      peer: peerIdFromPrivateKey(stallers.tlsKey),
      channel: tlsChannel(keys[1]!, () => ({ host: '127.0.0.1', port: portOf(stallers.tls) })),
    }),
  },
]

function frame32(body: Uint8Array): Buffer {
  const frame = Buffer.alloc(4 + body.length)
  frame.writeUInt32BE(body.length, 0)
  frame.set(body, 4)
  return frame
}

/**
 * A hand-driven client of the TLS plane: binds as `key` (or presents `presented`'s public key
 * with `key`'s signature), collects every byte the server sends until it closes.
 */
async function rawClient(
  port: number,
  key: PrivateKey,
  presented?: PrivateKey,
): Promise<{
  socket: TLSSocket
  chunks: Buffer[]
  received: Buffer
  bindingBytes: number
  closed: Promise<void>
}> {
  const socket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' })
  const chunks: Buffer[] = []
  const state = {
    socket,
    chunks,
    get received() {
      return Buffer.concat(chunks)
    },
    bindingBytes: 0,
    closed: new Promise<void>((resolve) => socket.once('close', () => resolve())),
  }
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.on('error', () => undefined)
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()))
  socket.write(await forgedBinding(socket, clientRole, key, presented ?? key))
  // The server's binding frame comes first, whoever we are.
  await new Promise<void>((resolve) => {
    const check = (): void => {
      const all = Buffer.concat(chunks)
      if (all.length >= 2 && all.length >= 2 + all.readUInt16BE(0)) {
        state.bindingBytes = 2 + all.readUInt16BE(0)
        resolve()
      } else socket.once('data', check)
    }
    check()
    socket.once('close', () => resolve())
  })
  return state
}

/** A binding frame for `role` presenting `presented`'s public key, signed by `key` (the same key: genuine). */
async function forgedBinding(
  socket: TLSSocket,
  role: number,
  key: PrivateKey,
  presented: PrivateKey,
): Promise<Buffer> {
  const publicKey = publicKeyToProtobuf(presented.publicKey as never)
  const signature = await key.sign(bindingData(socket, role, cluster))
  const body = Buffer.concat([Buffer.of(role, 0, publicKey.length), publicKey, signature])
  const head = Buffer.alloc(2)
  head.writeUInt16BE(body.length)
  return Buffer.concat([head, body])
}

/** A TLS server that binds as `presented` (signing with `key`) and stalls every payload half-way. */
function stallingTlsServer(key: PrivateKey, presented: PrivateKey = key): Promise<Server> {
  const tls = createServer({ ...selfSignedCertificate(), minVersion: 'TLSv1.3' }, (socket) => {
    socket.on('error', () => undefined)
    void forgedBinding(socket, serverRole, key, presented).then((frame) => socket.write(frame))
    let seen = Buffer.alloc(0)
    let bound = false
    socket.on('data', (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk])
      if (!bound && seen.length >= 2 && seen.length >= 2 + seen.readUInt16BE(0)) {
        seen = seen.subarray(2 + seen.readUInt16BE(0))
        bound = true
      }
      if (bound && seen.length >= 4 && seen.length >= 4 + seen.readUInt32BE(0)) {
        socket.write(frame32(encodePayloadHeader(true, payloads[1]!.byteLength)))
        socket.write(payloads[1]!.subarray(0, payloads[1]!.byteLength / 2))
        seen = Buffer.alloc(0)
      }
    })
  })
  return new Promise((resolve) => tls.listen(0, '127.0.0.1', () => resolve(tls)))
}

beforeAll(async () => {
  keys = (await Promise.all([0, 1, 2, 3, 4].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  // 0 server, 1 worker, 2 the libp2p staller, 3 the TLS staller: members; 4 an outsider.
  const ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
  membership = createMembership({
    members: [
      [ids[0]!, 'server'],
      [ids[1]!, 'worker'],
      [ids[2]!, 'worker'],
      [ids[3]!, 'worker'],
    ],
  })
  const nodeOf = (index: number) =>
    createNetNode({
      cluster,
      role: index === 0 ? 'server' : 'worker',
      dimension,
      membership,
      logger,
      privateKey: keys[index]!,
      adversary: index === 0,
      // Not the default yet (netDefaults.payloadPlane): the plane under test here.
      payloadPlane: 'tls',
    })
  server = await nodeOf(0)
  worker = await nodeOf(1)
  await server.start()
  await worker.start()
  await worker.dial(server.multiaddrs()[0]!)
  serverId = server.libp2p.peerId
  hashes = payloads.map((bytes) => server.adversary!.offerPayload(bytes))
  const libp2p = await createLibp2p({
    privateKey: keys[2]! as never,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
  })
  await libp2p.handle(payloadProtocol, ({ stream }) => {
    void (async () => {
      const bytes = byteStream(stream)
      await readControl(bytes)
      await bytes.write(lp.encode.single(encodePayloadHeader(true, payloads[1]!.byteLength)))
      await bytes.write(payloads[1]!.subarray(0, payloads[1]!.byteLength / 2))
    })().catch(() => undefined)
  })
  await worker.libp2p.dial(multiaddr(libp2p.getMultiaddrs()[0]!.toString()) as never)
  stallers = { libp2p, tls: await stallingTlsServer(keys[3]!), tlsKey: keys[3]! }
})

afterAll(async () => {
  await Promise.all([server?.stop(), worker?.stop(), stallers?.libp2p.stop()])
  await new Promise((resolve) => stallers?.tls.close(resolve))
})

describe.each(implementations)('PayloadChannel compliance: $name', (impl) => {
  it('carries every exchange, sequential or concurrent, over one connection, into a buffer of its own', async () => {
    const channel = impl.channel()
    const first = await channel.fetch(serverId, requestOf(0), signal())
    const concurrent = await Promise.all(
      [1, 2, 1, 0].map((index) => channel.fetch(serverId, requestOf(index), signal())),
    )
    for (const [index, result] of [
      [0, first],
      ...[1, 2, 1, 0].map((index, i) => [index, concurrent[i]] as const),
    ] as const) {
      expect(result?.ok).toBe(true)
      if (!result?.ok) continue
      expect(sameBytes(result.bytes, payloads[index]!)).toBe(true)
      expect(Buffer.from(result.digest).toString('hex')).toBe(hashes[index])
      expect(result.digest).toEqual(createHash('sha256').update(payloads[index]!).digest())
      expect(result.vector.buffer).toBe(result.bytes.buffer)
      expect(result.bytes.byteOffset).toBe(0)
      expect(result.bytes.buffer.byteLength).toBe(payloads[index]!.byteLength)
    }
    expect(impl.open(channel)).toBe(1)
    await channel.close()
  })

  it('keeps the connection after NOT_FOUND, drops it after a size mismatch, and recovers', async () => {
    const channel = impl.channel()
    expect((await channel.fetch(serverId, requestOf(0), signal())).ok).toBe(true)
    expect(await channel.fetch(serverId, { ...requestOf(0), hash: new Uint8Array(32) }, signal())).toEqual({
      ok: false,
      detail: 'peer does not have the payload',
    })
    expect(impl.open(channel)).toBe(1)
    expect(await channel.fetch(serverId, requestOf(1, 8), signal())).toEqual({
      ok: false,
      detail: `peer offers ${4 * dimension} bytes, announced 8`,
    })
    expect(impl.open(channel)).toBe(0)
    const again = await channel.fetch(serverId, requestOf(1), signal())
    expect(again.ok && sameBytes(again.bytes, payloads[1]!)).toBe(true)
    expect(impl.open(channel)).toBe(1)
    await channel.close()
  })

  it.each([
    ['over maxPayloadBytes', maxPayloadBytes + 4],
    ['not float32', 6],
    ['negative', -4],
  ])('refuses a request %s before any connection or memory', async (_, size) => {
    const channel = impl.channel()
    const result = await channel.fetch(serverId, requestOf(1, size), signal())
    expect(result.ok).toBe(false)
    expect(impl.open(channel)).toBe(0)
    await channel.close()
  })

  it('a malformed request ends only its own connection, unanswered; the server goes on serving', async () => {
    expect(await impl.malformed()).toEqual([])
    const channel = impl.channel()
    const result = await channel.fetch(serverId, requestOf(2), signal())
    expect(result.ok && sameBytes(result.bytes, payloads[2]!)).toBe(true)
    await channel.close()
  })

  it('gives up on a peer that stalls mid-payload when the signal fires, and drops its connection', async () => {
    const { peer, channel } = impl.stalling()
    const result = await channel.fetch(peer, requestOf(1), AbortSignal.timeout(1_000))
    expect(result.ok).toBe(false)
    expect(impl.open(channel)).toBe(0)
    await channel.close()
  })

  it('cancels by AbortSignal, before its turn or mid-fetch, and the next fetch succeeds', async () => {
    const channel = impl.channel()
    expect(await channel.fetch(serverId, requestOf(0), AbortSignal.abort())).toEqual({
      ok: false,
      detail: 'timed out waiting for an earlier fetch from this peer',
    })
    const controller = new AbortController()
    const cancelled = channel.fetch(serverId, requestOf(1), controller.signal)
    controller.abort()
    expect((await cancelled).ok).toBe(false)
    const next = await channel.fetch(serverId, requestOf(1), signal())
    expect(next.ok && sameBytes(next.bytes, payloads[1]!)).toBe(true)
    await channel.close()
  })
})

describe('the TLS payload plane at its trust boundary', () => {
  const refused = () => server.counters.payload_plane_refused_total

  it('advertises its port over identify, validated at the receiving end', () => {
    const port = server.payloadAddress()!.port
    expect(payloadPortOf([`/phalanx/payload-tls/1.0.0/port/${port}`])).toBe(port)
    for (const bad of ['0', '65536', '080', '12a', '', '-1', '1e3'])
      expect(payloadPortOf([`/phalanx/payload-tls/1.0.0/port/${bad}`])).toBeUndefined()
  })

  it('refuses and counts an outsider before reading its request: nothing but the binding comes back', async () => {
    const before = { ...refused(), connections: server.counters.connections_refused_total }
    const served = server.counters.payload_served_bytes_total
    const raw = await rawClient(server.payloadAddress()!.port, keys[4]!)
    raw.socket.write(frame32(encodePayloadRequest(requestOf(0))))
    await raw.closed
    expect(raw.received.length).toBe(raw.bindingBytes)
    expect(refused().outsider).toBe(before.outsider + 1)
    expect(server.counters.connections_refused_total).toBe(before.connections + 1)
    expect(server.counters.payload_served_bytes_total).toBe(served)
    // As a channel: the fetch fails (no fallback here), the outsider learns nothing.
    const channel = tlsChannel(keys[4]!, () => server.payloadAddress())
    expect((await channel.fetch(serverId, requestOf(0), signal())).ok).toBe(false)
    await channel.close()
  })

  it("refuses a client presenting a member's key without its private key", async () => {
    const before = refused().binding
    const raw = await rawClient(server.payloadAddress()!.port, keys[4]!, keys[1]!)
    raw.socket.write(frame32(encodePayloadRequest(requestOf(0))))
    await raw.closed
    expect(raw.received.length).toBe(raw.bindingBytes)
    expect(refused().binding).toBe(before + 1)
  })

  it("a server presenting the dialled peer's key without its private key fails the binding", async () => {
    const impostor = await stallingTlsServer(keys[4]!, keys[0]!)
    const channel = tlsChannel(keys[1]!, () => ({ host: '127.0.0.1', port: portOf(impostor) }))
    const result = await channel.fetch(serverId, requestOf(0), signal())
    expect(result).toEqual({ ok: false, detail: 'payload binding: binding signature does not verify' })
    // A genuine key of another peer is no better.
    const other = tlsChannel(keys[1]!, () => ({ host: '127.0.0.1', port: portOf(stallers.tls) }))
    const wrongPeer = await other.fetch(serverId, requestOf(0), signal())
    expect(wrongPeer.ok).toBe(false)
    expect(wrongPeer.ok ? '' : wrongPeer.detail).toContain('answered for')
    await Promise.all([channel.close(), other.close()])
    await new Promise((resolve) => impostor.close(resolve))
  })

  it('a binding signed on another session does not verify on this one', async () => {
    const raw = await rawClient(server.payloadAddress()!.port, keys[1]!)
    const other = await rawClient(server.payloadAddress()!.port, keys[1]!)
    const theirs = await bindingFrame(other.socket, clientRole, cluster, keys[1]!)
    expect((await verifyBinding(raw.socket, theirs.subarray(2), clientRole, cluster)).ok).toBe(false)
    expect((await verifyBinding(other.socket, theirs.subarray(2), clientRole, cluster)).ok).toBe(true)
    // The role is signed: a client's binding is not a server's.
    expect((await verifyBinding(other.socket, theirs.subarray(2), serverRole, cluster)).ok).toBe(false)
    raw.socket.destroy()
    other.socket.destroy()
  })

  it.each([
    ['an oversized request frame', () => Buffer.from([0x00, 0x10, 0x00, 0x00])],
    [
      'a request of another cluster',
      () => frame32(encodePayloadRequest({ ...requestOf(0), cluster: 'other' })),
    ],
  ])('a member sending %s is cut off unanswered and counted', async (_, bytes) => {
    const before = refused().malformed
    const raw = await rawClient(server.payloadAddress()!.port, keys[1]!)
    raw.socket.write(bytes())
    await raw.closed
    expect(raw.received.length).toBe(raw.bindingBytes)
    expect(refused().malformed).toBe(before + 1)
  })

  it('refuses an oversized binding frame and plain bytes that are not TLS, counted', async () => {
    const before = { ...refused() }
    const socket = connect({
      host: '127.0.0.1',
      port: server.payloadAddress()!.port,
      rejectUnauthorized: false,
    })
    socket.on('error', () => undefined)
    await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()))
    socket.write(Buffer.from([0xff, 0xff]))
    await new Promise<void>((resolve) => socket.once('close', () => resolve()))
    expect(refused().malformed).toBe(before.malformed + 1)
    const { connect: tcpConnect } = await import('node:net')
    const plain = tcpConnect(server.payloadAddress()!.port, '127.0.0.1')
    plain.on('error', () => undefined)
    plain.write('GET / HTTP/1.1\r\n\r\n')
    await new Promise<void>((resolve) => plain.once('close', () => resolve()))
    expect(refused().binding).toBeGreaterThan(before.binding)
  })

  it('falls back to the libp2p stream for a peer without a port, or whose dial fails', async () => {
    const fallbacks: string[] = []
    const fallback = new Libp2pPayloadChannel(worker.libp2p, { maxPayloadBytes })
    const unadvertised = tlsChannel(keys[1]!, () => undefined, {
      fallback,
      onFallback: (_, detail) => fallbacks.push(detail),
    })
    const one = await unadvertised.fetch(serverId, requestOf(1), signal())
    expect(one.ok && sameBytes(one.bytes, payloads[1]!)).toBe(true)
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createServer({})
      probe.listen(0, '127.0.0.1', () => {
        const port = portOf(probe)
        probe.close(() => resolve(port))
      })
    })
    const refusing = tlsChannel(keys[1]!, () => ({ host: '127.0.0.1', port: closedPort }), {
      fallback: new Libp2pPayloadChannel(worker.libp2p, { maxPayloadBytes }),
      onFallback: (_, detail) => fallbacks.push(detail),
    })
    const two = await refusing.fetch(serverId, requestOf(2), signal())
    expect(two.ok && sameBytes(two.bytes, payloads[2]!)).toBe(true)
    // Within the backoff the peer goes straight to the fallback, without dialling again.
    const three = await refusing.fetch(serverId, requestOf(0), signal())
    expect(three.ok).toBe(true)
    expect(fallbacks[0]).toBe('no payload port advertised')
    expect(fallbacks[1]).toMatch(/^payload dial: /)
    expect(fallbacks[2]).toBe('payload plane dial failed recently')
    await Promise.all([unadvertised.close(), refusing.close()])
  })
})

describe('nodes of both planes together', () => {
  it('a libp2p-plane node and a tls-plane node deliver to each other (mixed versions)', async () => {
    const key = (await generateKeyPair('Ed25519')) as unknown as PrivateKey
    membership.add(peerIdFromPrivateKey(key).toString(), 'worker')
    const plain = await createNetNode({
      cluster,
      role: 'worker',
      dimension,
      membership,
      logger,
      privateKey: key,
      payloadPlane: 'libp2p',
    })
    try {
      await plain.start()
      expect(plain.payloadAddress()).toBeUndefined()
      await plain.dial(server.multiaddrs()[0]!)
      await plain.waitForSubscribers('model', 1, { signal: AbortSignal.timeout(20_000) })
      const fallbacks = server.counters.payload_plane_fallbacks_total
      const arrived = new Promise<Float32Array>((resolve) =>
        plain.on('vector', (v) => v.round === 0 && resolve(v.vector)),
      )
      const vector = new Float32Array(dimension).map((_, i) => i / 7)
      await server.publish('model', 0, vector)
      expect(Buffer.compare(Buffer.from((await arrived).buffer), Buffer.from(vector.buffer))).toBe(0)
      // The other way: the tls-plane server finds no port for the worker and uses the stream.
      await server.waitForSubscribers('gradient', 0)
      const gradient = new Float32Array(dimension).map((_, i) => -i / 3)
      const got = new Promise<Float32Array>((resolve) =>
        server.on('vector', (v) => v.kind === 'gradient' && v.round === 0 && resolve(v.vector)),
      )
      await plain.waitForSubscribers('gradient', 1, { signal: AbortSignal.timeout(20_000) })
      await plain.publish('gradient', 0, gradient)
      expect(Buffer.compare(Buffer.from((await got).buffer), Buffer.from(gradient.buffer))).toBe(0)
      expect(server.counters.payload_plane_fallbacks_total).toBe(fallbacks + 1)
    } finally {
      await plain.stop()
    }
  })
})
