import './polyfill.js'
import { type GossipSub, type GossipsubMessage, gossipsub } from '@chainsafe/libp2p-gossipsub'
import type { RPC } from '@chainsafe/libp2p-gossipsub/message'
import { createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import {
  KEEP_ALIVE,
  type Libp2p,
  type Message,
  type PeerId,
  type PrivateKey,
  type Stream,
  TopicValidatorResult,
} from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { Logger } from 'pino'
import { type AnnouncementVerdict, checkAnnouncement, ServerRounds } from './announcement.js'
import {
  decodeVectorMessage,
  encodeMemberAnnouncement,
  encodeVectorMessage,
  type RelayedFields,
  sha256,
  toHex,
  vectorToBytes,
} from './codec.js'
import { MutableNetCounters, type NetCounters } from './counters.js'
import { netDefaults } from './defaults.js'
import {
  DimensionMismatchError,
  NetConfigError,
  NodeNotStartedError,
  PayloadTooLargeError,
} from './errors.js'
import { loadOrCreatePeerKey } from './keys.js'
import { ByteBuckets, type StreamRefusal, StreamSlots } from './limits.js'
import { PayloadFetcher, PayloadStore, payloadProtocol, servePayload } from './payload.js'
import { collectQuorum } from './quorum.js'
import { InvalidMessageScore } from './score.js'
import {
  fetchSync,
  relayedFromMessage,
  serveSync,
  signGossipMessage,
  syncProtocol,
  verifyRelayed,
} from './sync.js'
import { type ClusterTopics, topicOf, topicsFor } from './topics.js'
import {
  type CollectOptions,
  type DeliveredVector,
  type EquivocationEvidence,
  type MemberRole,
  type Membership,
  publisherRoleOf,
  type RejectedMessage,
  type RejectReason,
  type VectorKind,
} from './types.js'
import {
  type Accepted,
  checkPayload,
  type IncomingMessage,
  isRelayFault,
  RoundLedger,
  type ValidationContext,
  validateVectorMessage,
} from './validation.js'

export interface NetNodeInit {
  /** Cluster id: names the topics and must match in every message. */
  cluster: string
  role: MemberRole
  /** Number of float32 coordinates of every model and gradient. */
  dimension: number
  membership: Membership
  logger: Logger
  /** Multiaddrs to listen on (default loopback, port 0). */
  listen?: readonly string[]
  /** Peers to dial at start; `/dns4/…` names work. With `/p2p/<id>`: also fed to libp2p bootstrap. */
  bootstrap?: readonly string[]
  /** First and longest wait between dials of a bootstrap address that refused (netDefaults). */
  bootstrapRetryMs?: readonly [number, number]
  mdns?: boolean
  /** Peer key file: loaded, or generated and written with mode 0600. */
  keyFile?: string
  /** An explicit key (wins over `keyFile`). */
  privateKey?: PrivateKey
  /**
   * Kinds this node receives. Default by role: servers take models (for the median) and
   * gradients; workers take models only, so gradients are never pushed or pulled to them.
   */
  subscribe?: readonly VectorKind[]
  /** Round the validation window starts at (default 0). */
  round?: number
  /** The cluster's incarnation (netDefaults.epoch): messages of another epoch are refused. */
  epoch?: number
  roundWindowAhead?: number
  maxPayloadBytes?: number
  inlineMaxBytes?: number
  gossipMaxInboundDataLength?: number
  /** Gossipsub mesh degree D (Dlo = D−1, Dhi = 2D−1). */
  gossipMeshDegree?: number
  payloadFetchTimeoutMs?: number
  payloadPeerTimeoutMs?: number
  syncTimeoutMs?: number
  memberRedialMs?: number
  payloadCacheBytes?: number
  yamuxMaxStreamWindowBytes?: number
  maxPayloadStreams?: number
  invalidMessagePenalty?: number
  invalidMessageHalfLifeMs?: number
  maxScoredPeers?: number
  invalidDeliveryWeight?: number
  invalidDeliveryDecay?: number
  maxEvidence?: number
  maxEvidencePerSender?: number
  maxStreamsPerPeer?: number
  streamIdleTimeoutMs?: number
  servedBytesPerSecond?: number
  servedBurstBytes?: number
  maxRateLimitedPeers?: number
  maxConnections?: number
  inboundConnectionThreshold?: number
  pingTimeoutMinMs?: number
}

export interface PublishReceipt {
  round: number
  /** sha256 of the payload, hex. */
  hash: string
  /** Peers the announcement was sent to directly. */
  recipients: number
  inline: boolean
}

export interface NetEvents {
  vector: DeliveredVector
  equivocation: EquivocationEvidence
  rejected: RejectedMessage
  member: { peerId: string; role: MemberRole | undefined; multiaddrs: string[]; round: number }
  /**
   * The connection gater refused a peer outside a closed member set, or a non-member graylisted
   * for the invalid messages it handed us (`disconnected`: its open connection was closed).
   */
  refused: { peerId: string; direction: 'inbound' | 'outbound' | 'disconnected' }
}

/** The data plane of one node. */
export interface NetNode {
  readonly peerId: string
  readonly counters: NetCounters
  readonly membership: Membership
  readonly topics: ClusterTopics
  readonly round: number
  /** The underlying libp2p node (escape hatch for tests and Byzantine roles). */
  readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  multiaddrs(): string[]
  start(): Promise<void>
  stop(): Promise<void>
  dial(address: string): Promise<void>
  /** Moves the round window to [round − 1, round + W] and forgets older rounds. */
  setRound(round: number): void
  /**
   * The highest round at least `quorum` distinct member servers have signed (announced, or
   * published a model of), or undefined. A node behind the cluster moves its window there with
   * quorum N − F: F Byzantine servers, and any number of outsiders, cannot reach it alone.
   */
  clusterRound(quorum: number): number | undefined
  publish(kind: VectorKind, round: number, vector: Float32Array): Promise<PublishReceipt>
  /**
   * Announces again what this node published for `kind` and `round` (a new gossip message with
   * the same signed content): peers that missed it — late joiners, a lost frame — get it;
   * peers that have it count a harmless `duplicate`. Returns false when nothing was published.
   */
  republish(kind: VectorKind, round: number): Promise<boolean>
  /**
   * Byzantine roles only: signs and publishes several different vectors for one round to the
   * whole topic, so every subscriber gets every version: its validation keeps the first, records
   * the second as equivocation evidence and drops the sender for that round. (`publishTargeted`
   * is the attack with receivers of its own; this is what is left with a single receiver.)
   */
  publishConflicting(
    kind: VectorKind,
    round: number,
    versions: readonly Float32Array[],
  ): Promise<PublishReceipt[]>
  /**
   * Byzantine roles only: hands each version, signed, to its own receivers and no one else, as a
   * gossipsub RPC on the stream this node already has to each (any peer can address its own
   * streams; gossipsub's API only lacks the call). Honest receivers validate and forward what
   * they got first, so the versions spread from different peers and meet where a peer that holds
   * one is offered the other: that peer records the equivocation, and the versions it did not see
   * first stop there. Each receipt counts the receivers its version was handed to.
   */
  publishTargeted(
    kind: VectorKind,
    round: number,
    versions: readonly { vector: Float32Array; receivers: readonly string[] }[],
  ): Promise<PublishReceipt[]>
  /** Members subscribed to the topic of `kind`, as this node's gossip knows them. */
  subscribers(kind: VectorKind): string[]
  /** Makes a payload available to peers that pull it by hash (Byzantine roles craft their own announcements). */
  offerPayload(bytes: Uint8Array): string
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

type Listeners = { [E in keyof NetEvents]: Set<(detail: NetEvents[E]) => void> }

class Libp2pNetNode implements NetNode {
  readonly counters = new MutableNetCounters()
  readonly membership: Membership
  readonly topics: ClusterTopics
  readonly libp2p: Libp2p<{ pubsub: GossipSub }>
  readonly #init: NetNodeInit & typeof netDefaults
  readonly #privateKey: PrivateKey
  readonly #log: Logger
  readonly #ctx: ValidationContext
  readonly #ledger: RoundLedger
  readonly #serverRounds: ServerRounds
  readonly #store: PayloadStore
  readonly #fetcher: PayloadFetcher
  /** Inbound payload and sync streams per peer (`maxStreamsPerPeer`). */
  readonly #slots: StreamSlots
  /** Bytes served per peer per second (`servedBytesPerSecond`). */
  readonly #buckets: ByteBuckets
  readonly #score: InvalidMessageScore
  readonly #accepted = new WeakMap<Message, Accepted>()
  /**
   * Payload fetches in progress, by kind/round/sender: one per pending ledger entry (so bounded as
   * the ledger is), joined by every further offer of the same hash.
   */
  readonly #fetches = new Map<string, FetchJob>()
  /** Announcements that passed `checkAnnouncement`, from the validator to the message handler. */
  readonly #acceptedHellos = new WeakMap<Message, AnnouncementVerdict & { ok: true }>()
  readonly #received = new Map<string, DeliveredVector[]>()
  /** The signed gossip messages behind `#received` (others' only), kept to hand on to stragglers. */
  readonly #relayable = new Map<string, Message[]>()
  readonly #listeners: Listeners = {
    vector: new Set(),
    equivocation: new Set(),
    rejected: new Set(),
    member: new Set(),
    refused: new Set(),
  }
  /** Our own recent announcements, kept so a stalled round can be announced again. */
  readonly #published = new Map<string, Uint8Array>()
  #started = false
  /** Pending retries of refused bootstrap dials, cleared by stop(). */
  readonly #retries = new Set<ReturnType<typeof setTimeout>>()
  #unsubscribeMembership: (() => void) | undefined
  /** When each reason was last logged at warn, and how many went to debug since (one key per reason). */
  readonly #warned = new Map<RejectReason, { at: number; suppressed: number }>()
  /** When each member was last redialled from its announcement (see `#redialMember`). */
  readonly #redialedAt = new Map<string, number>()
  #watchdog: ReturnType<typeof setInterval> | undefined

  constructor(
    libp2p: Libp2p<{ pubsub: GossipSub }>,
    init: NetNodeInit & typeof netDefaults,
    score: InvalidMessageScore,
    counters: MutableNetCounters,
    privateKey: PrivateKey,
  ) {
    this.libp2p = libp2p
    this.#init = init
    this.#privateKey = privateKey
    this.counters = counters
    this.membership = init.membership
    this.topics = topicsFor(init.cluster)
    this.#log = init.logger.child({ component: 'net', peer: libp2p.peerId.toString() })
    this.#store = new PayloadStore(init.payloadCacheBytes)
    this.#fetcher = new PayloadFetcher(libp2p)
    this.#slots = new StreamSlots(init.maxStreamsPerPeer)
    this.#buckets = new ByteBuckets(
      init.servedBytesPerSecond,
      init.servedBurstBytes,
      init.maxRateLimitedPeers,
    )
    this.#score = score
    this.#ledger = new RoundLedger(init.maxEvidence, init.maxEvidencePerSender)
    this.#serverRounds = new ServerRounds(init.membership)
    this.#ctx = {
      cluster: init.cluster,
      epoch: init.epoch,
      dimension: init.dimension,
      maxPayloadBytes: init.maxPayloadBytes,
      currentRound: init.round ?? 0,
      roundWindowAhead: init.roundWindowAhead,
      membership: init.membership,
    }
  }

  get peerId(): string {
    return this.libp2p.peerId.toString()
  }

  get round(): number {
    return this.#ctx.currentRound
  }

  multiaddrs(): string[] {
    return this.libp2p.getMultiaddrs().map((address) => address.toString())
  }

  async start(): Promise<void> {
    if (this.#started) return
    const pubsub = this.libp2p.services.pubsub
    const kinds = this.#init.subscribe ?? (this.#init.role === 'server' ? ['model', 'gradient'] : ['model'])
    for (const kind of kinds) {
      const topic = topicOf(this.topics, kind)
      pubsub.topicValidators.set(topic, (peer, message) => this.#validate(kind, message, peer.toString()))
      pubsub.subscribe(topic)
    }
    pubsub.topicValidators.set(this.topics.membership, (peer, message) =>
      this.#validateMember(message, peer.toString()),
    )
    pubsub.subscribe(this.topics.membership)
    pubsub.addEventListener('gossipsub:message', (event) => {
      this.#onGossip(event.detail).catch((error: unknown) => {
        // A bug here must cost one message, not the process.
        this.#log.error({ err: error, topic: event.detail.msg.topic }, 'message handling failed')
        pubsub.reportMessageValidationResult(
          event.detail.msgId,
          event.detail.propagationSource.toString(),
          TopicValidatorResult.Ignore,
        )
      })
    })
    await this.libp2p.handle(
      payloadProtocol,
      ({ stream, connection }) =>
        this.#serveStream(stream, connection.remotePeer, () =>
          servePayload(stream, connection.remotePeer, {
            cluster: this.#init.cluster,
            store: this.#store,
            log: this.#log,
            onServed: (bytes) => {
              this.counters.payload_served_bytes_total += bytes
            },
            idleTimeoutMs: this.#init.streamIdleTimeoutMs,
            buckets: this.#buckets,
            onRefused: (reason) => this.#refuseStream(reason, connection.remotePeer, payloadProtocol),
          }),
        ),
      { maxInboundStreams: this.#init.maxPayloadStreams, maxOutboundStreams: this.#init.maxPayloadStreams },
    )
    await this.libp2p.handle(
      syncProtocol,
      ({ stream, connection }) =>
        this.#serveStream(stream, connection.remotePeer, () =>
          serveSync(stream, connection.remotePeer, {
            cluster: this.#init.cluster,
            // Read as the stream takes them, converted one at a time: nothing is copied up front.
            held: (kind, fromRound) => this.#held(kind, fromRound),
            log: this.#log,
            idleTimeoutMs: this.#init.streamIdleTimeoutMs,
            buckets: this.#buckets,
            onRefused: (reason) => this.#refuseStream(reason, connection.remotePeer, syncProtocol),
            onServed: (bytes) => {
              this.counters.sync_served_bytes_total += bytes
            },
          }),
        ),
      { maxInboundStreams: this.#init.maxPayloadStreams, maxOutboundStreams: this.#init.maxPayloadStreams },
    )
    // A payload stream dies with its connection; drop it so the next fetch opens a new one.
    this.libp2p.addEventListener('peer:disconnect', (event) => this.#fetcher.forget(event.detail))
    // libp2p redials a dropped peer only when it carries a keep-alive tag, and gossip reaches only
    // connected peers: without it a connection lost to a failed ping or a corrupted frame leaves
    // the two nodes deaf to each other for good.
    this.libp2p.addEventListener('peer:connect', (event) => {
      const peer = event.detail
      if (!this.membership.has(peer.toString())) return
      void this.libp2p.peerStore
        .merge(peer, { tags: { [memberKeepAliveTag]: { value: 1 } } })
        .catch((error: unknown) =>
          this.#log.debug({ err: error, peer: peer.toString() }, 'keep-alive tag failed'),
        )
    })
    // A member removed from a closed set loses its connections, not just its future dials.
    this.#unsubscribeMembership = this.membership.onChange(() => {
      if (!this.membership.closed) return
      for (const connection of this.libp2p.getConnections()) {
        if (!this.membership.has(connection.remotePeer.toString())) {
          void this.libp2p.peerStore
            .merge(connection.remotePeer, { tags: { [memberKeepAliveTag]: undefined } })
            .catch(() => undefined)
          void connection.close().catch(() => undefined)
        }
      }
    })
    // An open member set lets strangers connect (a worker admitted a moment ago may dial before
    // its admission reaches us), so a stranger that hands us invalid messages until gossipsub
    // graylists it is cut off here, once a heartbeat, and the gater keeps it out while its
    // score (which gossipsub retains after a disconnect) stays below the graylist threshold.
    // Members stay connected: graylisting already drops everything they send.
    pubsub.addEventListener('gossipsub:heartbeat', this.#dropGraylistedStrangers)
    this.#started = true
    // libp2p's reconnect queue gives up on a peer after a few tries (~30 s): a node whose peers
    // were all down for longer (restarted one after another, partitioned, frozen) is left with no
    // connection, hears nothing, and nothing tells it to dial again. The chaos suite's long run
    // stalled every worker on that. So: no connection at all means the bootstrap list again.
    this.#watchdog = setInterval(() => {
      if (this.libp2p.getConnections().length > 0 || this.#init.bootstrap.length === 0) return
      this.#log.warn(
        { bootstrap: this.#init.bootstrap.length },
        'no connection left: dialling the bootstrap list again',
      )
      for (const address of this.#init.bootstrap) void this.dial(address).catch(() => undefined)
    }, this.#init.memberRedialMs)
    this.#watchdog.unref()
    await Promise.all(this.#init.bootstrap.map((address) => this.#dialBootstrap(address)))
    this.#log.info(
      { addrs: this.multiaddrs(), cluster: this.#init.cluster, role: this.#init.role },
      'net started',
    )
  }

  /**
   * The first dial is awaited (start returns with the peers that answered); a refused one is
   * retried in the background until it connects or the node stops, so start never waits on a
   * peer that is down.
   */
  async #dialBootstrap(address: string): Promise<void> {
    const [firstWaitMs, maxWaitMs] = this.#init.bootstrapRetryMs
    const attempt = async (waitMs: number, attempts: number): Promise<void> => {
      try {
        await this.dial(address)
        if (attempts > 1) this.#log.info({ address, attempts }, 'bootstrap dial succeeded')
      } catch (error) {
        // Its own name in a shared bootstrap list (a server's): nothing to retry.
        if (!this.#started || (error as Error).name === 'InvalidPeerIdError') return
        this.#log.warn({ address, err: error, attempts, retryInMs: waitMs }, 'bootstrap dial failed')
        const timer = setTimeout(() => {
          this.#retries.delete(timer)
          void attempt(Math.min(waitMs * 2, maxWaitMs), attempts + 1)
        }, waitMs)
        this.#retries.add(timer)
      }
    }
    await attempt(firstWaitMs, 1)
  }

  async stop(): Promise<void> {
    this.#unsubscribeMembership?.()
    this.libp2p.services.pubsub.removeEventListener('gossipsub:heartbeat', this.#dropGraylistedStrangers)
    this.#fetcher.close()
    this.#started = false
    clearInterval(this.#watchdog)
    for (const timer of this.#retries) clearTimeout(timer)
    this.#retries.clear()
    await this.libp2p.stop()
  }

  async dial(address: string): Promise<void> {
    await this.libp2p.dial(multiaddr(address))
  }

  setRound(round: number): void {
    this.#ctx.currentRound = round
    this.#ledger.prune(round - 1)
    for (const [key, vectors] of this.#received) {
      if ((vectors[0]?.round ?? round) < round - 1) {
        this.#received.delete(key)
        this.#relayable.delete(key)
      }
    }
  }

  clusterRound(quorum: number): number | undefined {
    return this.#serverRounds.quorumRound(quorum)
  }

  /** True for a peer gossipsub graylists (its RPCs are dropped unread) for what it handed us. */
  isGraylisted(peerId: string): boolean {
    return this.libp2p.services.pubsub.getScore(peerId) < this.#init.graylistScoreThreshold
  }

  readonly #dropGraylistedStrangers = (): void => {
    for (const connection of this.libp2p.getConnections()) {
      const peer = connection.remotePeer.toString()
      if (this.membership.has(peer) || !this.isGraylisted(peer)) continue
      this.counters.peers_disconnected_total++
      this.#log.warn({ peer }, 'disconnected a non-member graylisted for invalid messages')
      this.#emit('refused', { peerId: peer, direction: 'disconnected' })
      void connection.close().catch(() => undefined)
    }
  }

  async republish(kind: VectorKind, round: number): Promise<boolean> {
    const data = this.#published.get(`${kind}/${round}`)
    if (data === undefined) return false
    await this.libp2p.services.pubsub.publish(topicOf(this.topics, kind), data)
    this.#log.debug({ kind, round }, 'republished')
    return true
  }

  async publish(kind: VectorKind, round: number, vector: Float32Array): Promise<PublishReceipt> {
    const { data, receipt } = await this.#sign(kind, round, vector)
    this.#published.set(`${kind}/${round}`, data)
    for (const key of this.#published.keys()) {
      if (Number(key.split('/')[1]) < round - 2) this.#published.delete(key)
    }
    this.#deliver({
      kind,
      round,
      sender: this.peerId,
      role: this.#init.role,
      // The caller's own array: the bytes we serve to peers stay a private copy.
      vector,
      hash: receipt.hash,
      self: true,
    })
    return receipt
  }

  async publishConflicting(
    kind: VectorKind,
    round: number,
    versions: readonly Float32Array[],
  ): Promise<PublishReceipt[]> {
    const receipts: PublishReceipt[] = []
    for (const vector of versions) receipts.push((await this.#sign(kind, round, vector)).receipt)
    this.#log.debug({ kind, round, versions: versions.length }, 'published conflicting versions')
    return receipts
  }

  async publishTargeted(
    kind: VectorKind,
    round: number,
    versions: readonly { vector: Float32Array; receivers: readonly string[] }[],
  ): Promise<PublishReceipt[]> {
    const topic = topicOf(this.topics, kind)
    const gossip = this.libp2p.services.pubsub as unknown as {
      sendRpc(peer: string, rpc: { subscriptions: []; messages: RPC.Message[] }): boolean
    }
    const receipts: PublishReceipt[] = []
    for (const { vector, receivers } of versions) {
      const { data, unsent } = this.#encode(kind, round, vector)
      const message = await signGossipMessage(this.#privateKey, { data, topic })
      const handed = receivers.filter((peer) =>
        gossip.sendRpc(peer, { subscriptions: [], messages: [message] }),
      )
      receipts.push({ ...unsent, recipients: handed.length })
    }
    this.#log.debug(
      { kind, round, receivers: receipts.map((receipt) => receipt.recipients) },
      'handed different versions to different peers',
    )
    return receipts
  }

  subscribers(kind: VectorKind): string[] {
    return this.libp2p.services.pubsub
      .getSubscribers(topicOf(this.topics, kind))
      .map((peer) => peer.toString())
      .filter((peer) => this.membership.has(peer))
  }

  /** Encodes, signs (gossipsub StrictSign) and floods one vector message of this node. */
  async #sign(
    kind: VectorKind,
    round: number,
    vector: Float32Array,
  ): Promise<{ data: Uint8Array; receipt: PublishReceipt }> {
    const { data, unsent, bytes } = this.#encode(kind, round, vector)
    const result = await this.libp2p.services.pubsub.publish(topicOf(this.topics, kind), data)
    this.#log.debug({ kind, round, bytes, recipients: result.recipients.length }, 'published')
    return { data, receipt: { ...unsent, recipients: result.recipients.length } }
  }

  /**
   * One vector message of this node (payload inline, or in the store for peers to pull by hash),
   * before any signing or sending.
   */
  #encode(
    kind: VectorKind,
    round: number,
    vector: Float32Array,
  ): { data: Uint8Array; unsent: Omit<PublishReceipt, 'recipients'>; bytes: number } {
    if (!this.#started)
      throw new NodeNotStartedError('publish needs a started node', { operation: 'publish' })
    if (vector.length !== this.#init.dimension) {
      throw new DimensionMismatchError({
        source: 'publish',
        expected: this.#init.dimension,
        actual: vector.length,
      })
    }
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
      sender: this.peerId,
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

  offerPayload(bytes: Uint8Array): string {
    const hash = toHex(sha256(bytes))
    this.#store.put(hash, bytes)
    return hash
  }

  received(kind: VectorKind, round: number): readonly DeliveredVector[] {
    return this.#received.get(`${kind}/${round}`) ?? []
  }

  collect(kind: VectorKind, round: number, options: CollectOptions): Promise<DeliveredVector[]> {
    return collectQuorum(
      {
        received: (k, r) => this.received(k, r),
        onVector: (listener) => this.on('vector', listener),
        onEquivocation: (listener) => this.on('equivocation', listener),
        isEquivocator: (k, r, s) => this.#ledger.isEquivocator(k, r, s),
      },
      kind,
      round,
      options,
    )
  }

  isEquivocator(kind: VectorKind, round: number, sender: string): boolean {
    return this.#ledger.isEquivocator(kind, round, sender)
  }

  evidence(): readonly EquivocationEvidence[] {
    return this.#ledger.evidence()
  }

  takeEvidence(): EquivocationEvidence[] {
    return this.#ledger.takeEvidence()
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
    const set = this.#listeners[event] as Set<(detail: NetEvents[E]) => void>
    set.add(listener)
    return () => set.delete(listener)
  }

  /** Called by the connection gater, which exists before the node object does. */
  refused(peerId: string, direction: 'inbound' | 'outbound'): void {
    this.#log.info({ peer: peerId, direction }, 'connection refused: not a member')
    this.#emit('refused', { peerId, direction })
  }

  #emit<E extends keyof NetEvents>(event: E, detail: NetEvents[E]): void {
    for (const listener of this.#listeners[event] as Set<(detail: NetEvents[E]) => void>) {
      try {
        listener(detail)
      } catch (error) {
        this.#log.error({ event, err: error }, 'event listener threw')
      }
    }
  }

  #deliver(vector: DeliveredVector): void {
    const key = `${vector.kind}/${vector.round}`
    const list = this.#received.get(key)
    if (list === undefined) this.#received.set(key, [vector])
    else list.push(vector)
    if (!vector.self) this.counters.messages_delivered_total++
    this.#emit('vector', vector)
  }

  /**
   * Counts and logs a refusal and penalises whoever is at fault: `source`, the peer that handed
   * the message over, when an honest relay would never have passed it on (it validates before
   * it forwards).
   *
   * An equivocation penalises no one: an honest relay forwards the version it saw first, and
   * charging the signer only made its peers stop sending to it. Below −50 (six equivocations
   * seen) flood publishing skips it and below 0 the mesh drops it, so an equivocating server
   * that stopped, or was restarted with the same key, received no gradients or models until the
   * penalty decayed (a 60 s half-life, hundreds of rounds): the long chaos profile's `server-0`
   * took 690–860 rounds to contribute again. The protocol already disarms the fault (the first
   * version per round counts, later ones are refused and kept as evidence), a signer that floods
   * versions costs no more than one that floods stale rounds (also free), and an honest server
   * that lost a state write can sign a round twice and would be cut off the same way.
   */
  #reject(
    reason: RejectReason,
    detail: string,
    topic: string,
    from: string | undefined,
    round: number | undefined,
    source: string | undefined,
  ): void {
    this.counters.reject(reason)
    if (source !== undefined && isRelayFault(reason)) this.#score.penalize(source)
    const fields = { reason, peer: from, round, topic, detail }
    // Duplicates are normal under re-publication; the rest is worth an operator's attention, but
    // a flood (an outsider minting keys) must not become a flood of log lines: one warning per
    // reason per second, carrying how many of that reason went to debug since the last one.
    const now = Date.now()
    const last = this.#warned.get(reason)
    if (reason === 'duplicate' || (last !== undefined && now - last.at < 1000)) {
      if (last !== undefined && reason !== 'duplicate') last.suppressed++
      this.#log.debug(fields, 'message rejected')
    } else {
      this.#log.warn({ ...fields, suppressed: last?.suppressed ?? 0 }, 'message rejected')
      this.#warned.set(reason, { at: now, suppressed: 0 })
    }
    this.#emit('rejected', { reason, topic, from, round, detail })
  }

  /** `source`: the peer that handed the message over (gossip's propagation source, a sync peer). */
  #validate(kind: VectorKind, message: Message, source: string): TopicValidatorResult {
    this.counters.messages_received_total++
    const incoming: IncomingMessage =
      message.type === 'signed'
        ? {
            topic: message.topic,
            from: message.from.toString(),
            data: message.data,
            sequenceNumber: message.sequenceNumber,
            signature: message.signature,
          }
        : { topic: message.topic, from: undefined, data: message.data }
    const verdict = validateVectorMessage(incoming, kind, this.#ctx, this.#ledger)
    if (!verdict.ok) {
      if (verdict.equivocation !== undefined) {
        this.counters.equivocations_total++
        this.#log.warn(
          { kind, round: verdict.equivocation.round, sender: verdict.equivocation.sender },
          'equivocation detected',
        )
        this.#emit('equivocation', verdict.equivocation)
      }
      // A member server's signed model of a round the window does not reach yet says where that
      // server is: what a node left behind needs to know (see `clusterRound`).
      if (verdict.reason === 'future_round' && kind === 'model' && incoming.from !== undefined)
        this.#serverRounds.observe(incoming.from, verdict.header!.round)
      this.#reject(
        verdict.reason,
        verdict.detail,
        message.topic,
        incoming.from,
        verdict.header?.round,
        source,
      )
      // Reject makes gossipsub count an invalid delivery (P4) against the peer that relayed it; a
      // message that is only early, late or a repeat is no one's fault (a straggler must not
      // graylist its peers and then never hear the re-announcements it needs to catch up), and
      // an equivocation's second version reaches us from honest relays too.
      return isRelayFault(verdict.reason) ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
    }
    if (kind === 'model') this.#serverRounds.observe(verdict.header.sender, verdict.header.round)
    this.#accepted.set(message, verdict)
    return TopicValidatorResult.Accept
  }

  /**
   * The membership topic gets the same trust boundary as the vector topics: members only, in
   * their member-set role, of this cluster and epoch. Every refusal is counted and penalises the
   * peer that handed it over; nothing refused is forwarded, emitted, redialled or counted
   * towards a round.
   */
  #validateMember(message: Message, source: string): TopicValidatorResult {
    const from = message.type === 'signed' ? message.from.toString() : undefined
    const verdict = checkAnnouncement(message.data, from, this.#ctx)
    if (!verdict.ok) {
      this.#reject(verdict.reason, verdict.detail, message.topic, from, verdict.hello?.round, source)
      return TopicValidatorResult.Reject
    }
    this.#acceptedHellos.set(message, verdict)
    return TopicValidatorResult.Accept
  }

  async #onGossip({ propagationSource, msgId, msg }: GossipsubMessage): Promise<void> {
    const pubsub = this.libp2p.services.pubsub
    if (msg.topic === this.topics.membership) {
      const verdict = this.#acceptedHellos.get(msg)
      pubsub.reportMessageValidationResult(
        msgId,
        propagationSource.toString(),
        verdict === undefined ? TopicValidatorResult.Ignore : TopicValidatorResult.Accept,
      )
      if (verdict === undefined) return
      const { hello, role } = verdict
      const multiaddrs = hello.multiaddrs.flatMap((bytes) => {
        try {
          return [multiaddr(bytes).toString()]
        } catch {
          return []
        }
      })
      if (role === 'server') this.#serverRounds.observe(hello.sender, hello.round)
      this.#emit('member', { peerId: hello.sender, role, multiaddrs, round: hello.round })
      this.#redialMember(hello.sender, multiaddrs)
      return
    }
    const accepted = this.#accepted.get(msg)
    if (accepted === undefined) {
      pubsub.reportMessageValidationResult(msgId, propagationSource.toString(), TopicValidatorResult.Ignore)
      return
    }
    const outcome = await this.#payloadOf(accepted, propagationSource)
    if (!outcome.ok) {
      // The relay is at fault for a payload that matches the signed hash but is not finite (it
      // should have checked before forwarding) or for bytes it served itself; not for what the
      // announcer served after the relay had nothing.
      const relayAtFault =
        outcome.reason === 'non_finite' || outcome.culprit?.equals(propagationSource) === true
      pubsub.reportMessageValidationResult(
        msgId,
        propagationSource.toString(),
        relayAtFault ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore,
      )
      // A peer that served bytes failing the hash was penalised by the fetch already. Counted by
      // the offer that started the fetch; the offers that joined it share the one outcome.
      if (outcome.fresh)
        this.#reject(
          outcome.reason,
          outcome.detail,
          msg.topic,
          accepted.header.sender,
          accepted.header.round,
          outcome.reason === 'non_finite' ? propagationSource.toString() : undefined,
        )
      return
    }
    // Forward only now: a relay forwards what it can also serve.
    pubsub.reportMessageValidationResult(msgId, propagationSource.toString(), TopicValidatorResult.Accept)
    if (outcome.fresh) this.#deliverAccepted(accepted, outcome.vector, msg)
  }

  /**
   * A member we hear announce itself (relayed by others) but hold no connection to: dial it at the
   * addresses it announced, at most once per `memberRedialMs`. Gossip and pulls reach connected
   * peers only, and libp2p stops redialling a peer that was down for more than ~30 s, so without
   * this two members that each lost the other (a restart, a partition) may never meet again.
   */
  #redialMember(peerId: string, announced: readonly string[]): void {
    if (!this.#started || peerId === this.peerId || !this.membership.has(peerId)) return
    if (this.libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId)) return
    const now = Date.now()
    if (now - (this.#redialedAt.get(peerId) ?? 0) < this.#init.memberRedialMs) return
    // Members only enter; this drops the ones evicted since and the ones past their wait.
    if (this.#redialedAt.size >= this.membership.count()) {
      for (const [peer, at] of this.#redialedAt) {
        if (now - at >= this.#init.memberRedialMs || !this.membership.has(peer)) this.#redialedAt.delete(peer)
      }
    }
    this.#redialedAt.set(peerId, now)
    const addresses: Multiaddr[] = []
    for (const address of announced) {
      try {
        const parsed = multiaddr(address)
        addresses.push(parsed.getPeerId() === null ? parsed.encapsulate(`/p2p/${peerId}`) : parsed)
      } catch {
        // An address we cannot parse is one we cannot dial.
      }
    }
    if (addresses.length === 0) return
    this.libp2p.dial(addresses).then(
      () => this.#log.info({ member: peerId }, 'redialled a member heard but not connected'),
      (error: unknown) => this.#log.debug({ member: peerId, err: error }, 'member redial failed'),
    )
  }

  /** Runs one served stream inside the peer's stream slots; a peer over its limit is refused. */
  #serveStream(stream: Stream, peer: PeerId, serve: () => Promise<void>): void {
    const release = this.#slots.acquire(peer.toString())
    if (release === undefined) {
      this.#refuseStream('concurrent', peer, stream.protocol ?? '')
      stream.abort(new Error(`more than ${this.#init.maxStreamsPerPeer} streams open`))
      return
    }
    void serve().finally(release)
  }

  #refuseStream(reason: StreamRefusal, peer: PeerId, protocol: string): void {
    this.counters.streams_refused_total[reason]++
    this.#log.debug({ reason, peer: peer.toString(), protocol }, 'served stream refused')
  }

  /** The signed messages held for `kind` from `fromRound` on, one at a time, for a sync answer. */
  *#held(kind: VectorKind, fromRound: number): Generator<RelayedFields> {
    for (const [key, messages] of this.#relayable) {
      if (!key.startsWith(`${kind}/`) || Number(key.split('/')[1]) < fromRound) continue
      for (const message of messages) {
        const fields = relayedFromMessage(message)
        if (fields !== undefined) yield fields
      }
    }
  }

  /**
   * The payload of a validated message: inline, or fetched. An offer of a hash already being
   * fetched joins that fetch (its peer becomes one more candidate) and shares its outcome with
   * `fresh: false`: only the offer that started the fetch delivers or counts it.
   */
  async #payloadOf(accepted: Accepted, source: PeerId): Promise<PayloadOutcome> {
    if (accepted.vector !== undefined) return { ok: true, vector: accepted.vector, fresh: true }
    const { header } = accepted
    const key = `${accepted.kind}/${header.round}/${header.sender}`
    const running = this.#fetches.get(key)
    if (running !== undefined && running.hash === accepted.hash) {
      if (!running.candidates.some((peer) => peer.equals(source))) running.candidates.push(source)
      return { ...(await running.done), fresh: false }
    }
    const candidates: PeerId[] = [source]
    const announcer = this.libp2p
      .getConnections()
      .find((c) => c.remotePeer.toString() === header.sender)?.remotePeer
    if (announcer !== undefined && !announcer.equals(source)) candidates.push(announcer)
    const done = this.#fetch(accepted, candidates).finally(() => {
      if (this.#fetches.get(key)?.done === done) this.#fetches.delete(key)
    })
    this.#fetches.set(key, { hash: accepted.hash, candidates, done })
    return done
  }

  /**
   * Pulls an announced payload from its candidates in turn, each with its own timeout
   * (`payloadPeerTimeoutMs`), under one bound for the whole fetch (`payloadFetchTimeoutMs`): the
   * peer that relayed the announcement (it validated, so it holds the bytes), then the announcer,
   * then every peer that offers the same hash meanwhile. A peer serving bytes that do not match
   * the signed hash is penalised and the next one is tried; a payload that matches the hash but
   * is not finite is the signer's fault and ends it. Only verified bytes commit the ledger entry;
   * when every candidate failed it stays pending and the next offer fetches again.
   */
  async #fetch(accepted: Accepted, candidates: readonly PeerId[]): Promise<PayloadOutcome> {
    const { header, kind } = accepted
    const deadline = AbortSignal.timeout(this.#init.payloadFetchTimeoutMs)
    const startedAt = performance.now()
    let last: { reason: RejectReason; detail: string; culprit?: PeerId } = {
      reason: 'payload_unavailable',
      detail: 'no peer to fetch from',
    }
    // Candidates may be added while earlier ones are tried: the length is read every time.
    for (let index = 0; index < candidates.length && !deadline.aborted; index++) {
      const peer = candidates[index]!
      const signal = AbortSignal.any([deadline, AbortSignal.timeout(this.#init.payloadPeerTimeoutMs)])
      const result = await this.#fetcher.fetch(
        peer,
        { cluster: this.#init.cluster, round: header.round, hash: header.hash, size: header.size },
        signal,
      )
      if (!result.ok) {
        last = { reason: 'payload_unavailable', detail: `${peer.toString()}: ${result.detail}` }
        this.#log.debug(
          { round: header.round, sender: header.sender, from: peer.toString(), detail: result.detail },
          'payload fetch failed, next candidate',
        )
        continue
      }
      this.counters.payload_fetched_bytes_total += result.bytes.byteLength
      const fetchedAt = performance.now()
      const problem = checkPayload(header, result.bytes)
      // Where a delivery's time goes, for the benchmark's reading (debug level only).
      this.#log.debug(
        {
          round: header.round,
          sender: header.sender,
          from: peer.toString(),
          bytes: header.size,
          fetchMs: Math.round(fetchedAt - startedAt),
          checkMs: Math.round(performance.now() - fetchedAt),
        },
        'payload fetched',
      )
      if (problem === undefined) {
        this.#store.put(accepted.hash, result.bytes)
        const fresh = this.#ledger.commit(kind, header.round, header.sender, accepted.hash)
        return { ok: true, vector: new Float32Array(result.bytes.buffer, 0, header.dimension), fresh }
      }
      last = { ...problem, culprit: peer }
      if (problem.reason === 'non_finite') {
        // The signer signed these bytes: every copy of the hash is refused from now on.
        this.#ledger.commit(kind, header.round, header.sender, accepted.hash)
        break
      }
      this.#score.penalize(peer.toString())
    }
    return { ok: false, ...last, fresh: true }
  }

  #deliverAccepted(accepted: Accepted, vector: Float32Array, message: Message): void {
    const { header } = accepted
    if (this.#ledger.isEquivocator(accepted.kind, header.round, header.sender)) return
    this.#deliver({
      kind: accepted.kind,
      round: header.round,
      sender: header.sender,
      role: publisherRoleOf[accepted.kind],
      // A copy: the received bytes are also what this node relays (inline in the cached gossip
      // message, or from the payload store), and an application writing into its vector must not
      // make this node serve bytes that fail the signed hash.
      vector: vector.slice(),
      hash: accepted.hash,
      self: false,
    })
    const key = `${accepted.kind}/${header.round}`
    const list = this.#relayable.get(key)
    if (list === undefined) this.#relayable.set(key, [message])
    else list.push(message)
  }

  async pull(kind: VectorKind, fromRound: number, options: { signal?: AbortSignal } = {}): Promise<number> {
    if (!this.#started) return 0
    const connected = [
      ...new Map(this.libp2p.getConnections().map((c) => [c.remotePeer.toString(), c.remotePeer])).values(),
    ].filter((peer) => this.membership.has(peer.toString()) || !this.membership.closed)
    // Servers hold both kinds of every round they are in; workers only models.
    const servers = connected.filter((peer) => this.membership.roleOf(peer.toString()) === 'server')
    const peers = servers.length > 0 ? servers : connected
    const timeout = AbortSignal.timeout(this.#init.syncTimeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    const request = {
      cluster: this.#init.cluster,
      kind,
      fromRound,
      // An inline payload plus the announcement's fields and the signature.
      maxMessageBytes: this.#init.inlineMaxBytes + 4 * 1024,
      maxMessages: (this.#init.roundWindowAhead + 2) * Math.max(1, this.membership.count()),
    }
    const answers = await Promise.all(
      peers.map(async (peer) => ({ peer, messages: await fetchSync(this.libp2p, peer, request, signal) })),
    )
    const topic = topicOf(this.topics, kind)
    let delivered = 0
    for (const { peer, messages } of answers) {
      for (const fields of messages) {
        if (signal.aborted) return delivered
        if (fields.topic !== topic) continue
        // Skips what this node already holds before paying for a signature check.
        const header = decodeVectorMessage(fields.data)
        if (header === undefined) continue
        if (this.received(kind, header.round).some((v) => v.sender === header.sender)) continue
        const message = await verifyRelayed(fields)
        if (message === undefined) {
          this.#log.warn({ peer: peer.toString(), kind }, 'sync answer with a bad signature')
          this.#score.penalize(peer.toString())
          continue
        }
        if (this.#validate(kind, message, peer.toString()) !== TopicValidatorResult.Accept) continue
        const accepted = this.#accepted.get(message)!
        const outcome = await this.#payloadOf(accepted, peer)
        if (!outcome.fresh) continue
        if (!outcome.ok) {
          // As for gossip: bytes failing the hash were penalised by the fetch already.
          this.#reject(
            outcome.reason,
            outcome.detail,
            topic,
            header.sender,
            header.round,
            outcome.reason === 'non_finite' ? peer.toString() : undefined,
          )
          continue
        }
        this.#deliverAccepted(accepted, outcome.vector, message)
        this.counters.messages_synced_total++
        delivered++
      }
    }
    if (delivered > 0) this.#log.info({ kind, fromRound, delivered }, 'synced vectors from peers')
    return delivered
  }
}

/**
 * `fresh`: this caller started the fetch (or the payload was inline) and the ledger took it now,
 * so it delivers or counts the outcome; false for an offer that joined a fetch in progress.
 */
type PayloadOutcome =
  | { ok: true; vector: Float32Array; fresh: boolean }
  | { ok: false; reason: RejectReason; detail: string; culprit?: PeerId; fresh: boolean }

/** One payload fetch in progress and the peers it may ask, in the order they offered the hash. */
interface FetchJob {
  hash: string
  candidates: PeerId[]
  done: Promise<PayloadOutcome>
}

function validateInit(init: NetNodeInit & typeof netDefaults): void {
  const positiveIntegers = [
    'dimension',
    'maxPayloadBytes',
    'inlineMaxBytes',
    'payloadFetchTimeoutMs',
    'payloadPeerTimeoutMs',
    'syncTimeoutMs',
    'memberRedialMs',
    'maxStreamsPerPeer',
    'streamIdleTimeoutMs',
    'servedBytesPerSecond',
    'servedBurstBytes',
    'maxRateLimitedPeers',
    'maxEvidence',
    'maxEvidencePerSender',
  ] as const
  for (const field of positiveIntegers) {
    const value = init[field]
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new NetConfigError(`${field} must be a positive integer, got ${value}`, { field, value })
    }
  }
  if (!Number.isSafeInteger(init.roundWindowAhead) || init.roundWindowAhead < 0) {
    throw new NetConfigError(`roundWindowAhead must be ≥ 0, got ${init.roundWindowAhead}`, {
      field: 'roundWindowAhead',
      value: init.roundWindowAhead,
    })
  }
  if (init.dimension * 4 > init.maxPayloadBytes) {
    throw new NetConfigError(
      `dimension ${init.dimension} needs ${init.dimension * 4} bytes > maxPayloadBytes`,
      {
        field: 'dimension',
        value: init.dimension,
      },
    )
  }
  if (init.inlineMaxBytes >= init.gossipMaxInboundDataLength) {
    throw new NetConfigError(
      'inlineMaxBytes must stay below the gossip frame limit, or inline vectors cut peers off',
      {
        field: 'inlineMaxBytes',
        value: init.inlineMaxBytes,
      },
    )
  }
  if (!Number.isInteger(init.gossipMeshDegree) || init.gossipMeshDegree < 1) {
    throw new NetConfigError(`gossipMeshDegree must be an integer ≥ 1, got ${init.gossipMeshDegree}`, {
      field: 'gossipMeshDegree',
      value: init.gossipMeshDegree,
    })
  }
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(init.cluster)) {
    throw new NetConfigError(
      `cluster id must be 1–64 of [A-Za-z0-9._-], got ${JSON.stringify(init.cluster)}`,
      {
        field: 'cluster',
        value: init.cluster,
      },
    )
  }
}

