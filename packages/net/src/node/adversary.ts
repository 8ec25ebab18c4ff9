import type { RPC } from '@chainsafe/libp2p-gossipsub/message'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { sha256, toHex } from '../codec.js'
import type { PayloadStore } from '../payload.js'
import { signGossipMessage } from '../sync.js'
import { type ClusterTopics, topicOf } from '../topics.js'
import type { VectorKind } from '../types.js'
import type { NetLibp2p } from './libp2p.js'
import type { Publisher, PublishReceipt } from './publish.js'

/**
 * What only a Byzantine role does with its node: sign several versions of one round, hand each to
 * its own receivers, serve payloads it announces itself. A node has it (`NetNode.adversary`) only
 * when created with `adversary: true`, so honest code cannot reach it by accident.
 */
export interface NetAdversary {
  /**
   * Signs and publishes several different vectors for one round to the whole topic, so every
   * subscriber gets every version: its validation keeps the first, records the second as
   * equivocation evidence and drops the sender for that round. (`publishTargeted` is the attack
   * with receivers of its own; this is what is left with a single receiver.)
   */
  publishConflicting(
    kind: VectorKind,
    round: number,
    versions: readonly Float32Array[],
  ): Promise<PublishReceipt[]>
  /**
   * Hands each version, signed, to its own receivers and no one else, as a gossipsub RPC on the
   * stream this node already has to each (any peer can address its own streams; gossipsub's API
   * only lacks the call). Honest receivers validate and forward what they got first, so the
   * versions spread from different peers and meet where a peer that holds one is offered the
   * other: that peer records the equivocation, and the versions it did not see first stop there.
   * Each receipt counts the receivers its version was handed to.
   */
  publishTargeted(
    kind: VectorKind,
    round: number,
    versions: readonly { vector: Float32Array; receivers: readonly string[] }[],
  ): Promise<PublishReceipt[]>
  /** Makes a payload available to peers that pull it by hash (for announcements crafted by hand). */
  offerPayload(bytes: Uint8Array): string
}

export interface AdversaryParts {
  libp2p: NetLibp2p
  topics: ClusterTopics
  privateKey: PrivateKey
  store: PayloadStore
  publisher: Publisher
  log: Logger
}

export function createAdversary(parts: AdversaryParts): NetAdversary {
  const { libp2p, topics, privateKey, store, publisher, log } = parts
  return {
    async publishConflicting(kind, round, versions) {
      const receipts: PublishReceipt[] = []
      for (const vector of versions) receipts.push((await publisher.flood(kind, round, vector)).receipt)
      log.debug({ kind, round, versions: versions.length }, 'published conflicting versions')
      return receipts
    },

    async publishTargeted(kind, round, versions) {
      const topic = topicOf(topics, kind)
      const gossip = libp2p.services.pubsub as unknown as {
        sendRpc(peer: string, rpc: { subscriptions: []; messages: RPC.Message[] }): boolean
      }
      const receipts: PublishReceipt[] = []
      for (const { vector, receivers } of versions) {
        const { data, unsent } = publisher.encode(kind, round, vector)
        const message = await signGossipMessage(privateKey, { data, topic })
        const handed = receivers.filter((peer) =>
          gossip.sendRpc(peer, { subscriptions: [], messages: [message] }),
        )
        receipts.push({ ...unsent, recipients: handed.length })
      }
      log.debug(
        { kind, round, receivers: receipts.map((receipt) => receipt.recipients) },
        'handed different versions to different peers',
      )
      return receipts
    },

    offerPayload(bytes) {
      const hash = toHex(sha256(bytes))
      store.put(hash, bytes)
      return hash
    },
  }
}
