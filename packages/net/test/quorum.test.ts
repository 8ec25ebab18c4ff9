import { describe, expect, it } from 'vitest'
import {
  collectQuorum,
  type DeliveredVector,
  type EquivocationEvidence,
  type QuorumSource,
  type VectorKind,
} from '../src/index.js'

/** An in-memory source whose arrivals the test drives by hand. */
class FakeSource implements QuorumSource {
  readonly stored: DeliveredVector[] = []
  readonly equivocators = new Set<string>()
  readonly #vectorListeners = new Set<(v: DeliveredVector) => void>()
  readonly #equivocationListeners = new Set<(e: EquivocationEvidence) => void>()

  received(kind: VectorKind, round: number): readonly DeliveredVector[] {
    return this.stored.filter((v) => v.kind === kind && v.round === round)
  }
  onVector(listener: (v: DeliveredVector) => void): () => void {
    this.#vectorListeners.add(listener)
    return () => this.#vectorListeners.delete(listener)
  }
  onEquivocation(listener: (e: EquivocationEvidence) => void): () => void {
    this.#equivocationListeners.add(listener)
    return () => this.#equivocationListeners.delete(listener)
  }
  isEquivocator(_kind: VectorKind, _round: number, sender: string): boolean {
    return this.equivocators.has(sender)
  }
  arrive(sender: string, round = 3, kind: VectorKind = 'gradient'): void {
    const v: DeliveredVector = {
      kind,
      round,
      sender,
      role: 'worker',
      vector: new Float32Array(1),
      hash: sender,
      self: false,
    }
    this.stored.push(v)
    for (const l of this.#vectorListeners) l(v)
  }
  equivocate(sender: string, round = 3): void {
    this.equivocators.add(sender)
    const signed = {
      topic: 't',
      from: sender,
      data: new Uint8Array(),
      sequenceNumber: 1n,
      signature: undefined,
      hash: 'h',
    }
    for (const l of this.#equivocationListeners)
      l({ kind: 'gradient', round, sender, first: signed, second: signed })
  }
  get listeners(): number {
    return this.#vectorListeners.size + this.#equivocationListeners.size
  }
}

const senders = (vs: DeliveredVector[]) => vs.map((v) => v.sender)

describe('collectQuorum', () => {
  it('returns already-received vectors without waiting', async () => {
    const source = new FakeSource()
    for (const s of ['a', 'b', 'c']) source.arrive(s)
    expect(senders(await collectQuorum(source, 'gradient', 3, { quorum: 2, timeoutMs: 10 }))).toEqual([
      'a',
      'b',
    ])
  })

  it('waits for the first q distinct senders of the round, ignoring other rounds, kinds and repeats', async () => {
    const source = new FakeSource()
    source.arrive('a')
    const pending = collectQuorum(source, 'gradient', 3, { quorum: 3, timeoutMs: 10_000 })
    source.arrive('a') // same sender again
    source.arrive('x', 4) // other round
    source.arrive('y', 3, 'model') // other kind
    source.arrive('b')
    source.arrive('c')
    source.arrive('d')
    expect(senders(await pending)).toEqual(['a', 'b', 'c'])
    expect(source.listeners).toBe(0)
  })

  it('drops a sender caught equivocating after it was counted', async () => {
    const source = new FakeSource()
    const pending = collectQuorum(source, 'gradient', 3, { quorum: 2, timeoutMs: 10_000 })
    source.arrive('a')
    source.equivocate('a')
    source.arrive('a')
    source.arrive('b')
    source.arrive('c')
    expect(senders(await pending)).toEqual(['b', 'c'])
  })

  it('fails with QuorumTimeoutError naming who arrived', async () => {
    const source = new FakeSource()
    source.arrive('a')
    source.arrive('b')
    const error = await collectQuorum(source, 'gradient', 3, { quorum: 4, timeoutMs: 5 }).catch(
      (e: unknown) => e,
    )
    expect((error as Error).name).toBe('QuorumTimeoutError')
    expect(error).toMatchObject({ required: 4, arrived: 2, senders: ['a', 'b'], round: 3, kind: 'gradient' })
    expect((error as Error).message).toContain('from a, b')
    expect(source.listeners).toBe(0)
  })

  it('fails with QuorumAbortedError when the signal fires, and when it already had', async () => {
    const source = new FakeSource()
    const controller = new AbortController()
    const pending = collectQuorum(source, 'gradient', 3, {
      quorum: 2,
      timeoutMs: 10_000,
      signal: controller.signal,
    })
    source.arrive('a')
    controller.abort(new Error('shutdown'))
    const error = await pending.catch((e: unknown) => e)
    expect(error).toMatchObject({ name: 'QuorumAbortedError', arrived: 1, senders: ['a'] })
    expect(((error as Error).cause as Error).message).toBe('shutdown')
    const again = await collectQuorum(source, 'gradient', 3, {
      quorum: 2,
      timeoutMs: 10_000,
      signal: controller.signal,
    }).catch((e: unknown) => e)
    expect((again as Error).name).toBe('QuorumAbortedError')
    expect(source.listeners).toBe(0)
  })

  it.each([0, -1, 1.5])('rejects quorum %s with InvalidQuorumError', async (quorum) => {
    const error = await collectQuorum(new FakeSource(), 'gradient', 0, { quorum, timeoutMs: 1 }).catch(
      (e: unknown) => e,
    )
    expect((error as Error).name).toBe('InvalidQuorumError')
  })
})
