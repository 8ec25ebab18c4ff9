/**
 * Invalid-message tally per peer, fed to gossipsub as the application-specific score: a peer
 * that keeps sending invalid data drops below gossipsub's thresholds and is ignored, then
 * recovers with the configured half-life once it stops.
 */
export class InvalidMessageScore {
  readonly #tallies = new Map<string, { count: number; at: number }>()

  constructor(
    readonly penaltyPerMessage: number,
    readonly halfLifeMs: number,
    readonly now: () => number = Date.now,
  ) {}

  #decayed(peer: string): number {
    const tally = this.#tallies.get(peer)
    if (tally === undefined) return 0
    return tally.count * 0.5 ** ((this.now() - tally.at) / this.halfLifeMs)
  }

  penalize(peer: string): void {
    this.#tallies.set(peer, { count: this.#decayed(peer) + 1, at: this.now() })
  }

  score(peer: string): number {
    const tally = this.#decayed(peer)
    return tally === 0 ? 0 : tally * this.penaltyPerMessage
  }
}
