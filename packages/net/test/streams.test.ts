/**
 * Served streams bounded (issue 13, item 6, data plane): a Byzantine member and an outsider try
 * to hold streams open, to open more than their share, and to pull the same bytes again and again;
 * each attempt is refused, counted in `streams_refused_total`, and serves nothing it should not.
 * Plus the bounds themselves (StreamSlots, ByteBuckets) as table-driven units.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { byteStream } from 'it-byte-stream'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ByteBuckets, createMembership, createNetNode, type NetNode, StreamSlots } from '../src/index.js'
import { PayloadFetcher, payloadProtocol } from '../src/payload.js'
import { fetchSync, syncProtocol } from '../src/sync.js'

const logger = pino({ level: 'silent' })
const cluster = 'streams'
const dimension = 20_000
let victim: NetNode
let insider: NetNode
let outsider: NetNode
let hash: string
const payload = new Uint8Array(4 * dimension).map((_, i) => i % 251)
const opened: Stream[] = []

beforeAll(async () => {
  const keys = (await Promise.all([0, 1, 2].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  const ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
  // Open: a stranger may connect (as a worker admitted a moment ago would), and is no member.
  const membership = () =>
    createMembership({
      members: [
        [ids[0]!, 'server'],
        [ids[1]!, 'worker'],
      ],
      closed: false,
    })
  const nodeOf = (index: number, limits = {}) =>
    createNetNode({
      cluster,
      role: index === 0 ? 'server' : 'worker',
      dimension,
      membership: membership(),
      logger,
      privateKey: keys[index]!,
      ...limits,
    })
  victim = await nodeOf(0, {
    maxStreamsPerPeer: 2,
    streamIdleTimeoutMs: 400,
    // One payload at a full bucket, then (at one byte per second) nothing more in this test.
    servedBurstBytes: payload.byteLength,
    servedBytesPerSecond: 1,
    // It serves a payload offered by hand, as only a Byzantine role does.
    adversary: true,
  })
  insider = await nodeOf(1)
  outsider = await nodeOf(2)
  for (const node of [victim, insider, outsider]) await node.start()
  await insider.dial(victim.multiaddrs()[0]!)
  await outsider.dial(victim.multiaddrs()[0]!)
  hash = victim.adversary!.offerPayload(payload)
})

afterAll(async () => {
  for (const stream of opened) stream.abort(new Error('test over'))
  await Promise.all([victim?.stop(), insider?.stop(), outsider?.stop()])
})

const refused = () => victim.counters.streams_refused_total
const guard = { timeout: 10_000, interval: 20 }

describe('served streams', () => {
  it('refuses a member’s streams past its limit, and closes the idle ones', async () => {
    const before = { ...refused() }
    const streams = await Promise.all(
      [0, 1, 2, 3].map(() => insider.libp2p.dialProtocol(victim.libp2p.peerId, payloadProtocol)),
    )
    opened.push(...streams)
    await vi.waitFor(() => expect(refused().concurrent - before.concurrent).toBe(2), guard)
    // The two it was allowed sit idle (no request) and are closed, counted.
    await vi.waitFor(() => expect(refused().idle - before.idle).toBe(2), guard)
    expect(victim.counters.payload_served_bytes_total).toBe(0)
  })

  it('serves a member the same payload once per byte budget, and answers NOT_FOUND past it', async () => {
    const fetcher = new PayloadFetcher(insider.libp2p)
    const request = { cluster, round: 0, hash: Buffer.from(hash, 'hex'), size: payload.byteLength }
    const before = refused().rate
    const results = []
    for (let i = 0; i < 3; i++)
      results.push(await fetcher.fetch(victim.libp2p.peerId, request, AbortSignal.timeout(10_000)))
    fetcher.close()
    expect(results.map((r) => r.ok)).toEqual([true, false, false])
    expect(refused().rate - before).toBe(2)
    expect(victim.counters.payload_served_bytes_total).toBe(payload.byteLength)
  })

  it('reopens a payload stream the server closed as idle, without failing the next fetch', async () => {
    const fetcher = new PayloadFetcher(insider.libp2p)
    // An unknown hash: NOT_FOUND keeps the stream open and takes nothing from the byte budget.
    const request = { cluster, round: 0, hash: new Uint8Array(32).fill(9), size: payload.byteLength }
    const before = refused().idle
    const first = await fetcher.fetch(victim.libp2p.peerId, request, AbortSignal.timeout(10_000))
    expect(first).toEqual({ ok: false, detail: 'peer does not have the payload' })
    await vi.waitFor(() => expect(refused().idle - before).toBe(1), guard)
    const second = await fetcher.fetch(victim.libp2p.peerId, request, AbortSignal.timeout(10_000))
    fetcher.close()
    // Answered (on a new stream), not a broken exchange.
    expect(second).toEqual({ ok: false, detail: 'peer does not have the payload' })
  })

  it('closes an outsider’s sync and payload streams that never send a request', async () => {
    const before = refused().idle
    const sync = await outsider.libp2p.dialProtocol(victim.libp2p.peerId, syncProtocol)
    const raw = await outsider.libp2p.dialProtocol(victim.libp2p.peerId, payloadProtocol)
    opened.push(sync, raw)
    // Half a length prefix on the payload stream: the request never completes.
    await byteStream(raw).write(Uint8Array.of(0x80))
    await vi.waitFor(() => expect(refused().idle - before).toBe(2), guard)
    expect(victim.counters.sync_served_bytes_total).toBe(0)
    expect(victim.received('model', 0)).toEqual([])
  })
})

describe('StreamSlots', () => {
  it.each([
    [1, 3, 1],
    [2, 5, 2],
    [4, 4, 4],
  ])('limit %i: of %i asked, %i granted; all released leaves nothing', (limit, asked, granted) => {
    const slots = new StreamSlots(limit)
    const releases = Array.from({ length: asked }, () => slots.acquire('p'))
    expect(releases.filter((r) => r !== undefined)).toHaveLength(granted)
    for (const release of releases) release?.()
    // Releasing twice must not free a slot someone else holds.
    releases[0]?.()
    expect(slots.peers).toBe(0)
    expect(slots.acquire('p')).toBeDefined()
  })
})

describe('ByteBuckets', () => {
  it.each([
    {
      name: 'a burst, then refusals until it refills',
      requests: [100, 1, 1],
      advanceMs: 0,
      expected: [true, false, false],
    },
    {
      name: 'a request larger than the burst passes at a full bucket',
      requests: [500, 1],
      advanceMs: 0,
      expected: [true, false],
    },
    { name: 'refills at the rate', requests: [100, 1], advanceMs: 1500, expected: [true, true] },
  ])('$name', ({ requests, advanceMs, expected }) => {
    let now = 0
    const buckets = new ByteBuckets(100, 100, 4, () => now)
    const got = requests.map((bytes, i) => {
      if (i > 0) now += advanceMs
      return buckets.take('p', bytes)
    })
    expect(got).toEqual(expected)
  })

  it('keeps at most maxPeers buckets, however many peers come and go', () => {
    let now = 0
    const buckets = new ByteBuckets(100, 100, 8, () => now)
    for (let i = 0; i < 1000; i++) {
      buckets.take(`peer-${i}`, 50)
      now += 10
    }
    expect(buckets.peers).toBeLessThanOrEqual(8)
  })
})

describe('sync answers', () => {
  it('end where a member’s byte budget does, counted, after streaming what fits', async () => {
    const keys = (await Promise.all(
      [0, 1, 2].map(() => generateKeyPair('Ed25519')),
    )) as unknown as PrivateKey[]
    const ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
    const roles = ['server', 'worker', 'worker'] as const
    const small = 64
    const nodes = await Promise.all(
      keys.map((privateKey, index) =>
        createNetNode({
          cluster: 'sync-budget',
          role: roles[index]!,
          dimension: small,
          membership: createMembership({ members: ids.map((id, i) => [id, roles[i]!] as const) }),
          logger,
          privateKey,
          // The holder serves about one inline message at a full bucket, then refills at 1 B/s.
          ...(index === 1 ? { servedBurstBytes: 600, servedBytesPerSecond: 1 } : {}),
        }),
      ),
    )
    const [origin, holder, insider] = nodes as [NetNode, NetNode, NetNode]
    try {
      for (const node of nodes) await node.start()
      await holder.dial(origin.multiaddrs()[0]!)
      await origin.waitForSubscribers('model', 1)
      const arrived = new Promise<void>((resolve) => {
        const off = holder.on('vector', () => {
          if (holder.received('model', 0).length + holder.received('model', 1).length < 2) return
          off()
          resolve()
        })
      })
      await origin.publish('model', 0, new Float32Array(small).fill(1))
      await origin.publish('model', 1, new Float32Array(small).fill(2))
      await arrived
      await insider.dial(holder.multiaddrs()[0]!)
      const before = holder.counters.streams_refused_total.rate
      const answer = await fetchSync(
        insider.libp2p,
        holder.libp2p.peerId,
        { cluster: 'sync-budget', kind: 'model', fromRound: 0, maxMessageBytes: 8192, maxMessages: 16 },
        AbortSignal.timeout(10_000),
      )
      // Two held, one fits the budget: the answer ends there.
      expect(answer).toHaveLength(1)
      expect(holder.counters.streams_refused_total.rate - before).toBe(1)
      expect(holder.counters.sync_served_bytes_total).toBeGreaterThan(0)
      expect(holder.counters.sync_served_bytes_total).toBeLessThanOrEqual(600)
      expect(insider.received('model', 0)).toEqual([])
    } finally {
      await Promise.all(nodes.map((node) => node.stop()))
    }
  })
})
