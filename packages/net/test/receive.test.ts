/**
 * Receiving into place (`src/receive.ts`): a payload cut into chunks of any sizes, odd ones and
 * floats split across chunks included, arrives bit-exact in the array that is delivered, hashed
 * and scanned for finiteness once; a corrupted chunk fails the hash (before finiteness is
 * judged); an oversize size is refused before anything is allocated or any stream is opened.
 * Then the same over a real payload stream between two libp2p nodes, whose Yamux frames
 * (65 519 bytes) split a float.
 */
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { firstNonFinite } from '../src/codec.js'
import { createMembership, createNetNode, type NetNode } from '../src/index.js'
import { PayloadFetcher } from '../src/payload.js'
import { inspectPayload, PayloadSink, type ReceivedPayload } from '../src/receive.js'
import { checkReceived } from '../src/validation.js'

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest()
const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b) === 0

/** `bytes` cut at `sizes` (cycled), the last chunk whatever is left. */
function chunks(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let offset = 0, i = 0; offset < bytes.byteLength; i++) {
    const size = Math.max(1, sizes[i % sizes.length]!)
    out.push(bytes.subarray(offset, offset + size))
    offset += size
  }
  return out
}

function receive(parts: readonly Uint8Array[], size: number, littleEndian?: boolean): ReceivedPayload {
  const sink = PayloadSink.open(size, 1 << 30, littleEndian)
  if (typeof sink === 'string') throw new Error(sink)
  for (const part of parts) sink.write(part)
  return sink.finish()
}

/** Float32 coordinates base + i/8, as little-endian bytes (independent of the code under test). */
function payloadOf(dimension: number, base = 1): Uint8Array {
  const bytes = new Uint8Array(4 * dimension)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < dimension; i++) view.setFloat32(4 * i, base + i / 8, true)
  return bytes
}

/** The first non-finite coordinate of little-endian float32 bytes, read one float at a time. */
function expectedNonFinite(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let i = 0; 4 * i < bytes.byteLength; i++) if (!Number.isFinite(view.getFloat32(4 * i, true))) return i
  return -1
}

