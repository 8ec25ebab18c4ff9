/**
 * No vector lost to one failed fetch (issue 13, item 1). A Byzantine relay forwards an announced
 * model and then stalls its payload (it accepts the payload stream and never answers): the
 * receiver gives that peer its own timeout and fetches from the announcer instead; and when every
 * peer it could ask failed, the announcement stays pending, so the announcer's republish is
 * fetched again instead of being refused as a duplicate. In-process nodes over loopback TCP.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  createMembership,
  createNetNode,
  type DeliveredVector,
  type NetNode,
  payloadProtocol,
  type RejectedMessage,
} from '@phalanx/net'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'

const logger = pino({ level: 'silent' })
const cluster = 'pending'
// Over the 64 KiB inline limit: announced, and fetched over a payload stream.
const dimension = 20_000
const running: NetNode[] = []
const stalled: Stream[] = []

afterEach(async () => {
  for (const stream of stalled.splice(0)) stream.abort(new Error('test over'))
  await Promise.all(running.splice(0).map((node) => node.stop()))
})

/** Announcer (a server), a Byzantine relay and a receiver (workers, so they take models). */
async function trio(): Promise<{ announcer: NetNode; relay: NetNode; receiver: NetNode }> {
  const keys = (await Promise.all([0, 1, 2].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  const ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
  const roles = ['server', 'worker', 'worker'] as const
  const nodes = await Promise.all(
    keys.map((privateKey, index) =>
      createNetNode({
        cluster,
        role: roles[index]!,
        dimension,
        membership: createMembership({ members: ids.map((id, i) => [id, roles[i]!] as const) }),
        logger,
        privateKey,
        // The announcer hands its vector to chosen peers only (`publishTargeted`).
        adversary: index === 0,
        // The relay serves the libp2p payload stream only (no TLS payload port), the one it
        // stalls below; the others fetch from it there and from each other over TLS.
        ...(index === 1 ? { payloadPlane: 'libp2p' as const } : {}),
      }),
    ),
  )
  running.push(...nodes)
  for (const node of nodes) await node.start()
  const [announcer, relay, receiver] = nodes as [NetNode, NetNode, NetNode]
  // The relay checks and forwards like any node, then never answers a request for the bytes.
  await relay.libp2p.unhandle(payloadProtocol)
  await relay.libp2p.handle(payloadProtocol, ({ stream }) => void stalled.push(stream), {
    maxInboundStreams: 64,
  })
  return { announcer, relay, receiver }
}

function next<T>(subscribe: (listener: (value: T) => void) => () => void, match: (value: T) => boolean) {
  return new Promise<T>((resolve) => {
    const off = subscribe((value) => {
      if (!match(value)) return
      off()
      resolve(value)
    })
  })
}

/** Resolves once `relay` holds `peer` in its model mesh, so it forwards what it validated to it. */
function inMesh(relay: NetNode, peer: NetNode): Promise<void> {
  const pubsub = relay.libp2p.services.pubsub
  const has = () => pubsub.getMeshPeers(relay.topics.models).includes(peer.peerId)
  return new Promise((resolve) => {
    const check = () => {
      if (!has()) return
      pubsub.removeEventListener('gossipsub:heartbeat', check)
      resolve()
    }
    pubsub.addEventListener('gossipsub:heartbeat', check)
    check()
  })
}

const model = () => Float32Array.from({ length: dimension }, (_, i) => (i % 97) / 97)

describe('a payload stalled by the relay', () => {
  it('is fetched from the announcer on that peer timing out', async () => {
    const { announcer, relay, receiver } = await trio()
    await relay.dial(announcer.multiaddrs()[0]!)
    await receiver.dial(relay.multiaddrs()[0]!)
    await receiver.dial(announcer.multiaddrs()[0]!)
    await Promise.all([announcer.waitForSubscribers('model', 2), relay.waitForSubscribers('model', 2)])
    await inMesh(relay, receiver)
    const delivered = next<DeliveredVector>(
      (l) => receiver.on('vector', l),
      (v) => v.sender === announcer.peerId && v.round === 0,
    )
    // Only the relay gets it from the announcer: the receiver hears it from the relay first.
    const [receipt] = await announcer.adversary!.publishTargeted('model', 0, [
      { vector: model(), receivers: [relay.peerId] },
    ])
    const vector = await withGuard(delivered, 20_000, 'the model was not delivered from the announcer')
    expect(vector.hash).toBe(receipt!.hash)
    expect(stalled.length).toBeGreaterThan(0)
    expect(receiver.counters.messages_rejected_total.payload_unavailable).toBe(0)
    expect(relay.counters.payload_served_bytes_total).toBe(0)
  })

  it('stays pending when every peer failed, and the announcer’s republish delivers it', async () => {
    const { announcer, relay, receiver } = await trio()
    await relay.dial(announcer.multiaddrs()[0]!)
    // Not connected to the announcer yet: the stalling relay is the only peer to ask.
    await receiver.dial(relay.multiaddrs()[0]!)
    await Promise.all([announcer.waitForSubscribers('model', 1), relay.waitForSubscribers('model', 2)])
    await inMesh(relay, receiver)
    const unavailable = next<RejectedMessage>(
      (l) => receiver.on('rejected', l),
      (r) => r.reason === 'payload_unavailable',
    )
    await announcer.publish('model', 0, model())
    await withGuard(unavailable, 20_000, 'the stalled fetch never gave up')
    expect(receiver.received('model', 0)).toEqual([])

    await receiver.dial(announcer.multiaddrs()[0]!)
    await announcer.waitForSubscribers('model', 2)
    const delivered = next<DeliveredVector>(
      (l) => receiver.on('vector', l),
      (v) => v.sender === announcer.peerId && v.round === 0,
    )
    expect(await announcer.republish('model', 0)).toBe(true)
    await withGuard(delivered, 20_000, 'the republished model was refused')
    expect(receiver.counters.messages_rejected_total.duplicate).toBe(0)
    expect(receiver.received('model', 0)).toHaveLength(1)
  })
})

/** A failure guard for an awaited event, never a measurement. */
function withGuard<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer))
}
