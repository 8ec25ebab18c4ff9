/**
 * The node factory in one process (two real libp2p nodes over loopback TCP): configuration
 * errors, caller errors, a streamed vector end to end with no copy on the way (a node serves
 * from the very arrays it delivered and published, and a peer refuses what was written into them
 * against the signed hash); hanging up on and redialling a peer, and the adversary only where
 * asked for.
 */

import { createServer } from 'node:net'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { KEEP_ALIVE, type PeerId, type PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMembership, createNetNode, type NetNode, type NetNodeInit } from '../src/index.js'

const logger = pino({ level: 'silent' })
const dimension = 40_000 // 160 KB: announced and pulled over a stream
let keys: PrivateKey[]
let ids: string[]
const nodes: NetNode[] = []

function init(index: number, overrides: Partial<NetNodeInit> = {}): NetNodeInit {
  return {
    cluster: 'node-test',
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
    ...overrides,
  }
}

beforeAll(async () => {
  keys = (await Promise.all([0, 1].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
})

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.stop()))
})

describe('createNetNode', () => {
  it.each([
    ['dimension', { dimension: 0 }],
    ['roundWindowAhead', { roundWindowAhead: -1 }],
    ['dimension', { dimension: 1000, maxPayloadBytes: 3999 }],
    ['inlineMaxBytes', { inlineMaxBytes: 8 * 1024 * 1024 }],
    ['cluster', { cluster: 'has/slash' }],
    ['gossipMeshDegree', { gossipMeshDegree: 0 }],
    ['encrypter', { encrypter: 'plaintext' as never }],
  ])('refuses a bad %s with NetConfigError', async (field, overrides) => {
    const error = await createNetNode(init(0, overrides)).catch((e: unknown) => e)
    expect((error as Error).name).toBe('NetConfigError')
    expect(error).toMatchObject({ field })
  })

  it('publishes a streamed vector that arrives intact, and guards its own inputs', async () => {
    const server = await createNetNode(init(0))
    const worker = await createNetNode(init(1))
    nodes.push(server, worker)
    await expect(server.publish('model', 0, new Float32Array(dimension))).rejects.toMatchObject({
      name: 'NodeNotStartedError',
    })
    await server.start()
    await worker.start()
    await worker.dial(server.multiaddrs()[0]!)
    await server.waitForSubscribers('model', 1)
    await expect(server.publish('model', 0, new Float32Array(3))).rejects.toMatchObject({
      name: 'DimensionMismatchError',
      // One DimensionMismatchError for rules, attacks and publish now: `actual` is what was `dimension`.
      code: 'dimension_mismatch',
      actual: 3,
      expected: dimension,
    })

    const theta = Float32Array.from({ length: dimension }, (_, i) => i / 7)
    const receipt = await server.publish('model', 0, theta)
    expect(receipt.inline).toBe(false)
    const [got] = await worker.collect('model', 0, { quorum: 1, timeoutMs: 30_000 })
    expect(got?.sender).toBe(server.peerId)
    expect(got?.hash).toBe(receipt.hash)
    expect(got?.vector).toEqual(theta)
    // The server counts its own model towards its quorum.
    expect((await server.collect('model', 0, { quorum: 1, timeoutMs: 10 }))[0]?.self).toBe(true)
    expect(worker.counters.payload_fetched_bytes_total).toBe(4 * dimension)
    expect(server.counters.payload_served_bytes_total).toBe(4 * dimension)
    // The wire bytes are every byte of the connection: the payload plus gossip, framing, encryption.
    expect(worker.counters.wire_received_bytes_total).toBeGreaterThan(4 * dimension)
    expect(server.counters.wire_sent_bytes_total).toBeGreaterThan(4 * dimension)
    expect(worker.counters.wire_sent_bytes_total).toBeGreaterThan(0)

    // Nothing is copied on the way: the worker relays from the very array it delivered, and the
    // server serves from the very array its caller published. So writing into either (which
    // `DeliveredVector` and `NetNode.publish` forbid) changes what that node serves, and a peer
    // pulling it refuses the bytes against the signed hash: the guarantee is the receiver's check.
    const sent = Buffer.from(theta.buffer.slice(0))
    const thirdKey = (await generateKeyPair('Ed25519')) as unknown as PrivateKey
    // Else the gaters refuse it.
    for (const node of [worker, server])
      node.membership.add(peerIdFromPrivateKey(thirdKey).toString(), 'worker')
    const third = await createNetNode(
      init(1, { privateKey: thirdKey, membership: createMembership({ closed: false }) }),
    )
    nodes.push(third)
    await third.start()
    await third.dial(worker.multiaddrs()[0]!)
    await third.dial(server.multiaddrs()[0]!)
    const { PayloadFetcher } = await import('../src/payload.js')
    const { checkReceived } = await import('../src/validation.js')
    const fetcher = new PayloadFetcher(third.libp2p)
    const header = { size: 4 * dimension, hash: Buffer.from(receipt.hash, 'hex') }
    const pull = async (from: NetNode) => {
      const fetched = await fetcher.fetch(
        from.libp2p.peerId,
        { cluster: 'node-test', round: 0, hash: header.hash, size: header.size },
        AbortSignal.timeout(10_000),
      )
      expect(fetched.ok).toBe(true)
      return fetched.ok ? fetched : undefined
    }
    const relayed = await pull(worker)
    expect(Buffer.compare(relayed!.bytes, sent)).toBe(0)
    expect(checkReceived(header, relayed!)).toBeUndefined()
    got!.vector[7] = Number.NaN
    expect(checkReceived(header, (await pull(worker))!)?.reason).toBe('hash_mismatch')
    expect(checkReceived(header, (await pull(server))!)).toBeUndefined()
    theta.fill(-1)
    expect(checkReceived(header, (await pull(server))!)?.reason).toBe('hash_mismatch')
    fetcher.close()
  })

  it('keeps dialling a bootstrap address that refused until its peer listens', async () => {
    // A port nobody listens on yet: the server will take it after the worker's first dial fails.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const address = probe.address()
        probe.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
      })
    })
    const worker = await createNetNode(
      init(1, { bootstrap: [`/ip4/127.0.0.1/tcp/${port}`], bootstrapRetryMs: [50, 200] }),
    )
    nodes.push(worker)
    await worker.start()
    expect(worker.libp2p.getConnections()).toEqual([])

    const connected = new Promise<string>((resolve) => {
      worker.libp2p.addEventListener('peer:connect', (event) => resolve(event.detail.toString()))
    })
    const server = await createNetNode(init(0, { listen: [`/ip4/127.0.0.1/tcp/${port}`] }))
    nodes.push(server)
    await server.start()
    expect(await connected).toBe(server.peerId)
  })
})

