/**
 * What one peer may take from the streams this node serves (payload and sync): a number of
 * streams open at a time, bytes per second (a token bucket), and how long a stream may sit idle.
 * Every refusal is counted by the caller (`streams_refused_total`); the maps here hold connected
 * peers only and are bounded.
 */
import { StreamIdleError } from './errors.js'

/** Why a served stream was cut short or a request refused. */
export const streamRefusals = ['concurrent', 'rate', 'idle'] as const
export type StreamRefusal = (typeof streamRefusals)[number]

/** Inbound served streams per peer, at most `maxPerPeer` at a time. */
export class StreamSlots {
  readonly #open = new Map<string, number>()

  constructor(readonly maxPerPeer: number) {}

  /** A release function, or undefined when the peer holds its limit already. */
  acquire(peer: string): (() => void) | undefined {
    const open = this.#open.get(peer) ?? 0
    if (open >= this.maxPerPeer) return undefined
    this.#open.set(peer, open + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (this.#open.get(peer) ?? 1) - 1
      // Peers with nothing open leave the map: it holds peers with a stream open, no more.
      if (left <= 0) this.#open.delete(peer)
      else this.#open.set(peer, left)
    }
  }

  open(peer: string): number {
    return this.#open.get(peer) ?? 0
  }

  get peers(): number {
    return this.#open.size
  }
}

interface Bucket {
  tokens: number
  at: number
}

/**
 * Bytes served per peer per second. A request passes when the peer's bucket holds its size, or
 * (larger than the burst) when the bucket is full, which it leaves in debt: one payload of any
 * size passes at a full bucket, and a peer asking for more than `ratePerSecond` sustained is
 * refused until it refills. At most `maxPeers` buckets: full ones (idle peers) go first, then the oldest.
 */
export class ByteBuckets {
  readonly #buckets = new Map<string, Bucket>()

  constructor(
    readonly ratePerSecond: number,
    readonly burstBytes: number,
    readonly maxPeers: number,
    readonly now: () => number = Date.now,
  ) {}

  /** True (and the bytes taken) when `peer` may be served `bytes` now. */
  take(peer: string, bytes: number): boolean {
    const now = this.now()
    let bucket = this.#buckets.get(peer)
    if (bucket === undefined) {
      this.#evict(now)
      bucket = { tokens: this.burstBytes, at: now }
      this.#buckets.set(peer, bucket)
    } else {
      bucket.tokens = Math.min(
        this.burstBytes,
        bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond,
      )
      bucket.at = now
    }
    // A request larger than the burst passes at a full bucket and leaves it in debt.
    if (bucket.tokens < Math.min(bytes, this.burstBytes)) return false
    bucket.tokens -= bytes
    return true
  }

  get peers(): number {
    return this.#buckets.size
  }

  #evict(now: number): void {
    if (this.#buckets.size < this.maxPeers) return
    for (const [peer, bucket] of this.#buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.ratePerSecond >= this.burstBytes)
        this.#buckets.delete(peer)
    }
    // Map order is insertion order: the oldest first.
    for (const peer of this.#buckets.keys()) {
      if (this.#buckets.size < this.maxPeers) break
      this.#buckets.delete(peer)
    }
  }
}

/**
 * An abort signal that fires when `reset` has not been called for `ms`: a served stream on which
 * nothing moved for that long. `fired` tells an idle timeout from other failures.
 */
export class IdleTimer {
  readonly #controller = new AbortController()
  #timer: ReturnType<typeof setTimeout> | undefined
  fired = false

  constructor(readonly ms: number) {
    this.reset()
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  reset(): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.fired = true
      this.#controller.abort(new StreamIdleError(this.ms))
    }, this.ms)
    this.#timer.unref?.()
  }

  clear(): void {
    clearTimeout(this.#timer)
  }
}
