/**
 * An equivocating member is refused and counted, but not cut off: with real libp2p nodes over
 * loopback in one process, a member that signs two versions of its vector for ten rounds has
 * each equivocation refused and counted (at most one version of a round applied), while its score
 * at the honest node stays at 0, so the honest node goes on sending to it and, restarted with the
 * same key, it receives the next round's model at once. Before, each equivocation cost the signer
 * 10 of application score (halving in a minute): past six the honest node's flood publishing
 * skipped it, and a restarted Byzantine server of the chaos suite took hundreds of rounds to
 * receive the models and gradients it needs to contribute again.
 */
import type { RPC } from '@chainsafe/libp2p-gossipsub/message'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import pino from 'pino'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createMembership,
  createNetNode,
  encodeVectorMessage,
  type MemberRole,
  type NetNode,
  sha256,
  type VectorKind,
  vectorToBytes,
} from '../src/index.js'
import { signGossipMessage } from '../src/sync.js'

const logger = pino({ level: 'silent' })
const cluster = 'rejoin-score-test'
const dimension = 8
const firstRound = 5
/** More than enough: six equivocations used to pass the publish threshold (−50). */
const equivocatingRounds = 10
let keys: PrivateKey[]
let ids: string[]
let nodes: NetNode[] = []

// 0: the honest server, 1: a member server, 2: a member worker (1 and 2 are the equivocators).
beforeAll(async () => {
  keys = (await Promise.all([0, 1, 2].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
  ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
})

afterEach(async () => {
  await Promise.all(nodes.map((node) => node.stop()))
  nodes = []
})

async function start(index: number, round: number): Promise<NetNode> {
  const members: Array<[string, MemberRole]> = [
    [ids[0]!, 'server'],
    [ids[1]!, 'server'],
    [ids[2]!, 'worker'],
  ]
  const node = await createNetNode({
    cluster,
    role: index === 2 ? 'worker' : 'server',
    dimension,
    membership: createMembership({ members }),
    logger,
    privateKey: keys[index]!,
    round,
  })
  nodes.push(node)
  await node.start()
  return node
}

function vectorData(kind: VectorKind, sender: string, round: number, base: number): Uint8Array {
  const payload = vectorToBytes(Float32Array.from({ length: dimension }, (_, i) => base + i))
  return encodeVectorMessage({
    cluster,
    round,
    sender,
    role: kind === 'model' ? 'server' : 'worker',
    kind,
    dimension,
    size: payload.byteLength,
    hash: sha256(payload),
    payload,
    epoch: 0,
  })
}

/** Hands `messages` to `to` on the gossip stream `from` holds, as the signer sending them itself. */
function handOver(from: NetNode, to: NetNode, messages: RPC.Message[]): void {
  const gossip = from.libp2p.services.pubsub as unknown as {
    sendRpc(peer: string, rpc: { subscriptions: []; messages: RPC.Message[] }): boolean
  }
  gossip.sendRpc(to.peerId, { subscriptions: [], messages })
}

/** Resolves after `count` gossipsub heartbeats of `node`: the failure guard of a wait below. */
function heartbeats(node: NetNode, count: number): Promise<void> {
  const pubsub = node.libp2p.services.pubsub
  let seen = 0
  return new Promise((resolve) => {
    const beat = () => {
      if (++seen < count) return
      pubsub.removeEventListener('gossipsub:heartbeat', beat)
      resolve()
    }
    pubsub.addEventListener('gossipsub:heartbeat', beat)
  })
}

/** The first vector `node` delivers from `sender` for `round`, or undefined once `guard` settles. */
function firstFrom(node: NetNode, sender: string, round: number, guard: Promise<void>) {
  return new Promise<Float32Array | undefined>((resolve) => {
    const off = node.on('vector', (vector) => {
      if (vector.sender !== sender || vector.round !== round) return
      off()
      resolve(vector.vector)
    })
    void guard.then(() => {
      off()
      resolve(undefined)
    })
  })
}

/** Both subscribe to models (a worker to nothing else). */
async function connected(a: NetNode, b: NetNode): Promise<void> {
  await b.dial(a.multiaddrs()[0]!)
  await Promise.all([a.waitForSubscribers('model', 1), b.waitForSubscribers('model', 1)])
}

describe('an equivocating member after it stops', () => {
  it.each<{ name: string; index: 1 | 2; kind: VectorKind }>([
    { name: 'a server equivocating models', index: 1, kind: 'model' },
    { name: 'a worker equivocating gradients', index: 2, kind: 'gradient' },
  ])(
    '$name: refused and counted, still sent to, and served at once when restarted',
    async ({ index, kind }) => {
      const honest = await start(0, firstRound)
      const equivocator = await start(index, firstRound)
      await connected(honest, equivocator)
      const sender = ids[index]!
      const equivocations = new Map<number, () => void>()
      honest.on('equivocation', (evidence) => equivocations.get(evidence.round)?.())
      for (let round = firstRound; round < firstRound + equivocatingRounds; round++) {
        honest.setRound(round)
        const topic = kind === 'model' ? honest.topics.models : honest.topics.gradients
        const versions = await Promise.all(
          [1, 2].map((base) =>
            signGossipMessage(keys[index]!, { topic, data: vectorData(kind, sender, round, base) }),
          ),
        )
        // Guarded: a graylisted signer's versions are dropped unread and never refused.
        const refused = new Promise<boolean>((resolve) => {
          equivocations.set(round, () => resolve(true))
          void heartbeats(honest, 5).then(() => resolve(false))
        })
        handOver(equivocator, honest, versions)
        expect(await refused, `round ${round}'s second version refused as an equivocation`).toBe(true)
        // Nothing of the equivocator's second version is applied: at most one vector of it counts.
        expect(honest.received(kind, round).filter((v) => v.sender === sender).length).toBeLessThanOrEqual(1)
      }
      expect(honest.counters.equivocations_total).toBe(equivocatingRounds)
      expect(honest.counters.messages_rejected_total.equivocation).toBe(equivocatingRounds)
      // Not cut off: the honest node still publishes and forwards to it (flood publishing skips
      // peers under the publish threshold, the mesh those under 0). Gossipsub caches a score for
      // up to a heartbeat: read it after one.
      await heartbeats(honest, 2)
      expect(honest.libp2p.services.pubsub.getScore(equivocator.peerId)).toBeGreaterThanOrEqual(0)
      expect(honest.subscribers('model')).toContain(equivocator.peerId)

      // Restarted with the same key (SIGKILL's effect on the data plane: a new node, nothing kept),
      // it receives the honest server's model of the round it rejoins at.
      await equivocator.stop()
      nodes = nodes.filter((node) => node !== equivocator)
      const rejoinRound = firstRound + equivocatingRounds
      honest.setRound(rejoinRound)
      const restarted = await start(index, rejoinRound)
      await connected(honest, restarted)
      const served = firstFrom(restarted, honest.peerId, rejoinRound, heartbeats(restarted, 10))
      await honest.publish('model', rejoinRound, new Float32Array(dimension).fill(3))
      expect((await served)?.[0]).toBe(3)
    },
    60_000,
  )
})