/** Resolves once `node` holds a keep-alive tag on `peer` (what libp2p's reconnect queue redials). */
function keptAlive(node: NetNode, peer: PeerId): Promise<boolean> {
  return node.libp2p.peerStore.get(peer).then(
    (found) => [...found.tags.keys()].some((tag) => tag.startsWith(KEEP_ALIVE)),
    () => false,
  )
}

function untilKeptAlive(node: NetNode, peer: PeerId): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      void keptAlive(node, peer).then((tagged) => {
        if (!tagged) return
        node.libp2p.removeEventListener('peer:update', check)
        resolve()
      })
    }
    node.libp2p.addEventListener('peer:update', check)
    check()
  })
}

describe('connectivity', () => {
  it('hangs up on a peer (connections closed, keep-alive dropped) and redials it from the peer store', async () => {
    // The server does not count the worker as a member (open set): it tags and redials nothing,
    // so only the worker's own calls move the connection.
    const server = await createNetNode(
      init(0, { membership: createMembership({ members: [[ids[0]!, 'server']], closed: false }) }),
    )
    const worker = await createNetNode(init(1))
    nodes.push(server, worker)
    await server.start()
    await worker.start()
    const serverId = server.libp2p.peerId
    const tagged = untilKeptAlive(worker, serverId)
    await worker.dial(server.multiaddrs()[0]!)
    await tagged
    expect(worker.connectedPeers()).toEqual([server.peerId])

    const disconnected = new Promise<string>((resolve) => {
      worker.libp2p.addEventListener('peer:disconnect', (event) => resolve(event.detail.toString()))
    })
    await worker.hangUp(server.peerId)
    expect(await disconnected).toBe(server.peerId)
    expect(worker.connectedPeers()).toEqual([])
    expect(await keptAlive(worker, serverId)).toBe(false)

    await worker.redial(server.peerId)
    expect(worker.connectedPeers()).toEqual([server.peerId])
    // Connected already: no second connection.
    await worker.redial(server.peerId)
    expect(worker.libp2p.getConnections(serverId)).toHaveLength(1)
  })

  it('gives a node the Byzantine-only publishing only when created with adversary', async () => {
    const honest = await createNetNode(init(0))
    const byzantine = await createNetNode(init(1, { adversary: true }))
    nodes.push(honest, byzantine)
    expect(honest.adversary).toBeUndefined()
    expect(typeof byzantine.adversary?.publishTargeted).toBe('function')
  })
})