describe('PayloadSink', () => {
  const payload = payloadOf(10_007)
  it.each([
    ['one chunk', [payload.byteLength]],
    ['single bytes', [1]],
    ['3-byte chunks', [3]],
    ['5, 7 and 1', [5, 7, 1]],
    ['a prime past a page', [4093]],
    ['Yamux frames', [65_519]],
    ['odd then whole floats', [1, 4, 2, 8, 3]],
  ])('receives %s bit-exact into the array it delivers', (_name, sizes) => {
    const received = receive(chunks(payload, sizes), payload.byteLength)
    expect(sameBytes(received.bytes, payload)).toBe(true)
    expect(sameBytes(received.digest, sha256(payload))).toBe(true)
    expect(received.firstNonFinite).toBe(-1)
    // Into place: the vector is the received bytes, from offset 0 of a buffer of its own.
    expect(received.vector.buffer).toBe(received.bytes.buffer)
    expect(received.bytes.byteOffset).toBe(0)
    expect(received.bytes.buffer.byteLength).toBe(payload.byteLength)
    expect(received.vector[10_006]).toBe(Math.fround(1 + 10_006 / 8))
  })

  it('arrives bit-exact, hashed and scanned once, however it is cut (property, both byte orders)', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 0, max: 512 })
          .chain((floats) =>
            fc.tuple(
              fc.uint8Array({ minLength: 4 * floats, maxLength: 4 * floats }),
              fc.array(fc.integer({ min: 1, max: 37 }), { minLength: 1, maxLength: 16 }),
              fc.boolean(),
            ),
          ),
        ([bytes, sizes, littleEndian]) => {
          const received = receive(chunks(bytes, sizes), bytes.byteLength, littleEndian)
          expect(sameBytes(received.bytes, bytes)).toBe(true)
          expect(sameBytes(received.digest, sha256(bytes))).toBe(true)
          // Random bytes are often NaN or ±Infinity somewhere, split across chunks or not.
          expect(received.firstNonFinite).toBe(expectedNonFinite(bytes))
          const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
          for (let i = 0; i < received.vector.length; i++) {
            const value = view.getFloat32(4 * i, true)
            if (!Number.isNaN(value)) expect(received.vector[i]).toBe(value)
          }
          // The whole-payload path for inline payloads agrees with the chunked one.
          const inline = inspectPayload(bytes, littleEndian)
          expect(sameBytes(inline.digest, received.digest)).toBe(true)
          expect(inline.firstNonFinite).toBe(received.firstNonFinite)
        },
      ),
    )
  })

  it.each([
    ['a flipped bit in the first chunk', 0, 0x01],
    ['a flipped bit in a middle chunk', 20_001, 0x80],
    ['a changed last byte', 40_027, 0xff],
  ])('fails the hash with %s', (_name, at, mask) => {
    const corrupted = payload.slice()
    corrupted[at]! ^= mask
    const received = receive(chunks(corrupted, [4093, 3]), payload.byteLength)
    expect(checkReceived({ size: payload.byteLength, hash: sha256(payload) }, received)).toEqual({
      reason: 'hash_mismatch',
      detail: 'payload does not match the signed sha256',
    })
  })

  it('judges the hash before finiteness: NaN bytes are the signer’s fault only when they match it', () => {
    const withNaN = payload.slice()
    // Coordinate 1000 split over two chunks (bytes 4000–4003, cut after 4001).
    new DataView(withNaN.buffer).setFloat32(4000, Number.NaN, true)
    const received = receive(chunks(withNaN, [4001, 7]), withNaN.byteLength)
    expect(received.firstNonFinite).toBe(1000)
    expect(checkReceived({ size: withNaN.byteLength, hash: sha256(withNaN) }, received)).toEqual({
      reason: 'non_finite',
      detail: 'coordinate 1000 is not finite',
    })
    expect(checkReceived({ size: payload.byteLength, hash: sha256(payload) }, received)?.reason).toBe(
      'hash_mismatch',
    )
  })

  it.each([
    ['over the bound', 64 + 4, 64],
    ['far over the bound (an allocation would throw)', 2 ** 52, 64 * 1024 * 1024],
    ['not float32', 6, 64],
    ['negative', -4, 64],
    ['not an integer', 4.5, 64],
  ])('refuses a size %s without allocating', (_name, size, maxBytes) => {
    expect(typeof PayloadSink.open(size, maxBytes)).toBe('string')
  })

  it('refuses bytes past the announced size and a finish before the last byte', () => {
    const sink = PayloadSink.open(8, 64) as PayloadSink
    sink.write(new Uint8Array(5))
    expect(() => sink.finish()).toThrow(/5 of 8 bytes/)
    expect(() => sink.write(new Uint8Array(4))).toThrow(/more than the 8 bytes/)
  })
})

describe('PayloadFetcher sizes', () => {
  it('refuses an oversize request before opening a stream or allocating', async () => {
    const dialProtocol = vi.fn()
    const open = vi.spyOn(PayloadSink, 'open')
    const fetcher = new PayloadFetcher({ dialProtocol } as unknown as Libp2p, { maxPayloadBytes: 1024 })
    const result = await fetcher.fetch(
      peerIdFromPrivateKey((await generateKeyPair('Ed25519')) as unknown as PrivateKey),
      { cluster: 'c', round: 0, hash: new Uint8Array(32), size: 1028 },
      AbortSignal.timeout(1000),
    )
    expect(result).toEqual({ ok: false, detail: 'payload of 1028 bytes, at most 1024' })
    expect(dialProtocol).not.toHaveBeenCalled()
    expect(open).not.toHaveBeenCalled()
    open.mockRestore()
  })
})

