/**
 * Sync (`/phalanx/sync/1.0.0`): a straggler gets a vector whose signer is gone from a peer that
 * received it, and a relay cannot alter what it hands on.
 */
import { RPC } from '@chainsafe/libp2p-gossipsub/message'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import pino from 'pino'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createMembership, createNetNode, type NetNode } from '../src/index.js'
import { verifyRelayed } from '../src/sync.js'

const logger = pino({ level: 'silent' })
let keys: PrivateKey[]
let ids: string[]
let nodes: NetNode[] = []

beforeAll(async () => {
  keys = (await Promise.all([0, 1, 2].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
})

afterEach(async () => {
  await Promise.all(nodes.map((node) => node.stop()))
  nodes = []
})

async function server(index: number, dimension: number): Promise<NetNode> {
  const node = await createNetNode({
    cluster: 'sync-test',
    role: 'server',
    dimension,
    membership: createMembership({ members: ids.map((id) => [id, 'server'] as const) }),
    logger,
    privateKey: keys[index]!,
  })
  nodes.push(node)
  await node.start()
  return node
}

describe('pull', () => {
  it.each([
    ['inline', 100],
    ['announced and fetched', 40_000],
  ])('hands on an %s vector whose signer is gone', async (_label, dimension) => {
    const origin = await server(0, dimension)
    const relay = await server(1, dimension)
    await relay.dial(origin.multiaddrs()[0]!)
    await origin.waitForSubscribers('model', 1)
    const theta = Float32Array.from({ length: dimension }, (_, i) => Math.sin(i))
    const arrived = relay.collect('model', 0, { quorum: 1, timeoutMs: 10_000 })
    await origin.publish('model', 0, theta)
    await arrived
    await origin.stop()

    const straggler = await server(2, dimension)
    await straggler.dial(relay.multiaddrs()[0]!)
    expect(straggler.received('model', 0)).toHaveLength(0)
    expect(await straggler.pull('model', 0)).toBe(1)
    const [got] = straggler.received('model', 0)
    expect(got?.sender).toBe(ids[0])
    expect(got?.vector).toEqual(theta)
    expect(straggler.counters.messages_synced_total).toBe(1)
    // Held already: nothing new, and no rejection counted for it.
    expect(await straggler.pull('model', 0)).toBe(0)
    expect(straggler.rejected()).toEqual({})
  })

  it('asks only for rounds from fromRound on', async () => {
    const origin = await server(0, 10)
    const straggler = await server(2, 10)
    const relay = await server(1, 10)
    await relay.dial(origin.multiaddrs()[0]!)
    await origin.waitForSubscribers('model', 1)
    const arrived = relay.collect('model', 0, { quorum: 1, timeoutMs: 10_000 })
    await origin.publish('model', 0, new Float32Array(10).fill(1))
    await arrived
    await straggler.dial(relay.multiaddrs()[0]!)
    await origin.stop()
    expect(await straggler.pull('model', 1)).toBe(0)
    expect(await straggler.pull('gradient', 0)).toBe(0)
  })
})

describe('verifyRelayed', () => {
  const signPrefix = new TextEncoder().encode('libp2p-pubsub:')
  async function signed(key: PrivateKey, data: Uint8Array) {
    const fields = {
      from: peerIdFromPrivateKey(key).toMultihash().bytes,
      data,
      seqno: new Uint8Array([0, 0, 0, 0, 0, 0, 1, 2]),
      topic: 'phalanx/sync-test/models',
    }
    const encoded = RPC.Message.encode(fields)
    const bytes = new Uint8Array(signPrefix.byteLength + encoded.byteLength)
    bytes.set(signPrefix)
    bytes.set(encoded, signPrefix.byteLength)
    return { ...fields, signature: await key.sign(bytes) }
  }

  it('accepts what the origin signed, with its sequence number', async () => {
    const message = await verifyRelayed(await signed(keys[0]!, new Uint8Array([1, 2, 3])))
    expect(message).toMatchObject({ type: 'signed', sequenceNumber: 258n, topic: 'phalanx/sync-test/models' })
    expect(message?.type === 'signed' && message.from.toString()).toBe(ids[0])
  })

  it.each([
    ['altered data', { data: new Uint8Array([1, 2, 4]) }],
    ['another topic', { topic: 'phalanx/sync-test/gradients' }],
    ['another origin', { from: new Uint8Array(0) }],
    ['a short seqno', { seqno: new Uint8Array(4) }],
  ])('refuses %s', async (_label, change) => {
    const genuine = await signed(keys[0]!, new Uint8Array([1, 2, 3]))
    expect(await verifyRelayed({ ...genuine, ...change })).toBeUndefined()
  })

  it('refuses another origin claiming the message', async () => {
    const genuine = await signed(keys[0]!, new Uint8Array([1, 2, 3]))
    const from = peerIdFromPrivateKey(keys[1]!).toMultihash().bytes
    expect(await verifyRelayed({ ...genuine, from })).toBeUndefined()
  })
})