/**
 * Creates (but does not start) a data-plane node: libp2p over TCP with Noise and Yamux,
 * identify, ping, gossipsub (StrictSign, topic validators, application score) and the payload
 * stream protocol. Call `start()` to subscribe and dial the bootstrap list.
 */
export async function createNetNode(options: NetNodeInit): Promise<NetNode> {
  const init = { ...netDefaults, ...stripUndefined(options) } as NetNodeInit & typeof netDefaults
  validateInit(init)
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
  const membership = init.membership
  let node: Libp2pNetNode | undefined
  // A closed set refuses every non-member. An open one (members learned at run time, from the
  // control plane) must let a peer in before it is known to be a member, but not a stranger
  // graylisted for what it sent: the heartbeat closed its connection, and this keeps it out.
  const refuse = (peerId: PeerId, direction: 'inbound' | 'outbound'): boolean => {
    const peer = peerId.toString()
    if (membership.has(peer)) return false
    if (!membership.closed && node?.isGraylisted(peer) !== true) return false
    counters.connections_refused_total++
    node?.refused(peer, direction)
    return true
  }
  const topics = topicsFor(init.cluster)
  // P4 (invalid deliveries) only: P1–P3 reward or punish mesh traffic volumes, and a worker never
  // publishes models, so the mesh-delivery deficit (P3) would graylist honest workers.
  const topicScore = createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0,
    firstMessageDeliveriesWeight: 0,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: init.invalidDeliveryWeight,
    invalidMessageDeliveriesDecay: init.invalidDeliveryDecay,
  })
  const withPeerIds = init.bootstrap.filter((address) => address.includes('/p2p/'))
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  if (withPeerIds.length > 0) peerDiscovery.push(bootstrap({ list: [...withPeerIds], timeout: 0 }) as never)
  if (init.mdns) peerDiscovery.push(mdns() as never)
  const libp2p = await createLibp2p({
    privateKey,
    start: false,
    addresses: { listen: [...init.listen] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [
      yamux({
        maxStreamWindowSize: init.yamuxMaxStreamWindowBytes,
        // Start big too: a payload stream is short-lived and would spend its life growing a small window.
        initialStreamWindowSize: Math.min(init.yamuxMaxStreamWindowBytes, 4 * 1024 * 1024),
        // One Yamux frame (12-byte header + data) per Noise frame (at most 65 519 plaintext
        // bytes): with Yamux's 64 KiB default every frame is split into a full Noise frame and a
        // 17-byte one, doubling the per-frame cipher setup and socket writes.
        maxMessageSize: noiseMaxPlaintextBytes,
      }),
    ],
    peerDiscovery,
    connectionGater: {
      // Loopback and private addresses are where test and pod networks live.
      denyDialMultiaddr: () => false,
      denyInboundEncryptedConnection: (peerId) => refuse(peerId, 'inbound'),
      denyOutboundEncryptedConnection: (peerId) => refuse(peerId, 'outbound'),
    },
    connectionManager: {
      maxConnections: init.maxConnections,
      inboundConnectionThreshold: init.inboundConnectionThreshold,
    },
    connectionMonitor: { pingTimeout: { minTimeout: init.pingTimeoutMinMs } },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictSign',
        emitSelf: false,
        // Forward only after our own checks, including the payload fetch for announced vectors.
        asyncValidation: true,
        allowPublishToZeroTopicPeers: true,
        floodPublish: true,
        // Without it every forwarded copy of a message has its signature checked before it is
        // recognised as a duplicate: measured at ~12% of a 16-node cluster's CPU. The key is the
        // StrictSign message id (from, seqno); only validly signed messages enter this cache.
        fastMsgIdFn: fastMessageId,
        D: init.gossipMeshDegree,
        Dlo: Math.max(1, init.gossipMeshDegree - 1),
        Dhi: 2 * init.gossipMeshDegree - 1,
        // Outbound and score-kept mesh slots must fit under Dlo.
        Dout: Math.min(2, Math.floor(init.gossipMeshDegree / 2)),
        Dscore: Math.min(4, Math.max(1, init.gossipMeshDegree - 2)),
        maxInboundDataLength: init.gossipMaxInboundDataLength,
        // An announcement waits in the message cache until its payload is fetched and checked;
        // it must still be there (one window per 1 s heartbeat) when the slowest fetch ends.
        mcacheLength: Math.max(5, Math.ceil(init.payloadFetchTimeoutMs / 1000) + 2),
        scoreParams: {
          topics: {
            [topics.models]: topicScore,
            [topics.gradients]: topicScore,
            [topics.membership]: topicScore,
          },
          // Many peers share 127.0.0.1 or a pod-network NAT address; colocation is not Sybil here.
          IPColocationFactorWeight: 0,
          appSpecificScore: (peer: string) => score.score(peer),
          appSpecificWeight: 1,
        },
        scoreThresholds: {
          gossipThreshold: init.gossipScoreThreshold,
          publishThreshold: init.publishScoreThreshold,
          graylistThreshold: init.graylistScoreThreshold,
        },
      }) as never,
    },
  })
  node = new Libp2pNetNode(
    libp2p as unknown as Libp2p<{ pubsub: GossipSub }>,
    init,
    score,
    counters,
    privateKey,
  )
  await libp2p.start()
  return node
}

let unkeyedMessages = 0
function fastMessageId(message: { from?: Uint8Array; seqno?: Uint8Array }): string {
  // Unsigned messages are refused by StrictSign anyway; give each its own key so none is
  // mistaken for a duplicate of another.
  if (message.from === undefined || message.seqno === undefined) return `unkeyed:${unkeyedMessages++}`
  return `${Buffer.from(message.from).toString('base64')}:${Buffer.from(message.seqno).toString('base64')}`
}

/** A libp2p tag starting with `keep-alive`: the reconnect queue redials peers that carry one. */
const memberKeepAliveTag = `${KEEP_ALIVE}-phalanx-member`

/** Noise transport messages are at most 65 535 bytes, 16 of them the ChaCha20-Poly1305 tag. */
const noiseMaxPlaintextBytes = 65_535 - 16

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
