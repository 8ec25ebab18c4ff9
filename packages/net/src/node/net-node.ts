import '../polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { encodeMemberAnnouncement } from '../codec.js'
import { MutableNetCounters, type NetCounters } from '../counters.js'
import { loadOrCreatePeerKey } from '../keys.js'
import { PayloadStore } from '../payload.js'
import { collectQuorum } from '../quorum.js'
import { InvalidMessageScore } from '../score.js'
import { type ClusterTopics, topicOf, topicsFor } from '../topics.js'
import type {
  CollectOptions,
  DeliveredVector,
  EquivocationEvidence,
  Membership,
  RejectReason,
  VectorKind,
} from '../types.js'
import { createAdversary, type NetAdversary } from './adversary.js'
import { Connectivity, connectionGate } from './connectivity.js'
import { NetEventBus, type NetEvents } from './events.js'
import { Inbox } from './inbox.js'
import { type NetNodeInit, type ResolvedNetNodeInit, resolveNetNodeInit } from './init.js'
import { buildLibp2p, type NetLibp2p } from './libp2p.js'
import { buildPayloadPlane, type PayloadPlane } from './payload-plane.js'
import { Publisher, type PublishReceipt } from './publish.js'
import { pullFromPeers } from './pull.js'
import { serveStreams } from './serve.js'

/** The data plane of one node. */
export interface NetNode {
  readonly peerId: string
  readonly counters: NetCounters
  readonly membership: Membership
  readonly topics: ClusterTopics
  readonly round: number
  /**
   * The underlying libp2p node, for tests only: the node's own methods are the way in (chaos
   * uses `hangUp`/`redial`, Byzantine roles `adversary`).
   */
  readonly libp2p: NetLibp2p
  /** The Byzantine-only publishing, present when the node was created with `adversary: true`. */
  readonly adversary: NetAdversary | undefined
  multiaddrs(): string[]
  /** Where the TLS payload plane listens (host, port), when it is on and the node started. */
  payloadAddress(): { host: string; port: number } | undefined
  start(): Promise<void>
  stop(): Promise<void>
  dial(address: string): Promise<void>
  /** Peers this node holds at least one connection to. */
  connectedPeers(): string[]
  /**
   * Closes every connection to a peer and drops its keep-alive tag, so libp2p does not dial it
   * straight back; the connection gater decides whether it may come back.
   */
  hangUp(peerId: string): Promise<void>
  /**
   * Dials a peer at the addresses the peer store holds for it, unless a connection to it is
   * open (a second one would be pruned, and the gossip in flight on it lost). Rejects when the
   * dial fails.
   */
  redial(peerId: string): Promise<void>
  /** Moves the round window to [round − 1, round + W] and forgets older rounds. */
  setRound(round: number): void
  /**
   * The highest round at least `quorum` distinct member servers have signed (announced, or
   * published a model of), or undefined. A node behind the cluster moves its window there with
   * quorum N − F: F Byzantine servers, and any number of outsiders, cannot reach it alone.
   */
  clusterRound(quorum: number): number | undefined
  /**
   * Signs and floods `vector` as this node's `kind` for `round`. The node keeps the vector's own
   * memory (not a copy) to serve its payload to peers that pull it, so the caller must not write
   * into it afterwards; the protocol publishes a new array every round.
   */
  publish(kind: VectorKind, round: number, vector: Float32Array): Promise<PublishReceipt>
  /**
   * Announces again what this node published for `kind` and `round` (a new gossip message with
   * the same signed content): peers that missed it — late joiners, a lost frame — get it;
   * peers that have it count a harmless `duplicate`. Returns false when nothing was published.
   */
  republish(kind: VectorKind, round: number): Promise<boolean>
  /** Members subscribed to the topic of `kind`, as this node's gossip knows them. */
  subscribers(kind: VectorKind): string[]
  /**
   * Asks connected peers (servers first) for the signed vectors of `kind` they hold from
   * `fromRound` on, and delivers those this node lacks after the same validation as gossip (the
   * origin's signature included). For a node stalled on a quorum whose signer may be gone.
   * Returns how many vectors it delivered.
   */
  pull(kind: VectorKind, fromRound: number, options?: { signal?: AbortSignal }): Promise<number>
  /** Vectors of `kind` for `round` delivered so far (own included). */
  received(kind: VectorKind, round: number): readonly DeliveredVector[]
  collect(kind: VectorKind, round: number, options: CollectOptions): Promise<DeliveredVector[]>
  isEquivocator(kind: VectorKind, round: number, sender: string): boolean
  /** Equivocation evidence held and not taken yet (compact: hashes and signatures). */
  evidence(): readonly EquivocationEvidence[]
  /**
   * Hands over the evidence held and forgets it: the control plane publishes each pair once, so
   * a long run with an equivocator does not keep it in memory.
   */
  takeEvidence(): EquivocationEvidence[]
  /** Rejections so far by reason (only reasons that occurred). */
  rejected(): Partial<Record<RejectReason, number>>
  /** Resolves once `count` peers subscribe to the topic of `kind` (or the membership topic). */
  waitForSubscribers(
    kind: VectorKind | 'membership',
    count: number,
    options?: { signal?: AbortSignal },
  ): Promise<void>
  /** Publishes "I am here" on the membership topic. */
  announce(): Promise<void>
  /** Signs `data` with this node's peer key (what it vouches for outside gossip, e.g. a checkpoint). */
  sign(data: Uint8Array): Promise<Uint8Array>
  on<E extends keyof NetEvents>(event: E, listener: (detail: NetEvents[E]) => void): () => void
}

