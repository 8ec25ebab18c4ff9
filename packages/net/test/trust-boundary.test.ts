/**
 * The data plane's trust boundary with real libp2p nodes over loopback in one process: a relay
 * handing over messages signed by fresh throw-away keys ends graylisted (gossipsub P4 and the
 * application score charge the relay, not the keys), a stranger doing it under an open member set
 * is disconnected and kept out, an honest straggler's early, late and repeated messages cost
 * nothing, and forged or replayed announcements move no round.
 */
import type { RPC } from '@chainsafe/libp2p-gossipsub/message'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { encodeMemberAnnouncement, type NetNode, netDefaults, type RejectReason } from '../src/index.js'
import { signGossipMessage } from '../src/sync.js'
import {
  atHeartbeat,
  connected,
  handOver,
  heartbeats,
  liveDimension,
  liveNodes,
  liveVectorData,
} from './live.js'

const cluster = 'trust-test'
const dimension = liveDimension
const round = 5
// 0: the victim (server), 1: a member server (the Byzantine relay), 2: a member worker, 3: a stranger.
const live = liveNodes(cluster, 4)
const { keys, ids } = live
const start = (index: number, options: { closed?: boolean; epoch?: number } = {}) =>
  live.start(index, { round, ...options })
const modelData = (sender: string, overrides: { round?: number; epoch?: number; base?: number } = {}) =>
  liveVectorData(cluster, 'model', sender, { round, ...overrides })

/** Signs each `data(key)` with a fresh throw-away key: what an outsider mints for free. */
async function underFreshKeys(count: number, topic: string, data: (sender: string) => Uint8Array) {
  const messages: RPC.Message[] = []
  for (let i = 0; i < count; i++) {
    const key = (await generateKeyPair('Ed25519')) as unknown as PrivateKey
    messages.push(await signGossipMessage(key, { topic, data: data(peerIdFromPrivateKey(key).toString()) }))
  }
  return messages
}

const rejected = (node: NetNode, reason: RejectReason) => node.counters.messages_rejected_total[reason]

