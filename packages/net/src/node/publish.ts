import type { Logger } from 'pino'
import { encodeVectorMessage, sha256, toHex, vectorToBytes } from '../codec.js'
import { DimensionMismatchError, NodeNotStartedError, PayloadTooLargeError } from '../errors.js'
import type { PayloadStore } from '../payload.js'
import { type ClusterTopics, topicOf } from '../topics.js'
import type { DeliveredVector, VectorKind } from '../types.js'
import type { ResolvedNetNodeInit } from './init.js'
import type { NetLibp2p } from './libp2p.js'

export interface PublishReceipt {
  round: number
  /** sha256 of the payload, hex. */
  hash: string
  /** Peers the announcement was sent to directly. */
  recipients: number
  inline: boolean
}

export interface PublisherParts {
  libp2p: NetLibp2p
  init: ResolvedNetNodeInit
  topics: ClusterTopics
  /** Where payloads too large to ride inline wait for peers to pull them by hash. */
  store: PayloadStore
  log: Logger
  /** Hands this node's own vector to its application (the inbox's `deliver`). */
  deliver(vector: DeliveredVector): void
  isStarted(): boolean
}

/**
 * Honest publishing: one signed vector per kind and round, flooded to the topic and delivered to
 * this node too, and its re-announcement while a round stalls. The encoding and flooding here are
 * also what the adversary (`adversary.ts`) builds its versions with.
 */
export class Publisher {
  readonly #libp2p: NetLibp2p
  readonly #init: ResolvedNetNodeInit
  readonly #topics: ClusterTopics
  readonly #store: PayloadStore
  readonly #log: Logger
  readonly #deliver: (vector: DeliveredVector) => void
  readonly #isStarted: () => boolean
  /** Our own recent announcements, kept so a stalled round can be announced again. */
  readonly #published = new Map<string, Uint8Array>()

  constructor(parts: PublisherParts) {
    this.#libp2p = parts.libp2p
    this.#init = parts.init
    this.#topics = parts.topics
    this.#store = parts.store
    this.#log = parts.log
    this.#deliver = parts.deliver
    this.#isStarted = parts.isStarted
  }

  async publish(kind: VectorKind, round: number, vector: Float32Array): Promise<PublishReceipt> {
    const { data, receipt } = await this.flood(kind, round, vector)
    this.#published.set(`${kind}/${round}`, data)
    for (const key of this.#published.keys()) {
      if (Number(key.split('/')[1]) < round - 2) this.#published.delete(key)
    }
    this.#deliver({
      kind,
      round,
      sender: this.#libp2p.peerId.toString(),
      role: this.#init.role,
      // The caller's own array, whose memory the store also serves from (see `NetNode.publish`).
      vector,
      hash: receipt.hash,
      self: true,
    })
    return receipt
  }

  async republish(kind: VectorKind, round: number): Promise<boolean> {
    const data = this.#published.get(`${kind}/${round}`)
    if (data === undefined) return false
    await this.#libp2p.services.pubsub.publish(topicOf(this.#topics, kind), data)
    this.#log.debug({ kind, round }, 'republished')
    return true
  }

  /** Encodes, signs (gossipsub StrictSign) and floods one vector message of this node. */
  async flood(
    kind: VectorKind,
    round: number,
    vector: Float32Array,
  ): Promise<{ data: Uint8Array; receipt: PublishReceipt }> {
    const { data, unsent, bytes } = this.encode(kind, round, vector)
    const result = await this.#libp2p.services.pubsub.publish(topicOf(this.#topics, kind), data)
    this.#log.debug({ kind, round, bytes, recipients: result.recipients.length }, 'published')
    return { data, receipt: { ...unsent, recipients: result.recipients.length } }
  }

  /**
   * One vector message of this node (payload inline, or in the store for peers to pull by hash),
   * before any signing or sending.
   */
  encode(
    kind: VectorKind,
    round: number,
    vector: Float32Array,
  ): { data: Uint8Array; unsent: Omit<PublishReceipt, 'recipients'>; bytes: number } {
    if (!this.#isStarted())
      throw new NodeNotStartedError('publish needs a started node', { operation: 'publish' })
    if (vector.length !== this.#init.dimension) {
      throw new DimensionMismatchError({
        source: 'publish',
        expected: this.#init.dimension,
        actual: vector.length,
      })
    }
    // A view of the vector on little-endian hosts: no copy (see `NetNode.publish`).
    const bytes = vectorToBytes(vector)
    if (bytes.byteLength > this.#init.maxPayloadBytes) {
      throw new PayloadTooLargeError(`${bytes.byteLength} bytes exceed maxPayloadBytes`, {
        bytes: bytes.byteLength,
        maxPayloadBytes: this.#init.maxPayloadBytes,
      })
    }
    const hash = sha256(bytes)
    const hashHex = toHex(hash)
    const inline = bytes.byteLength <= this.#init.inlineMaxBytes
    if (!inline) this.#store.put(hashHex, bytes)
    const data = encodeVectorMessage({
      cluster: this.#init.cluster,
      round,
      sender: this.#libp2p.peerId.toString(),
      role: this.#init.role,
      kind,
      dimension: vector.length,
      size: bytes.byteLength,
      hash,
      payload: inline ? bytes : new Uint8Array(0),
      epoch: this.#init.epoch,
    })
    return { data, unsent: { round, hash: hashHex, inline }, bytes: bytes.byteLength }
  }
}
