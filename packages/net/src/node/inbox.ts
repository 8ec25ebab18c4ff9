import type { GossipsubMessage } from '@chainsafe/libp2p-gossipsub'
import { type Message, type PeerId, TopicValidatorResult } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import { type AnnouncementVerdict, checkAnnouncement, ServerRounds } from '../announcement.js'
import type { RelayedFields } from '../codec.js'
import type { MutableNetCounters } from '../counters.js'
import type { PayloadStore } from '../payload.js'
import type { PayloadChannel } from '../payload-channel.js'
import type { InvalidMessageScore } from '../score.js'
import { relayedFromMessage } from '../sync.js'
import { type ClusterTopics, topicOf } from '../topics.js'
import {
  type DeliveredVector,
  type EquivocationEvidence,
  publisherRoleOf,
  type RejectReason,
  type VectorKind,
} from '../types.js'
import {
  type Accepted,
  checkReceived,
  type IncomingMessage,
  isRelayFault,
  RoundLedger,
  type ValidationContext,
  validateVectorMessage,
} from '../validation.js'
import type { NetEventBus } from './events.js'
import type { ResolvedNetNodeInit } from './init.js'
import type { NetLibp2p } from './libp2p.js'

export interface InboxParts {
  libp2p: NetLibp2p
  init: ResolvedNetNodeInit
  topics: ClusterTopics
  counters: MutableNetCounters
  events: NetEventBus
  log: Logger
  score: InvalidMessageScore
  /** Verified payloads, kept to serve peers that pull them (shared with publishing and serving). */
  store: PayloadStore
  /** Where announced payloads are fetched from (the TLS plane, or the libp2p stream). */
  payloads: PayloadChannel
  /** A member announced itself at these addresses (connectivity redials it when not connected). */
  onMemberHeard(peerId: string, multiaddrs: readonly string[]): void
}

/**
 * What reaches this node, gossiped or pulled, on its way to the application: validate (the
 * pipeline of `validation.ts`, before gossipsub forwards anything), fetch the payload of an
 * announced vector and check it against the signed hash, deliver. Holds what was delivered per
 * kind and round, and the signed messages behind it to hand on to stragglers. A payload is
 * received into place and delivered without a copy: `../receive.ts` lists every copy and pass
 * from the wire to the application.
 */
export class Inbox {
  readonly #libp2p: NetLibp2p
  readonly #init: ResolvedNetNodeInit
  readonly #topics: ClusterTopics
  readonly #counters: MutableNetCounters
  readonly #events: NetEventBus
  readonly #log: Logger
  readonly #score: InvalidMessageScore
  readonly #store: PayloadStore
  readonly #onMemberHeard: (peerId: string, multiaddrs: readonly string[]) => void
  readonly #fetcher: PayloadChannel
  readonly #ctx: ValidationContext
  readonly #ledger: RoundLedger
  readonly #serverRounds: ServerRounds
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
  /** When each reason was last logged at warn, and how many went to debug since (one key per reason). */
  readonly #warned = new Map<RejectReason, { at: number; suppressed: number }>()