interface NodeParts {
  libp2p: NetLibp2p
  init: ResolvedNetNodeInit
  score: InvalidMessageScore
  counters: MutableNetCounters
  privateKey: PrivateKey
  events: NetEventBus
  log: Logger
  connectivity: Connectivity
}

/**
 * A net node as one object: each job is a part of its own (`connectivity.ts`, `inbox.ts`,
 * `publish.ts`, `pull.ts`, `serve.ts`, `adversary.ts`); this puts them together and answers for
 * them.
 */
class Libp2pNetNode implements NetNode {
  readonly counters: MutableNetCounters
  readonly membership: Membership
  readonly topics: ClusterTopics
  readonly libp2p: NetLibp2p
  readonly adversary: NetAdversary | undefined
  readonly #init: ResolvedNetNodeInit
  readonly #privateKey: PrivateKey
  readonly #log: Logger
  readonly #events: NetEventBus
  readonly #score: InvalidMessageScore
  /** Verified payloads, ours and others', for peers that pull them by hash. */
  readonly #store: PayloadStore
  readonly #connectivity: Connectivity
  readonly #inbox: Inbox
  readonly #publisher: Publisher
  readonly #payloads: PayloadPlane
  #started = false

  constructor(parts: NodeParts) {
    const { libp2p, init, log, events } = parts
    this.libp2p = libp2p
    this.#init = init
    this.#privateKey = parts.privateKey
    this.counters = parts.counters
    this.membership = init.membership
    this.topics = topicsFor(init.cluster)
    this.#log = log
    this.#events = events
    this.#score = parts.score
    this.#store = new PayloadStore(init.payloadCacheBytes)
    this.#connectivity = parts.connectivity
    this.#payloads = buildPayloadPlane({
      libp2p,
      init,
      privateKey: parts.privateKey,
      counters: parts.counters,
      log,
    })
    this.#inbox = new Inbox({
      libp2p,
      init,
      topics: this.topics,
      counters: this.counters,
      events,
      log,
      score: this.#score,
      store: this.#store,
      payloads: this.#payloads.fetch,
      onMemberHeard: (peerId, multiaddrs) => this.#connectivity.redialMember(peerId, multiaddrs),
    })
    this.#publisher = new Publisher({
      libp2p,
      init,
      topics: this.topics,
      store: this.#store,
      log,
      deliver: (vector) => this.#inbox.deliver(vector),
      isStarted: () => this.#started,
    })
    this.adversary = init.adversary
      ? createAdversary({
          libp2p,
          topics: this.topics,
          privateKey: this.#privateKey,
          store: this.#store,
          publisher: this.#publisher,
          log,
        })
      : undefined
  }

  get peerId(): string {
    return this.libp2p.peerId.toString()
  }

  get round(): number {
    return this.#inbox.round
  }

  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((address) => address.toString())
  }

  payloadAddress(): { host: string; port: number } | undefined {
    return this.#payloads.address()
  }

  async start(): Promise<void> {
    if (this.#started) return
    const kinds = this.#init.subscribe ?? (this.#init.role === 'server' ? ['model', 'gradient'] : ['model'])
    this.#inbox.start(kinds)
    await serveStreams({
      libp2p: this.libp2p,
      init: this.#init,
      counters: this.counters,
      log: this.#log,
      store: this.#store,
      payloadChannels: this.#payloads.serve,
      held: (kind, fromRound) => this.#inbox.held(kind, fromRound),
    })
    await this.#payloads.advertise()
    this.#connectivity.watch()
    this.#started = true
    await this.#connectivity.start()
    this.#log.info(
      {
        addrs: this.multiaddrs(),
        cluster: this.#init.cluster,
        encrypter: this.#init.encrypter,
      },
      'net started',
    )
  }

  async stop(): Promise<void> {
    this.#connectivity.stop()
    await this.#inbox.stop()
    this.#started = false
    await this.libp2p.stop()
  }

  dial(address: string): Promise<void> {
    return this.#connectivity.dial(address)
  }

  connectedPeers(): string[] {
    return this.#connectivity.connectedPeers()
  }

  hangUp(peerId: string): Promise<void> {
    return this.#connectivity.hangUp(peerId)
  }

  redial(peerId: string): Promise<void> {
    return this.#connectivity.redial(peerId)
  }

  setRound(round: number): void {
    this.#inbox.setRound(round)
  }

  clusterRound(quorum: number): number | undefined {
    return this.#inbox.clusterRound(quorum)
  }

  publish(kind: VectorKind, round: number, vector: Float32Array): Promise<PublishReceipt> {
    return this.#publisher.publish(kind, round, vector)
  }

  republish(kind: VectorKind, round: number): Promise<boolean> {
    return this.#publisher.republish(kind, round)
  }

  subscribers(kind: VectorKind): string[] {
    return this.libp2p.services.pubsub
      .getSubscribers(topicOf(this.topics, kind))
      .map((peer) => peer.toString())
      .filter((peer) => this.membership.has(peer))
  }

  async pull(kind: VectorKind, fromRound: number, options: { signal?: AbortSignal } = {}): Promise<number> {
    if (!this.#started) return 0
    return pullFromPeers(
      {
        libp2p: this.libp2p,
        init: this.#init,
        topics: this.topics,
        counters: this.counters,
        log: this.#log,
        score: this.#score,
        inbox: this.#inbox,
      },
      kind,
      fromRound,
      options,
    )
  }

  received(kind: VectorKind, round: number): readonly DeliveredVector[] {
    return this.#inbox.received(kind, round)
  }

  collect(kind: VectorKind, round: number, options: CollectOptions): Promise<DeliveredVector[]> {
    return collectQuorum(
      {
        received: (k, r) => this.received(k, r),
        onVector: (listener) => this.on('vector', listener),
        onEquivocation: (listener) => this.on('equivocation', listener),
        isEquivocator: (k, r, s) => this.#inbox.isEquivocator(k, r, s),
      },
      kind,
      round,
      options,
    )
  }

  isEquivocator(kind: VectorKind, round: number, sender: string): boolean {
    return this.#inbox.isEquivocator(kind, round, sender)
  }

  evidence(): readonly EquivocationEvidence[] {
    return this.#inbox.evidence()
  }

  takeEvidence(): EquivocationEvidence[] {
    return this.#inbox.takeEvidence()
  }

  rejected(): Partial<Record<RejectReason, number>> {
    return Object.fromEntries(Object.entries(this.counters.messages_rejected_total).filter(([, n]) => n > 0))
  }

  waitForSubscribers(
    kind: VectorKind | 'membership',
    count: number,
    options: { signal?: AbortSignal } = {},
  ): Promise<void> {
    const topic = kind === 'membership' ? this.topics.membership : topicOf(this.topics, kind)
    const pubsub = this.libp2p.services.pubsub
    // A peer's subscription can arrive before our outbound gossip stream to it is open, and a
    // publish in that gap silently skips the peer: count only peers we can actually send to.
    const enough = (): boolean =>
      pubsub.getSubscribers(topic).filter((peer) => pubsub.streamsOutbound.has(peer.toString())).length >=
      count
    if (enough()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!enough()) return
        cleanup()
        resolve()
      }
      const onAbort = (): void => {
        cleanup()
        reject(options.signal?.reason)
      }
      const cleanup = (): void => {
        pubsub.removeEventListener('subscription-change', check)
        pubsub.removeEventListener('gossipsub:heartbeat', check)
        options.signal?.removeEventListener('abort', onAbort)
      }
      pubsub.addEventListener('subscription-change', check)
      // The outbound stream opening has no event of its own; the next heartbeat re-checks.
      pubsub.addEventListener('gossipsub:heartbeat', check)
      options.signal?.addEventListener('abort', onAbort, { once: true })
      if (options.signal?.aborted) onAbort()
    })
  }

  async announce(): Promise<void> {
    const data = encodeMemberAnnouncement({
      cluster: this.#init.cluster,
      sender: this.peerId,
      role: this.#init.role,
      multiaddrs: this.libp2p.getMultiaddrs().map((address) => address.bytes),
      round: this.round,
      epoch: this.#init.epoch,
    })
    await this.libp2p.services.pubsub.publish(this.topics.membership, data)
  }

  async sign(data: Uint8Array): Promise<Uint8Array> {
    return this.#privateKey.sign(data)
  }

  on<E extends keyof NetEvents>(event: E, listener: (detail: NetEvents[E]) => void): () => void {
    return this.#events.on(event, listener)
  }
}

