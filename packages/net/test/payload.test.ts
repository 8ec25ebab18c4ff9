/**
 * The payload protocol between two real libp2p nodes over loopback TCP: one long-lived stream per
 * peer carries every exchange, a NOT_FOUND answer keeps it, and a failed exchange drops it
 * without costing the next fetch.
 */

import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import * as lp from 'it-length-prefixed'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMembership, createNetNode, type NetNode } from '../src/index.js'
import { type FetchRequest, PayloadFetcher, payloadProtocol } from '../src/payload.js'

const logger = pino({ level: 'silent' })
const dimension = 100_000
let server: NetNode
let worker: NetNode
let serverId: PeerId
/** Three payloads of the server's store: 4 bytes, 400 KB (many yamux frames), 4 bytes. */
const payloads = [
  Uint8Array.of(1, 2, 3, 4),
  new Uint8Array(4 * dimension).map((_, i) => i % 251),
  Uint8Array.of(9, 9, 9, 9),
]
let hashes: string[]

const requestOf = (index: number, size = payloads[index]!.byteLength): FetchRequest => ({
  cluster: 'payload-test',
  round: 0,
  hash: Buffer.from(hashes[index]!, 'hex'),
  size,
})
/** Byte equality without vitest's element-by-element diff, which takes seconds on 400 KB. */
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0
/** The payload streams of the worker's connection to the server, as libp2p counts them. */
const payloadStreams = () =>
  worker.libp2p
    .getConnections(serverId)
    .flatMap((connection) => connection.streams)
    .filter((stream) => stream.protocol === payloadProtocol && stream.status === 'open')

beforeAll(async () => {
  const keys = (await Promise.all([0, 1].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  const ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
  const membership = () =>
    createMembership({
      members: [
        [ids[0]!, 'server'],
        [ids[1]!, 'worker'],
      ],
    })
  const nodeOf = (index: number) =>
    createNetNode({
      cluster: 'payload-test',
      role: index === 0 ? 'server' : 'worker',
      dimension,
      membership: membership(),
      logger,
      privateKey: keys[index]!,
      // The server serves payloads it offers by hand, as only a Byzantine role does.
      adversary: index === 0,
    })
  server = await nodeOf(0)
  worker = await nodeOf(1)
  await server.start()
  await worker.start()
  await worker.dial(server.multiaddrs()[0]!)
  serverId = server.libp2p.peerId
  hashes = payloads.map((bytes) => server.adversary!.offerPayload(bytes))
})

afterAll(async () => {
  await Promise.all([server?.stop(), worker?.stop()])
})

describe('PayloadFetcher', () => {
  it('carries every exchange with a peer, sequential or concurrent, over one stream', async () => {
    const fetcher = new PayloadFetcher(worker.libp2p)
    const signal = () => AbortSignal.timeout(10_000)
    const first = await fetcher.fetch(serverId, requestOf(0), signal())
    const concurrent = await Promise.all(
      [1, 2, 1, 0].map((index) => fetcher.fetch(serverId, requestOf(index), signal())),
    )
    for (const [index, result] of [
      [0, first],
      ...[1, 2, 1, 0].map((index, i) => [index, concurrent[i]] as const),
    ] as const) {
      expect(result?.ok).toBe(true)
      if (!result?.ok) continue
      expect(sameBytes(result.bytes, payloads[index]!)).toBe(true)
      // A buffer of its own: callers wrap the whole ArrayBuffer as a vector.
      expect(result.bytes.byteOffset).toBe(0)
      expect(result.bytes.buffer.byteLength).toBe(payloads[index]!.byteLength)
    }
    expect(fetcher.openStreams).toBe(1)
    expect(payloadStreams()).toHaveLength(1)
    fetcher.close()
  })

  it('keeps the stream after NOT_FOUND, drops it after a size mismatch, and recovers', async () => {
    const fetcher = new PayloadFetcher(worker.libp2p)
    const signal = () => AbortSignal.timeout(10_000)
    expect((await fetcher.fetch(serverId, requestOf(0), signal())).ok).toBe(true)
    const [stream] = payloadStreams()

    const unknown = { ...requestOf(0), hash: new Uint8Array(32) }
    expect(await fetcher.fetch(serverId, unknown, signal())).toEqual({
      ok: false,
      detail: 'peer does not have the payload',
    })
    expect(payloadStreams().map((s) => s.id)).toEqual([stream!.id])

    expect(await fetcher.fetch(serverId, requestOf(1, 8), signal())).toEqual({
      ok: false,
      detail: `peer offers ${4 * dimension} bytes, announced 8`,
    })
    expect(fetcher.openStreams).toBe(0)

    const again = await fetcher.fetch(serverId, requestOf(1), signal())
    expect(again.ok && sameBytes(again.bytes, payloads[1]!)).toBe(true)
    expect(payloadStreams().map((s) => s.id)).not.toContain(stream!.id)
    expect(fetcher.openStreams).toBe(1)
    fetcher.close()
  })

  it('fails a fetch whose time ran out while it waited for its turn, touching no stream', async () => {
    const fetcher = new PayloadFetcher(worker.libp2p)
    const expired = AbortSignal.abort()
    expect(await fetcher.fetch(serverId, requestOf(0), expired)).toEqual({
      ok: false,
      detail: 'timed out waiting for an earlier fetch from this peer',
    })
    expect(fetcher.openStreams).toBe(0)
    fetcher.close()
  })

  it('a malformed request ends only its own stream; the server goes on serving', async () => {
    const stream = await worker.libp2p.dialProtocol(serverId, payloadProtocol)
    await stream.sink([lp.encode.single(Uint8Array.of(0xff, 0xff, 0xff))])
    const chunks: unknown[] = []
    // The server aborts the stream: the read ends (with or without an error), with no answer.
    await (async () => {
      for await (const chunk of stream.source) chunks.push(chunk)
    })().catch(() => undefined)
    expect(chunks).toEqual([])
    const fetcher = new PayloadFetcher(worker.libp2p)
    const result = await fetcher.fetch(serverId, requestOf(2), AbortSignal.timeout(10_000))
    expect(result.ok && sameBytes(result.bytes, payloads[2]!)).toBe(true)
    fetcher.close()
  })
})