  constructor(parts: InboxParts) {
    this.#libp2p = parts.libp2p
    this.#init = parts.init
    this.#topics = parts.topics
    this.#counters = parts.counters
    this.#events = parts.events
    this.#log = parts.log
    this.#score = parts.score
    this.#store = parts.store
    this.#onMemberHeard = parts.onMemberHeard
    this.#fetcher = parts.payloads
    this.#ledger = new RoundLedger(parts.init.maxEvidence, parts.init.maxEvidencePerSender)
    this.#serverRounds = new ServerRounds(parts.init.membership)
    this.#ctx = {
      cluster: parts.init.cluster,
      epoch: parts.init.epoch,
      dimension: parts.init.dimension,
      maxPayloadBytes: parts.init.maxPayloadBytes,
      currentRound: parts.init.round ?? 0,
      roundWindowAhead: parts.init.roundWindowAhead,
      membership: parts.init.membership,
    }
  }

  get round(): number {
    return this.#ctx.currentRound
  }

  /** Subscribes to the topics of `kinds` and the membership topic, each behind its validator. */
  start(kinds: readonly VectorKind[]): void {
    const pubsub = this.#libp2p.services.pubsub
    for (const kind of kinds) {
      const topic = topicOf(this.#topics, kind)
      pubsub.topicValidators.set(topic, (peer, message) => this.#validate(kind, message, peer.toString()))
      pubsub.subscribe(topic)
    }
    pubsub.topicValidators.set(this.#topics.membership, (peer, message) =>
      this.#validateMember(message, peer.toString()),
    )
    pubsub.subscribe(this.#topics.membership)
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
    // A payload stream dies with its connection; drop it so the next fetch opens a new one.
    this.#libp2p.addEventListener('peer:disconnect', (event) => this.#fetcher.forget(event.detail))
  }

  stop(): Promise<void> {
    return this.#fetcher.close()
  }

  /** Moves the round window to [round − 1, round + W] and forgets older rounds. */
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

  received(kind: VectorKind, round: number): readonly DeliveredVector[] {
    return this.#received.get(`${kind}/${round}`) ?? []
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

  /**
   * A signed message pulled from `peer` (its signature already verified) through the same
   * validate → fetch → deliver as gossip. True when it was delivered now.
   */
  async admitPulled(kind: VectorKind, message: Message, peer: PeerId): Promise<boolean> {
    if (this.#validate(kind, message, peer.toString()) !== TopicValidatorResult.Accept) return false
    const accepted = this.#accepted.get(message)!
    const outcome = await this.#payloadOf(accepted, peer)
    if (!outcome.fresh) return false
    if (!outcome.ok) {
      // As for gossip: bytes failing the hash were penalised by the fetch already.
      const { header } = accepted
      this.#reject(
        outcome.reason,
        outcome.detail,
        message.topic,
        header.sender,
        header.round,
        outcome.reason === 'non_finite' ? peer.toString() : undefined,
      )
      return false
    }
    this.#deliverAccepted(accepted, outcome.vector, message)
    return true
  }

  /** Hands a vector to the application (own ones included: a server counts itself in a quorum). */
  deliver(vector: DeliveredVector): void {
    const key = `${vector.kind}/${vector.round}`
    const list = this.#received.get(key)
    if (list === undefined) this.#received.set(key, [vector])
    else list.push(vector)
    if (!vector.self) this.#counters.messages_delivered_total++
    this.#events.emit('vector', vector)
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
    this.#counters.reject(reason)
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
    this.#events.emit('rejected', { reason, topic, from, round, detail })
  }

  /** `source`: the peer that handed the message over (gossip's propagation source, a sync peer). */
  #validate(kind: VectorKind, message: Message, source: string): TopicValidatorResult {
    this.#counters.messages_received_total++
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
        this.#counters.equivocations_total++
        this.#log.warn(
          { kind, round: verdict.equivocation.round, sender: verdict.equivocation.sender },
          'equivocation detected',
        )
        this.#events.emit('equivocation', verdict.equivocation)
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
    const pubsub = this.#libp2p.services.pubsub
    if (msg.topic === this.#topics.membership) {
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
      this.#events.emit('member', { peerId: hello.sender, role, multiaddrs, round: hello.round })
      this.#onMemberHeard(hello.sender, multiaddrs)
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

  /** The signed messages held for `kind` from `fromRound` on, one at a time, for a sync answer. */
  *held(kind: VectorKind, fromRound: number): Generator<RelayedFields> {
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
    const announcer = this.#libp2p
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
      this.#counters.payload_fetched_bytes_total += result.bytes.byteLength
      this.#counters.payload_fetched_plane_bytes_total[result.plane] += result.bytes.byteLength
      const fetchedAt = performance.now()
      const problem = checkReceived(header, result)
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
        return { ok: true, vector: result.vector, fresh }
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
    this.deliver({
      kind: accepted.kind,
      round: header.round,
      sender: header.sender,
      role: publisherRoleOf[accepted.kind],
      // Not a copy: the array received into (or a view of the inline payload), the same memory this
      // node serves and relays. Read-only for the application (`DeliveredVector`); nothing in
      // Phalanx writes into a delivered vector.
      vector,
      hash: accepted.hash,
      self: false,
    })
    const key = `${accepted.kind}/${header.round}`
    const list = this.#relayable.get(key)
    if (list === undefined) this.#relayable.set(key, [message])
    else list.push(message)
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
