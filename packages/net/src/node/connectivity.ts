import { KEEP_ALIVE, type PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import type { MutableNetCounters } from '../counters.js'
import type { Membership } from '../types.js'
import type { NetEventBus } from './events.js'
import type { ResolvedNetNodeInit } from './init.js'
import type { NetLibp2p } from './libp2p.js'

/** A libp2p tag starting with `keep-alive`: the reconnect queue redials peers that carry one. */
const memberKeepAliveTag = `${KEEP_ALIVE}-phalanx-member`

/**
 * The connection gater's verdict, for `buildLibp2p`. It exists before the node does, so it reads
 * the node's connectivity through `connectivity()`, undefined until the node is built.
 */
export function connectionGate(
  membership: Membership,
  counters: MutableNetCounters,
  connectivity: () => Connectivity | undefined,
): (peerId: PeerId, direction: 'inbound' | 'outbound') => boolean {
  // A closed set refuses every non-member. An open one (members learned at run time, from the
  // control plane) must let a peer in before it is known to be a member, but not a stranger
  // graylisted for what it sent: the heartbeat closed its connection, and this keeps it out.
  return (peerId, direction) => {
    const peer = peerId.toString()
    if (membership.has(peer)) return false
    if (!membership.closed && connectivity()?.isGraylisted(peer) !== true) return false
    counters.connections_refused_total++
    connectivity()?.refused(peer, direction)
    return true
  }
}

export interface ConnectivityParts {
  libp2p: NetLibp2p
  init: ResolvedNetNodeInit
  counters: MutableNetCounters
  events: NetEventBus
  log: Logger
}

/**
 * Who this node is connected to, and keeping it so: the bootstrap dials and their retries, the
 * redial of members heard but not connected, the dial of the bootstrap list when no connection
 * is left, keep-alive tags on members, hanging up on peers that left a closed member set or that
 * gossipsub graylisted, and the gater's refusals.
 */
export class Connectivity {
  readonly #libp2p: NetLibp2p
  readonly #init: ResolvedNetNodeInit
  readonly #membership: Membership
  readonly #counters: MutableNetCounters
  readonly #events: NetEventBus
  readonly #log: Logger
  #started = false
  /** Pending retries of refused bootstrap dials, cleared by stop(). */
  readonly #retries = new Set<ReturnType<typeof setTimeout>>()
  #unsubscribeMembership: (() => void) | undefined
  /** When each member was last redialled from its announcement (see `redialMember`). */
  readonly #redialedAt = new Map<string, number>()
  #watchdog: ReturnType<typeof setInterval> | undefined

  constructor(parts: ConnectivityParts) {
    this.#libp2p = parts.libp2p
    this.#init = parts.init
    this.#membership = parts.init.membership
    this.#counters = parts.counters
    this.#events = parts.events
    this.#log = parts.log
  }

  /** Tags members on connect and hangs up on peers the member set or gossipsub drops. */
  watch(): void {
    // libp2p redials a dropped peer only when it carries a keep-alive tag, and gossip reaches only
    // connected peers: without it a connection lost to a failed ping or a corrupted frame leaves
    // the two nodes deaf to each other for good.
    this.#libp2p.addEventListener('peer:connect', (event) => {
      const peer = event.detail
      if (!this.#membership.has(peer.toString())) return
      void this.#libp2p.peerStore
        .merge(peer, { tags: { [memberKeepAliveTag]: { value: 1 } } })
        .catch((error: unknown) =>
          this.#log.debug({ err: error, peer: peer.toString() }, 'keep-alive tag failed'),
        )
    })
    // Which encrypter each connection took (the dialer's preference, `connectionEncrypters`):
    // what an operator reads to see that a change of `encrypter` reached every pair.
    this.#libp2p.addEventListener('connection:open', (event) => {
      const connection = event.detail
      this.#log.info(
        {
          peer: connection.remotePeer.toString(),
          direction: connection.direction,
          encryption: connection.encryption,
        },
        'connection open',
      )
    })
    // A member removed from a closed set loses its connections, not just its future dials.
    this.#unsubscribeMembership = this.#membership.onChange(() => {
      if (!this.#membership.closed) return
      for (const peer of this.connectedPeers()) {
        if (!this.#membership.has(peer)) void this.hangUp(peer)
      }
    })
    // An open member set lets strangers connect (a worker admitted a moment ago may dial before
    // its admission reaches us), so a stranger that hands us invalid messages until gossipsub
    // graylists it is cut off here, once a heartbeat, and the gater keeps it out while its
    // score (which gossipsub retains after a disconnect) stays below the graylist threshold.
    // Members stay connected: graylisting already drops everything they send.
    this.#libp2p.services.pubsub.addEventListener('gossipsub:heartbeat', this.#dropGraylistedStrangers)
  }

  /** Dials the bootstrap list (resolves with the peers that answered) and keeps redialling. */
  async start(): Promise<void> {
    this.#started = true
    // libp2p's reconnect queue gives up on a peer after a few tries (~30 s): a node whose peers
    // were all down for longer (restarted one after another, partitioned, frozen) is left with no
    // connection, hears nothing, and nothing tells it to dial again. The chaos suite's long run
    // stalled every worker on that. So: no connection at all means the bootstrap list again.
    this.#watchdog = setInterval(() => {
      if (this.#libp2p.getConnections().length > 0 || this.#init.bootstrap.length === 0) return
      this.#log.warn(
        { bootstrap: this.#init.bootstrap.length },
        'no connection left: dialling the bootstrap list again',
      )
      for (const address of this.#init.bootstrap) void this.dial(address).catch(() => undefined)
    }, this.#init.memberRedialMs)
    this.#watchdog.unref()
    await Promise.all(this.#init.bootstrap.map((address) => this.#dialBootstrap(address)))
  }

  /** Stops watching and dialling (libp2p itself is stopped by the node). */
  stop(): void {
    this.#unsubscribeMembership?.()
    this.#libp2p.services.pubsub.removeEventListener('gossipsub:heartbeat', this.#dropGraylistedStrangers)
    this.#started = false
    clearInterval(this.#watchdog)
    for (const timer of this.#retries) clearTimeout(timer)
    this.#retries.clear()
  }

  async dial(address: string): Promise<void> {
    await this.#libp2p.dial(multiaddr(address))
  }

  /** Peers with at least one open connection. */
  connectedPeers(): string[] {
    return this.#libp2p.getPeers().map((peer) => peer.toString())
  }

  /**
   * Closes every connection to `peerId` and drops its keep-alive tag, so libp2p's reconnect queue
   * does not dial it straight back. Whether it may come back is the gater's call.
   */
  async hangUp(peerId: string): Promise<void> {
    const peer = peerIdFromString(peerId)
    // The tag first: the reconnect queue reads it when the last connection closes.
    await this.#libp2p.peerStore
      .merge(peer, { tags: { [memberKeepAliveTag]: undefined } })
      .catch(() => undefined)
    await Promise.all(
      this.#libp2p.getConnections(peer).map((connection) => connection.close().catch(() => undefined)),
    )
  }

  /**
   * Dials `peerId` at the addresses the peer store holds for it, unless a connection is open: a
   * peer that already dialled us needs no second connection (libp2p would prune one, and gossip in
   * flight on the pruned one is lost). Rejects when the dial fails.
   */
  async redial(peerId: string): Promise<void> {
    const peer = peerIdFromString(peerId)
    if (this.#libp2p.getConnections(peer).length > 0) return
    await this.#libp2p.dial(peer)
  }

  /** True for a peer gossipsub graylists (its RPCs are dropped unread) for what it handed us. */
  isGraylisted(peerId: string): boolean {
    return this.#libp2p.services.pubsub.getScore(peerId) < this.#init.graylistScoreThreshold
  }

  /** Called by the connection gater, which exists before the node object does. */
  refused(peerId: string, direction: 'inbound' | 'outbound'): void {
    this.#log.info({ peer: peerId, direction }, 'connection refused: not a member')
    this.#events.emit('refused', { peerId, direction })
  }

  /**
   * A member we hear announce itself (relayed by others) but hold no connection to: dial it at the
   * addresses it announced, at most once per `memberRedialMs`. Gossip and pulls reach connected
   * peers only, and libp2p stops redialling a peer that was down for more than ~30 s, so without
   * this two members that each lost the other (a restart, a partition) may never meet again.
   */
  redialMember(peerId: string, announced: readonly string[]): void {
    if (!this.#started || peerId === this.#libp2p.peerId.toString() || !this.#membership.has(peerId)) return
    if (this.#libp2p.getConnections().some((c) => c.remotePeer.toString() === peerId)) return
    const now = Date.now()
    if (now - (this.#redialedAt.get(peerId) ?? 0) < this.#init.memberRedialMs) return
    // Members only enter; this drops the ones evicted since and the ones past their wait.
    if (this.#redialedAt.size >= this.#membership.count()) {
      for (const [peer, at] of this.#redialedAt) {
        if (now - at >= this.#init.memberRedialMs || !this.#membership.has(peer))
          this.#redialedAt.delete(peer)
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
    this.#libp2p.dial(addresses).then(
      () => this.#log.info({ member: peerId }, 'redialled a member heard but not connected'),
      (error: unknown) => this.#log.debug({ member: peerId, err: error }, 'member redial failed'),
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

  readonly #dropGraylistedStrangers = (): void => {
    for (const connection of this.#libp2p.getConnections()) {
      const peer = connection.remotePeer.toString()
      if (this.#membership.has(peer) || !this.isGraylisted(peer)) continue
      this.#counters.peers_disconnected_total++
      this.#log.warn({ peer }, 'disconnected a non-member graylisted for invalid messages')
      this.#events.emit('refused', { peerId: peer, direction: 'disconnected' })
      void connection.close().catch(() => undefined)
    }
  }
}
