import { describe, expect, it } from 'vitest'
import type { NetNode, VectorKind } from '../src/index.js'
import { signGossipMessage } from '../src/sync.js'
import { connected, handOver, heartbeats, liveDimension, liveNodes, liveVectorData } from './live.js'

const cluster = 'rejoin-score-test'
const dimension = liveDimension
const firstRound = 5
/** More than enough: six equivocations used to pass the publish threshold (−50). */
const equivocatingRounds = 10
// 0: the honest server, 1: a member server, 2: a member worker (1 and 2 are the equivocators).
const live = liveNodes(cluster, 3)
const { keys, ids } = live
const start = (index: number, round: number) => live.start(index, { round })
const vectorData = (kind: VectorKind, sender: string, round: number, base: number) =>
  liveVectorData(cluster, kind, sender, { round, base })

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
      await live.stop(equivocator)
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
