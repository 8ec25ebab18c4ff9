/**
 * The `RoundTransport` contract over the net adapter: five real libp2p nodes on loopback (three
 * servers, two workers) in one closed member set, each pair connected before a test begins.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { createMembership, createNetNode, type MemberRole, type NetNode } from '@phalanx/net'
import pino from 'pino'
import { beforeAll } from 'vitest'
import { netTransport } from '../src/net-transport.js'
import { contractDimension, describeRoundTransport } from './transport-contract.js'

const roles: MemberRole[] = ['server', 'server', 'server', 'worker', 'worker']
const keys: PrivateKey[] = []

beforeAll(async () => {
  // Two copies of @libp2p/interface in the tree (crypto's own): the key is the same object.
  keys.push(...((await Promise.all(roles.map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]))
})

let cluster = 0

describeRoundTransport(
  'net adapter over libp2p',
  async () => {
    // A fresh cluster id per test: a previous test's messages can never count in this one.
    const id = `contract-${process.pid}-${cluster++}`
    const members = keys.map((key, i): [string, MemberRole] => [
      peerIdFromPrivateKey(key).toString(),
      roles[i]!,
    ])
    const nodes: NetNode[] = []
    try {
      for (const [i, role] of roles.entries()) {
        const node = await createNetNode({
          cluster: id,
          role,
          dimension: contractDimension,
          membership: createMembership({ members, closed: true }),
          logger: pino({ level: 'silent' }),
          privateKey: keys[i]!,
          round: 0,
        })
        nodes.push(node)
        await node.start()
      }
      for (const [i, node] of nodes.entries()) {
        for (const other of nodes.slice(i + 1)) await other.dial(node.multiaddrs()[0]!)
      }
      // Models go to every member, gradients to the servers: wait until gossip knows them all.
      await Promise.all(
        nodes.map(async (node, i) => {
          await node.waitForSubscribers('model', nodes.length - 1)
          await node.waitForSubscribers('gradient', roles[i] === 'server' ? 2 : 3)
        }),
      )
    } catch (error) {
      await Promise.all(nodes.map((node) => node.stop()))
      throw error
    }
    const transports = nodes.map((node) => netTransport(node, { serverQuorum: 2 }))
    return {
      servers: transports.slice(0, 3),
      workers: transports.slice(3),
      close: async () => {
        await Promise.all(nodes.map((node) => node.stop()))
      },
    }
  },
  // A wait that must time out is given a few gossip heartbeats; one that must complete, plenty.
  { shortTimeoutMs: 500, longTimeoutMs: 20_000 },
)
