/**
 * Which announced payloads a node still fetches. A node that uses only the first `quorum`
 * vectors of a kind and round (a worker takes the median of the first N−F models) needs no
 * payload past them: once it holds that many valid ones from distinct senders it starts no new
 * fetch for the round and cancels those in flight. Validation is untouched: every announcement
 * still goes through the pipeline and the ledger, so two hashes from one signer are still caught,
 * and a skipped announcement stays pending there, fetchable by a later offer (a republish, a
 * pull). When an equivocation drops a held sender below the quorum again, the offers skipped for
 * the round are handed back to be fetched at once, so the round does not wait for a pull.
 *
 * Pure bookkeeping over what the node delivered (`received`, `isEquivocator`): no I/O, so the
 * inbox's decisions can be tested without a network.
 */
import type { DeliveredVector, VectorKind } from './types.js'

/** What the bookkeeping reads of the node: what it delivered, and who equivocated. */
export interface HeldSource {
  received(kind: VectorKind, round: number): readonly DeliveredVector[]
  isEquivocator(kind: VectorKind, round: number, sender: string): boolean
}

/** Per kind, how many vectors of a round the node uses; a kind left out is fetched in full. */
export type FetchQuorums = Readonly<Partial<Record<VectorKind, number>>>

/**
 * Skipped offers (`T`: what it takes to fetch one later) and cancellable fetches in flight, per
 * kind and round. Bounded like the ledger: one entry per (kind, round, sender), dropped by `prune`.
 */
export class FetchQuorum<T> {
  readonly #quorums: FetchQuorums
  readonly #source: HeldSource
  /** `kind/round` → sender → the offer not fetched. */
  readonly #skipped = new Map<string, Map<string, T>>()
  /** `kind/round` → sender → the controller of its fetch in flight. */
  readonly #inFlight = new Map<string, Map<string, AbortController>>()

  constructor(quorums: FetchQuorums, source: HeldSource) {
    this.#quorums = quorums
    this.#source = source
  }

  /** Distinct senders of `kind`'s `round` delivered and not caught equivocating. */
  held(kind: VectorKind, round: number): number {
    const senders = new Set<string>()
    for (const vector of this.#source.received(kind, round)) {
      if (!this.#source.isEquivocator(kind, round, vector.sender)) senders.add(vector.sender)
    }
    return senders.size
  }

  /** False once the round's quorum is held: a further payload of it would not be used. */
  needs(kind: VectorKind, round: number): boolean {
    const quorum = this.#quorums[kind]
    return quorum === undefined || this.held(kind, round) < quorum
  }

  /**
   * Records an offer not fetched, to be handed back by `onEquivocation` (the first one per sender:
   * false for a sender already recorded).
   */
  skip(kind: VectorKind, round: number, sender: string, offer: T): boolean {
    const key = `${kind}/${round}`
    let bySender = this.#skipped.get(key)
    if (bySender === undefined) {
      bySender = new Map()
      this.#skipped.set(key, bySender)
    }
    if (bySender.has(sender)) return false
    bySender.set(sender, offer)
    return true
  }

  /** Skipped offers held for `kind`'s `round` (for tests and logs). */
  skippedOf(kind: VectorKind, round: number): readonly string[] {
    return [...(this.#skipped.get(`${kind}/${round}`)?.keys() ?? [])]
  }

  /**
   * A fetch starts: its signal aborts when the round's quorum is reached while it runs. Call the
   * returned function when it ends.
   */
  track(kind: VectorKind, round: number, sender: string): { signal: AbortSignal; done(): void } {
    const key = `${kind}/${round}`
    const controller = new AbortController()
    if (this.#quorums[kind] === undefined) return { signal: controller.signal, done: () => {} }
    let bySender = this.#inFlight.get(key)
    if (bySender === undefined) {
      bySender = new Map()
      this.#inFlight.set(key, bySender)
    }
    bySender.set(sender, controller)
    const running = bySender
    return {
      signal: controller.signal,
      done: () => {
        if (running.get(sender) === controller) running.delete(sender)
        if (running.size === 0 && this.#inFlight.get(key) === running) this.#inFlight.delete(key)
      },
    }
  }

  /** A vector of `kind`'s `round` was delivered: once the quorum is held, cancels the fetches left. */
  onDelivered(kind: VectorKind, round: number): void {
    if (this.needs(kind, round)) return
    const running = this.#inFlight.get(`${kind}/${round}`)
    if (running === undefined) return
    for (const controller of running.values()) controller.abort(new Error('quorum held'))
  }

  /**
   * A sender of `kind`'s `round` was caught equivocating: when the round drops below its quorum,
   * the offers skipped for it (equivocators' left out) are taken back, to be fetched now.
   */
  onEquivocation(kind: VectorKind, round: number): T[] {
    if (!this.needs(kind, round)) return []
    const key = `${kind}/${round}`
    const bySender = this.#skipped.get(key)
    if (bySender === undefined) return []
    this.#skipped.delete(key)
    return [...bySender]
      .filter(([sender]) => !this.#source.isEquivocator(kind, round, sender))
      .map(([, offer]) => offer)
  }

  /** Forgets rounds below `oldestRound` (the window left them; their messages are refused as stale). */
  prune(oldestRound: number): void {
    for (const map of [this.#skipped, this.#inFlight]) {
      for (const key of map.keys()) if (Number(key.split('/')[1]) < oldestRound) map.delete(key)
    }
  }
}
