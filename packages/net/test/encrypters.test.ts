/**
 * The connection encrypter of `init.encrypter`, over two real libp2p nodes on loopback: each one
 * carries a streamed vector intact, and a node preferring one still connects to a node
 * preferring the other, the connection taking the dialer's preference (multistream-select: the
 * dialer proposes in order, the listener takes the first it knows).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import pino from 'pino'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createMembership,
  createNetNode,
  type EncrypterName,
  encrypterNames,
  type NetNode,
  netDefaults,
} from '../src/index.js'

const dimension = 40_000 // 160 KB: announced and pulled over a payload stream, not inline
/** The protocol ids libp2p records on a connection (`Connection.encryption`). */
const protocolOf: Record<EncrypterName, string> = { tls: '/tls/1.0.0', noise: '/noise' }

let keys: PrivateKey[]
let ids: string[]
let started: NetNode[] = []

beforeAll(async () => {
  keys = (await Promise.all([0, 1].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
})

afterEach(async () => {
  await Promise.all(started.map((node) => node.stop()))
  started = []
})

async function start(index: number, encrypter: EncrypterName): Promise<NetNode> {
  const node = await createNetNode({
    cluster: 'encrypters',
    role: index === 0 ? 'server' : 'worker',
    dimension,
    membership: createMembership({
      members: [
        [ids[0]!, 'server'],
        [ids[1]!, 'worker'],
      ],
      closed: true,
    }),
    logger: pino({ level: 'silent' }),
    privateKey: keys[index]!,
    encrypter,
  })
  started.push(node)
  await node.start()
  return node
}

describe('connection encrypters', () => {
  it('prefers noise by default (tls waits for a passing chaos run, defaults.ts), and every name is a choice', () => {
    expect(netDefaults.encrypter).toBe('noise')
    expect([...encrypterNames].sort()).toEqual(Object.keys(protocolOf).sort())
  })

  // [server (listener), worker (dialer), the encryption the connection must use]
  it.each([
    ['tls', 'tls', 'tls'],
    ['noise', 'noise', 'noise'],
    ['noise', 'tls', 'tls'],
    ['tls', 'noise', 'noise'],
  ] as const)(
    'a %s server and a %s worker connect over %s and deliver a streamed vector intact',
    async (serverEncrypter, workerEncrypter, expected) => {
      const server = await start(0, serverEncrypter)
      const worker = await start(1, workerEncrypter)
      await worker.dial(server.multiaddrs()[0]!)
      await server.waitForSubscribers('model', 1)

      const outbound = worker.libp2p
        .getConnections(server.libp2p.peerId)
        .filter((c) => c.direction === 'outbound')
      expect(outbound.length).toBeGreaterThan(0)
      for (const connection of outbound) expect(connection.encryption).toBe(protocolOf[expected])
      const inbound = server.libp2p
        .getConnections(worker.libp2p.peerId)
        .filter((c) => c.direction === 'inbound')
      for (const connection of inbound) expect(connection.encryption).toBe(protocolOf[expected])

      const theta = Float32Array.from({ length: dimension }, (_, i) => Math.sin(i))
      const receipt = await server.publish('model', 1, theta)
      expect(receipt.inline).toBe(false)
      const [got] = await worker.collect('model', 1, { quorum: 1, timeoutMs: 30_000 })
      expect(got?.sender).toBe(server.peerId)
      expect(got?.hash).toBe(receipt.hash)
      expect(got?.vector).toEqual(theta)
      expect(worker.counters.payload_fetched_bytes_total).toBe(4 * dimension)
    },
  )
})
