/**
 * Invalid-message tally per peer, fed to gossipsub as the application-specific score: a peer
 * that keeps handing us invalid data drops below gossipsub's thresholds and is ignored, then
 * recovers with the configured half-life once it stops.
 *
 * The peer penalised is the one that handed the message over (gossipsub's propagation source,
 * the peer a payload or sync answer came from), not the key that signed it: a relay forwarding
 * messages under fresh throw-away keys is the one to silence, and keying by signer would let
 * anyone grow this map one key at a time. It holds at most `maxPeers` tallies; past that, tallies
 * that decayed to nothing go first, then the smallest.
 */
export class InvalidMessageScore {
  readonly #tallies = new Map<string, { count: number; at: number }>()

  constructor(
    readonly penaltyPerMessage: number,
    readonly halfLifeMs: number,
    readonly now: () => number = Date.now,
    readonly maxPeers: number = Number.POSITIVE_INFINITY,
  ) {}

  #decayed(peer: string, now: number): number {
    const tally = this.#tallies.get(peer)
    if (tally === undefined) return 0
    return tally.count * 0.5 ** ((now - tally.at) / this.halfLifeMs)
  }

  penalize(peer: string): void {
    const now = this.now()
    if (!this.#tallies.has(peer) && this.#tallies.size >= this.maxPeers) this.#evict(now)
    this.#tallies.set(peer, { count: this.#decayed(peer, now) + 1, at: now })
  }

  score(peer: string): number {
    const tally = this.#decayed(peer, this.now())
    return tally === 0 ? 0 : tally * this.penaltyPerMessage
  }

  /** Peers with a tally (for the bound's test). */
  get size(): number {
    return this.#tallies.size
  }

  /** Runs only when a new peer meets a full map: one pass over at most `maxPeers` tallies. */
  #evict(now: number): void {
    let smallest: string | undefined
    let smallestCount = Number.POSITIVE_INFINITY
    for (const peer of this.#tallies.keys()) {
      const count = this.#decayed(peer, now)
      // Below a hundredth of one message the penalty no longer moves any threshold.
      if (count < 0.01) this.#tallies.delete(peer)
      else if (count < smallestCount) {
        smallest = peer
        smallestCount = count
      }
    }
    if (this.#tallies.size >= this.maxPeers && smallest !== undefined) this.#tallies.delete(smallest)
  }
}
