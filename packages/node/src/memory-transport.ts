/**
 * An in-process `RoundTransport`: every member of one `MemoryBus` sees every other's
 * vectors. It exists so the protocol can be unit-tested and simulated without a network;
 * real runs use `@phalanx/net`. It applies the same acceptance rules as the real data plane
 * where they concern the protocol: one vector per sender, kind and round (a second,
 * different one is equivocation and drops the sender for that round), dimension and
 * finiteness, counted under the net node's reason names. It has no round window: every round
 * stays accepted (the protocol tests run whole clusters in step, and nothing here is bounded
 * by a network's memory). `test/transport-contract.ts` holds what it shares with the net adapter.
 */
import { DimensionMismatchError } from '@phalanx/errors'
import type { RejectReason } from '@phalanx/net'
import {
  type CollectOptions,
  QuorumTimeoutError,
  type RoundTransport,
  type RoundVector,
  type VectorKind,
} from './transport.js'

interface Waiter {
  kind: VectorKind
  round: number | 'newest'
  quorum: number
  wake(): void
}

export class MemoryBus {
  readonly dimension: number
  private readonly store = new Map<string, Map<string, Float32Array>>()
  private readonly equivocators = new Set<string>()
  private readonly waiters = new Set<Waiter>()
  private readonly rejections = new Map<RejectReason, number>()
  private readonly members: string[] = []

  constructor(dimension: number) {
    this.dimension = dimension
  }

  /** A transport for member `id`. */
  join(id: string): RoundTransport {
    this.members.push(id)
    return {
      selfId: id,
      publish: async (kind, round, vector) => {
        this.own(vector)
        this.deliver(id, kind, round, vector)
      },
      publishPerReceiver: async (kind, round, pick) => {
        // Receivers here share one store, so equivocation shows up as two vectors from one sender.
        const versions = this.members.map((receiver, index) => pick(receiver, index))
        for (const vector of versions) this.own(vector)
        for (const vector of versions) this.deliver(id, kind, round, vector)
      },
      collect: (kind, round, options) => this.collect(kind, round, options),
      newest: (kind, options) => this.newest(kind, options),
      ahead: (kind, round, quorum) => {
        const found = this.newestComplete(kind, quorum)
        return found !== undefined && found.round > round ? found : undefined
      },
      setRound: () => {},
      rejected: () => Object.fromEntries(this.rejections),
    }
  }

  private key(kind: VectorKind, round: number): string {
    return `${kind}/${round}`
  }

  /** A member's own vector of another dimension is its caller's mistake: refused as the net node refuses it. */
  private own(vector: Float32Array): void {
    if (vector.length !== this.dimension) {
      throw new DimensionMismatchError({ source: 'publish', expected: this.dimension, actual: vector.length })
    }
  }

  private deliver(sender: string, kind: VectorKind, round: number, vector: Float32Array): void {
    const reason = this.admit(sender, kind, round, vector)
    if (reason !== undefined) this.rejections.set(reason, (this.rejections.get(reason) ?? 0) + 1)
  }

  /** Stores the vector, or returns why it was refused. */
  private admit(
    sender: string,
    kind: VectorKind,
    round: number,
    vector: Float32Array,
  ): RejectReason | undefined {
    if (vector.length !== this.dimension) return 'wrong_dimension'
    if (!vector.every(Number.isFinite)) return 'non_finite'
    const key = this.key(kind, round)
    if (this.equivocators.has(`${key}/${sender}`)) return 'equivocation'
    const byRound = this.store.get(key) ?? new Map<string, Float32Array>()
    this.store.set(key, byRound)
    const previous = byRound.get(sender)
    if (previous !== undefined) {
      if (previous.every((value, i) => value === vector[i])) return 'duplicate'
      byRound.delete(sender)
      this.equivocators.add(`${key}/${sender}`)
      return 'equivocation'
    }
    byRound.set(sender, vector.slice())
    for (const waiter of this.waiters) if (waiter.kind === kind) waiter.wake()
    return undefined
  }

  private vectors(kind: VectorKind, round: number): RoundVector[] {
    const byRound = this.store.get(this.key(kind, round))
    if (byRound === undefined) return []
    return [...byRound].map(([sender, vector]) => ({ sender, round, vector: vector.slice() }))
  }

  private newestComplete(
    kind: VectorKind,
    quorum: number,
  ): { round: number; vectors: RoundVector[] } | undefined {
    let best: number | undefined
    for (const [key, byRound] of this.store) {
      const [storedKind, roundText] = key.split('/')
      const round = Number(roundText)
      if (storedKind === kind && byRound.size >= quorum && (best === undefined || round > best)) best = round
    }
    return best === undefined
      ? undefined
      : { round: best, vectors: this.vectors(kind, best).slice(0, quorum) }
  }

  private wait<T>(
    waiter: Omit<Waiter, 'wake'>,
    ready: () => T | undefined,
    options: CollectOptions,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const done = ready()
      if (done !== undefined) return resolve(done)
      // An already aborted signal fires no 'abort' event: without this the wait ran to its timeout.
      if (options.signal?.aborted) return reject(options.signal.reason)
      const entry: Waiter = {
        ...waiter,
        wake: () => {
          const value = ready()
          if (value === undefined) return
          cleanup()
          resolve(value)
        },
      }
      const onAbort = () => {
        cleanup()
        reject(options.signal?.reason)
      }
      const timer = setTimeout(() => {
        cleanup()
        const { kind, quorum } = waiter
        const { timeoutMs } = options
        if (waiter.round !== 'newest') {
          const senders = this.vectors(kind, waiter.round).map((v) => v.sender)
          reject(new QuorumTimeoutError({ kind, round: waiter.round, quorum, senders, timeoutMs }))
          return
        }
        const perRound: Record<string, number> = {}
        const senders = new Set<string>()
        for (const [key, byRound] of this.store) {
          const [storedKind, round] = key.split('/')
          if (storedKind !== kind) continue
          perRound[round!] = byRound.size
          for (const sender of byRound.keys()) senders.add(sender)
        }
        reject(new QuorumTimeoutError({ kind, quorum, senders: [...senders], perRound, timeoutMs }))
      }, options.timeoutMs)
      const cleanup = () => {
        clearTimeout(timer)
        this.waiters.delete(entry)
        options.signal?.removeEventListener('abort', onAbort)
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.add(entry)
    })
  }

  private collect(kind: VectorKind, round: number, options: CollectOptions): Promise<RoundVector[]> {
    return this.wait(
      { kind, round, quorum: options.quorum },
      () => {
        const vectors = this.vectors(kind, round)
        return vectors.length >= options.quorum ? vectors.slice(0, options.quorum) : undefined
      },
      options,
    )
  }

  private newest(
    kind: VectorKind,
    options: CollectOptions,
  ): Promise<{ round: number; vectors: RoundVector[] }> {
    return this.wait(
      { kind, round: 'newest', quorum: options.quorum },
      () => this.newestComplete(kind, options.quorum),
      options,
    )
  }
}
