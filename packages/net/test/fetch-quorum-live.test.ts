/**
 * A worker that uses the first 2 models of a round (`fetchQuorum`), over real libp2p nodes: three
 * servers, one of them Byzantine, announce 160 KB models (fetched over streams). The third model
 * is validated but not fetched; when the first sender turns out to have equivocated, the round is
 * short again and the skipped model is fetched at once, without a re-announcement.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createMembership, createNetNode, type NetNode, type NetNodeInit } from '../src/index.js'

const dimension = 40_000
const bytes = 4 * dimension
let keys: PrivateKey[]
let ids: string[]
const nodes: NetNode[] = []

function init(index: number, overrides: Partial<NetNodeInit> = {}): NetNodeInit {
  return {
    cluster: 'fetch-quorum',
    role: index < 3 ? 'server' : 'worker',
    dimension,
    membership: createMembership({
      members: ids.map((id, i) => [id, i < 3 ? 'server' : 'worker'] as const),
    }),
    logger: pino({ level: 'silent' }),
    privateKey: keys[index]!,
    ...overrides,
  }
}

const model = (base: number) => Float32Array.from({ length: dimension }, (_, i) => base + i / dimension)

beforeAll(async () => {
  keys = (await Promise.all([0, 1, 2, 3].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
})

afterAll(async () => {
  await Promise.all(nodes.map((node) => node.stop()))
})

describe('a worker that uses the first N−F models', () => {
  it('fetches no payload past its quorum, and fetches a skipped one once an equivocation leaves it short', async () => {
    const byzantine = await createNetNode(init(0, { adversary: true }))
    const honest = [await createNetNode(init(1)), await createNetNode(init(2))]
    const worker = await createNetNode(init(3, { fetchQuorum: { model: 2 } }))
    const servers = [byzantine, ...honest]
    nodes.push(...servers, worker)
    for (const node of [...servers, worker]) await node.start()
    for (const server of servers) await worker.dial(server.multiaddrs()[0]!)
    for (const server of servers) await server.waitForSubscribers('model', 1)

    // The Byzantine server hands the worker one version first: held, and counted.
    await byzantine.adversary!.publishTargeted('model', 0, [{ vector: model(1), receivers: [worker.peerId] }])
    await worker.collect('model', 0, { quorum: 1, timeoutMs: 30_000 })
    await honest[0]!.publish('model', 0, model(2))
    await worker.collect('model', 0, { quorum: 2, timeoutMs: 30_000 })
    expect(worker.counters.payload_fetched_bytes_total).toBe(2 * bytes)

    // Quorum held: the third announcement passes validation, its payload is not fetched.
    await honest[1]!.publish('model', 0, model(3))
    await vi.waitFor(() => expect(worker.counters.payload_fetches_skipped_total).toBe(1), { timeout: 30_000 })
    expect(worker.received('model', 0)).toHaveLength(2)
    expect(worker.counters.payload_fetched_bytes_total).toBe(2 * bytes)

    // The second version: caught from its hash alone (the ledger kept the first), the sender is
    // dropped for the round, and the skipped model is fetched to make up the quorum again.
    await byzantine.adversary!.publishTargeted('model', 0, [{ vector: model(9), receivers: [worker.peerId] }])
    await vi.waitFor(() => expect(worker.counters.equivocations_total).toBe(1), { timeout: 30_000 })
    expect(worker.isEquivocator('model', 0, byzantine.peerId)).toBe(true)
    const quorum = await worker.collect('model', 0, { quorum: 2, timeoutMs: 30_000 })
    expect(quorum.map((v) => v.sender).sort()).toEqual(honest.map((node) => node.peerId).sort())
    expect(quorum.find((v) => v.sender === honest[1]!.peerId)?.vector).toEqual(model(3))
    expect(worker.counters.payload_fetched_bytes_total).toBe(3 * bytes)
  }, 60_000)
})