describe('over a payload stream', () => {
  const logger = pino({ level: 'silent' })
  // A Yamux data frame carries 65 507 bytes (one 65 519-byte Noise frame less its 12-byte header):
  // float 16 376 (bytes 65 504–65 507) is split 3 | 1 between the first two.
  const dimension = 100_000
  const payload = payloadOf(dimension, 3)
  const lying = payloadOf(dimension, 5)
  const lyingHash = sha256(lying)
  const withNaN = payload.slice()
  new DataView(withNaN.buffer).setFloat32(4 * 16_376, Number.POSITIVE_INFINITY, true)
  let server: NetNode
  let worker: NetNode
  let serverId: PeerId
  const hashes: Record<string, string> = {}

  beforeAll(async () => {
    const keys = (await Promise.all([0, 1].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
    const ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
    const nodeOf = (index: number) =>
      createNetNode({
        cluster: 'receive-test',
        role: index === 0 ? 'server' : 'worker',
        dimension,
        membership: createMembership({
          members: [
            [ids[0]!, 'server'],
            [ids[1]!, 'worker'],
          ],
        }),
        logger,
        privateKey: keys[index]!,
        adversary: index === 0,
      })
    server = await nodeOf(0)
    worker = await nodeOf(1)
    await server.start()
    await worker.start()
    await worker.dial(server.multiaddrs()[0]!)
    serverId = server.libp2p.peerId
    hashes.intact = server.adversary!.offerPayload(payload)
    hashes.nan = server.adversary!.offerPayload(withNaN)
    // Served under the hash of the intact bytes, one bit off in the fourth frame: a lying relay.
    hashes.lying = server.adversary!.offerPayload(lying)
    lying[3 * 65_507 + 11]! ^= 0x10
  })

  afterAll(async () => {
    await Promise.all([server?.stop(), worker?.stop()])
  })

  const fetch = async (fetcher: PayloadFetcher, hash: string) => {
    const result = await fetcher.fetch(
      serverId,
      { cluster: 'receive-test', round: 0, hash: Buffer.from(hash, 'hex'), size: payload.byteLength },
      AbortSignal.timeout(10_000),
    )
    if (!result.ok) throw new Error(result.detail)
    return result
  }

  it('delivers bit-exact bytes into the vector, and refuses a corrupted or non-finite one by its reason', async () => {
    const fetcher = new PayloadFetcher(worker.libp2p)
    const intact = await fetch(fetcher, hashes.intact!)
    expect(sameBytes(intact.bytes, payload)).toBe(true)
    expect(intact.vector.buffer).toBe(intact.bytes.buffer)
    expect(checkReceived({ size: payload.byteLength, hash: sha256(payload) }, intact)).toBeUndefined()

    const lied = await fetch(fetcher, hashes.lying!)
    expect(checkReceived({ size: lying.byteLength, hash: lyingHash }, lied)?.reason).toBe('hash_mismatch')

    const nan = await fetch(fetcher, hashes.nan!)
    expect(nan.firstNonFinite).toBe(16_376)
    expect(firstNonFinite(nan.vector)).toBe(16_376)
    expect(checkReceived({ size: withNaN.byteLength, hash: sha256(withNaN) }, nan)?.reason).toBe('non_finite')
    // Three exchanges, one stream.
    expect(fetcher.openStreams).toBe(1)
    fetcher.close()
  })

  it('allocates nothing for a peer offering another size than announced', async () => {
    const fetcher = new PayloadFetcher(worker.libp2p)
    const open = vi.spyOn(PayloadSink, 'open')
    const result = await fetcher.fetch(
      serverId,
      { cluster: 'receive-test', round: 0, hash: Buffer.from(hashes.intact!, 'hex'), size: 4 * 16 },
      AbortSignal.timeout(10_000),
    )
    expect(result).toEqual({ ok: false, detail: `peer offers ${payload.byteLength} bytes, announced 64` })
    expect(open).not.toHaveBeenCalled()
    open.mockRestore()
    fetcher.close()
  })
})