/**
 * Creates (but does not start) a data-plane node: libp2p over TCP with Noise and Yamux,
 * identify, ping, gossipsub (StrictSign, topic validators, application score) and the payload
 * stream protocol. Call `start()` to subscribe and dial the bootstrap list.
 */
export async function createNetNode(options: NetNodeInit): Promise<NetNode> {
  const init = resolveNetNodeInit(options)
  // Generated here rather than by libp2p when there is no key file: the node signs with it too.
  const privateKey =
    init.privateKey ??
    (init.keyFile === undefined
      ? ((await generateKeyPair('Ed25519')) as unknown as PrivateKey)
      : (await loadOrCreatePeerKey(init.keyFile)).key)
  const score = new InvalidMessageScore(
    init.invalidMessagePenalty,
    init.invalidMessageHalfLifeMs,
    Date.now,
    init.maxScoredPeers,
  )
  const counters = new MutableNetCounters()
  let connectivity: Connectivity | undefined
  const libp2p = await buildLibp2p(init, {
    privateKey,
    score,
    counters,
    refuse: connectionGate(init.membership, counters, () => connectivity),
  })
  const log = init.logger.child({ component: 'net', peerId: libp2p.peerId.toString() })
  const events = new NetEventBus(log)
  connectivity = new Connectivity({ libp2p, init, counters, events, log })
  const node = new Libp2pNetNode({ libp2p, init, score, counters, privateKey, events, log, connectivity })
  await libp2p.start()
  return node
}