describe('trust boundary', () => {
  it('graylists a member relaying 2,000 invalid messages under fresh keys, not the keys', async () => {
    const victim = await start(0)
    const relay = await start(1)
    await connected(victim, relay)
    const score = () => victim.libp2p.services.pubsub.getScore(relay.peerId)
    expect(score()).toBe(0)
    const forged = await underFreshKeys(2_000, victim.topics.models, (sender) => modelData(sender))
    for (let i = 0; i < forged.length; i += 100) handOver(relay, victim, forged.slice(i, i + 100))
    await atHeartbeat(victim, () => score() < netDefaults.graylistScoreThreshold)
    expect(rejected(victim, 'unknown_sender')).toBeGreaterThan(0)
    expect(victim.received('model', round)).toEqual([])
    // Graylisted: the relay's own, valid model is now dropped unread. Read the count one heartbeat
    // later, so that forged messages still being validated when the score crossed are in it (a run
    // under load counted 2,001 against 2,000 without this wait).
    await heartbeats(victim, 1)
    const before = victim.counters.messages_received_total
    await relay.publish('model', round, new Float32Array(dimension).fill(1))
    await heartbeats(victim, 2)
    expect(victim.counters.messages_received_total).toBe(before)
    expect(victim.received('model', round)).toEqual([])
  })

  it('disconnects a stranger that hands over invalid messages, and keeps it out', async () => {
    const victim = await start(0)
    const stranger = await start(3)
    await connected(victim, stranger)
    const refused: string[] = []
    victim.on('refused', (event) => refused.push(event.direction))
    const forged = await underFreshKeys(300, victim.topics.models, (sender) => modelData(sender))
    for (let i = 0; i < forged.length; i += 50) handOver(stranger, victim, forged.slice(i, i + 50))
    await atHeartbeat(victim, () => refused.includes('disconnected'))
    expect(victim.counters.peers_disconnected_total).toBe(1)
    await atHeartbeat(
      victim,
      () => !victim.libp2p.getConnections().some((c) => c.remotePeer.toString() === stranger.peerId),
    )
    // The dialer may see its half of the handshake succeed before the victim drops it.
    await stranger.dial(victim.multiaddrs()[0]!).catch(() => undefined)
    await atHeartbeat(victim, () => refused.includes('inbound'))
    expect(victim.counters.connections_refused_total).toBeGreaterThanOrEqual(1)
  })

  it('charges an honest straggler nothing for early, late and repeated messages', async () => {
    const victim = await start(0)
    const straggler = await start(1)
    await connected(victim, straggler)
    const own = async (overrides: { round: number; base: number }) =>
      signGossipMessage(keys[1]!, { topic: victim.topics.models, data: modelData(ids[1]!, overrides) })
    const messages: RPC.Message[] = []
    for (let i = 0; i < 100; i++) {
      messages.push(await own({ round: round - 2, base: i })) // stale
      messages.push(await own({ round: round + 3, base: i })) // future
    }
    const first = await own({ round, base: 1 })
    messages.push(first)
    // Re-announcements: same signed content, new gossip messages (gossip ids differ).
    for (let i = 0; i < 100; i++) messages.push(await own({ round, base: 1 }))
    handOver(straggler, victim, messages)
    await atHeartbeat(victim, () => rejected(victim, 'duplicate') >= 100)
    expect(rejected(victim, 'stale_round')).toBe(100)
    expect(rejected(victim, 'future_round')).toBe(100)
    expect(victim.received('model', round).map((v) => v.sender)).toEqual([ids[1]])
    expect(victim.libp2p.services.pubsub.getScore(straggler.peerId)).toBe(0)
  })

  it.each<{ name: string; signer: 'fresh' | 2 | 1; reason: RejectReason; hello: Record<string, unknown> }>([
    {
      name: 'a throw-away key claiming the server role',
      signer: 'fresh',
      reason: 'unknown_sender',
      hello: {},
    },
    { name: 'a member worker claiming the server role', signer: 2, reason: 'wrong_role', hello: {} },
    {
      name: "a member server's announcement of another epoch",
      signer: 1,
      reason: 'wrong_epoch',
      hello: { epoch: 1 },
    },
  ])('refuses $name at round 2^50, counts it and moves no round', async ({ signer, reason, hello }) => {
    const victim = await start(0)
    const relay = await start(1)
    await connected(victim, relay, 'membership')
    const members: string[] = []
    victim.on('member', (member) => members.push(member.peerId))
    const data = (sender: string) =>
      encodeMemberAnnouncement({
        cluster,
        sender,
        role: 'server',
        multiaddrs: [],
        round: 2 ** 50,
        epoch: 0,
        ...hello,
      })
    const forged =
      signer === 'fresh'
        ? await underFreshKeys(3, victim.topics.membership, data)
        : await Promise.all(
            [0, 1, 2].map(() =>
              signGossipMessage(keys[signer]!, { topic: victim.topics.membership, data: data(ids[signer]!) }),
            ),
          )
    handOver(relay, victim, forged)
    await atHeartbeat(victim, () => rejected(victim, reason) >= 3)
    expect(members).toEqual([])
    expect(victim.clusterRound(1)).toBeUndefined()
    // A real announcement still gets through and counts.
    await relay.announce()
    await atHeartbeat(victim, () => members.includes(relay.peerId))
    expect(victim.clusterRound(1)).toBe(round)
  })

  it('refuses a signed model of another epoch, replayed, and counts it', async () => {
    const victim = await start(0, { epoch: 2 })
    const relay = await start(1, { epoch: 2 })
    await connected(victim, relay)
    // Last run's model of this very round, signed by a member: honest then, a replay now.
    const replay = await signGossipMessage(keys[1]!, {
      topic: victim.topics.models,
      data: modelData(ids[1]!, { epoch: 1 }),
    })
    handOver(relay, victim, [replay])
    await atHeartbeat(victim, () => rejected(victim, 'wrong_epoch') === 1)
    expect(victim.received('model', round)).toEqual([])
    // This run's model of the same round is no equivocation: it is accepted.
    await relay.publish('model', round, new Float32Array(dimension).fill(2))
    await atHeartbeat(victim, () => victim.received('model', round).length === 1)
    expect(victim.counters.equivocations_total).toBe(0)
  })
})
