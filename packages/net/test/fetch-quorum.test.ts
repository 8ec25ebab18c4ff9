/**
 * The stop-fetching bookkeeping (`fetch-quorum.ts`): once a node holds the quorum of a kind and
 * round it uses, no new fetch starts and those in flight are cancelled; an equivocation that
 * leaves the round short hands the skipped offers back; and a skipped announcement stays what the
 * ledger made it (pending, fetchable by a later offer), so a second hash from its signer is still
 * equivocation.
 */
import { describe, expect, it } from 'vitest'
import { FetchQuorum, type FetchQuorums, type HeldSource } from '../src/fetch-quorum.js'
import { type DeliveredVector, RoundLedger, type VectorKind, validateVectorMessage } from '../src/index.js'
import { context, header, incoming, server, vector } from './helpers.js'

/** A node's deliveries and equivocators, set by hand. */
function source(): HeldSource & {
  deliver(kind: VectorKind, round: number, sender: string): void
  equivocated: Set<string>
} {
  const received = new Map<string, DeliveredVector[]>()
  const equivocated = new Set<string>()
  return {
    equivocated,
    deliver(kind, round, sender) {
      const key = `${kind}/${round}`
      const vectorOf: DeliveredVector = {
        kind,
        round,
        sender,
        role: kind === 'model' ? 'server' : 'worker',
        vector: new Float32Array(1),
        hash: sender,
        self: false,
      }
      received.set(key, [...(received.get(key) ?? []), vectorOf])
    },
    received: (kind, round) => received.get(`${kind}/${round}`) ?? [],
    isEquivocator: (kind, round, sender) => equivocated.has(`${kind}/${round}/${sender}`),
  }
}

describe('FetchQuorum: which payloads are still fetched', () => {
  it.each<{
    name: string
    quorums: FetchQuorums
    delivered: Array<[VectorKind, number, string]>
    equivocators?: string[]
    ask: [VectorKind, number]
    needs: boolean
  }>([
    { name: 'nothing held yet', quorums: { model: 3 }, delivered: [], ask: ['model', 5], needs: true },
    {
      name: 'one short of the quorum',
      quorums: { model: 3 },
      delivered: [
        ['model', 5, 'a'],
        ['model', 5, 'b'],
      ],
      ask: ['model', 5],
      needs: true,
    },
    {
      name: 'quorum held: no new fetch',
      quorums: { model: 3 },
      delivered: [
        ['model', 5, 'a'],
        ['model', 5, 'b'],
        ['model', 5, 'c'],
      ],
      ask: ['model', 5],
      needs: false,
    },
    {
      name: 'a sender twice counts once',
      quorums: { model: 3 },
      delivered: [
        ['model', 5, 'a'],
        ['model', 5, 'a'],
        ['model', 5, 'b'],
      ],
      ask: ['model', 5],
      needs: true,
    },
    {
      name: 'an equivocator does not count',
      quorums: { model: 3 },
      delivered: [
        ['model', 5, 'a'],
        ['model', 5, 'b'],
        ['model', 5, 'c'],
      ],
      equivocators: ['model/5/c'],
      ask: ['model', 5],
      needs: true,
    },
    {
      name: 'another round held is not this one',
      quorums: { model: 2 },
      delivered: [
        ['model', 4, 'a'],
        ['model', 4, 'b'],
      ],
      ask: ['model', 5],
      needs: true,
    },
    {
      name: 'a kind without a quorum is fetched in full',
      quorums: { model: 1 },
      delivered: [
        ['gradient', 5, 'a'],
        ['gradient', 5, 'b'],
      ],
      ask: ['gradient', 5],
      needs: true,
    },
    {
      name: 'no quorums at all (the default)',
      quorums: {},
      delivered: [['model', 5, 'a']],
      ask: ['model', 5],
      needs: true,
    },
  ])('$name → needs = $needs', ({ quorums, delivered, equivocators, ask, needs }) => {
    const held = source()
    for (const [kind, round, sender] of delivered) held.deliver(kind, round, sender)
    for (const key of equivocators ?? []) held.equivocated.add(key)
    expect(new FetchQuorum(quorums, held).needs(...ask)).toBe(needs)
  })

  it('cancels the fetches in flight of a round once its quorum is held, and only those', () => {
    const held = source()
    const fetches = new FetchQuorum<string>({ model: 2 }, held)
    const c = fetches.track('model', 5, 'c')
    const d = fetches.track('model', 5, 'd')
    const nextRound = fetches.track('model', 6, 'c')
    const gradient = fetches.track('gradient', 5, 'w')
    d.done() // ended before the quorum: nothing left to cancel
    held.deliver('model', 5, 'a')
    fetches.onDelivered('model', 5)
    expect(c.signal.aborted).toBe(false) // one held, quorum 2
    held.deliver('model', 5, 'b')
    fetches.onDelivered('model', 5)
    expect(c.signal.aborted).toBe(true)
    expect(d.signal.aborted).toBe(false)
    expect(nextRound.signal.aborted).toBe(false)
    expect(gradient.signal.aborted).toBe(false)
    // A kind without a quorum is never cancelled, whatever arrives.
    for (const sender of ['w1', 'w2', 'w3']) held.deliver('gradient', 5, sender)
    fetches.onDelivered('gradient', 5)
    expect(gradient.signal.aborted).toBe(false)
  })

  it.each<{
    name: string
    delivered: string[]
    skipped: string[]
    equivocator: string
    handedBack: string[]
  }>([
    {
      name: 'a held sender equivocates: the round is short, the skipped offer is fetched',
      delivered: ['a', 'b', 'c'],
      skipped: ['d'],
      equivocator: 'a',
      handedBack: ['d'],
    },
    {
      name: 'the equivocator is the skipped one: the quorum still holds, nothing to fetch',
      delivered: ['a', 'b', 'c'],
      skipped: ['d'],
      equivocator: 'd',
      handedBack: [],
    },
    {
      name: "the equivocator's own skipped offer is not handed back",
      delivered: ['a', 'b', 'c'],
      skipped: ['a', 'd'],
      equivocator: 'a',
      handedBack: ['d'],
    },
  ])('$name', ({ delivered, skipped, equivocator, handedBack }) => {
    const held = source()
    const fetches = new FetchQuorum<string>({ model: 3 }, held)
    for (const sender of delivered) held.deliver('model', 5, sender)
    for (const sender of skipped) expect(fetches.skip('model', 5, sender, `offer-${sender}`)).toBe(true)
    held.equivocated.add(`model/5/${equivocator}`)
    expect(fetches.onEquivocation('model', 5)).toEqual(handedBack.map((sender) => `offer-${sender}`))
  })

  it('keeps one skipped offer per sender, hands them back once, and forgets rounds the window left', () => {
    const held = source()
    const fetches = new FetchQuorum<string>({ model: 1 }, held)
    expect(fetches.skip('model', 5, 'd', 'first')).toBe(true)
    expect(fetches.skip('model', 5, 'd', 'again')).toBe(false)
    expect(fetches.skip('model', 4, 'd', 'older')).toBe(true)
    expect(fetches.skippedOf('model', 5)).toEqual(['d'])
    expect(fetches.onEquivocation('model', 5)).toEqual(['first']) // nothing held: short of 1
    expect(fetches.onEquivocation('model', 5)).toEqual([])
    fetches.prune(5)
    expect(fetches.skippedOf('model', 4)).toEqual([])
  })
})

describe('a skipped announcement in the ledger', () => {
  const ctx = context({ maxPayloadBytes: 1 << 20 })
  // An announcement: hash and size, no payload bytes.
  const announced = (base: number) => {
    const full = header({}, vector(base))
    return incoming({ ...full, payload: new Uint8Array(0) })
  }

  it('stays pending and fetchable, and a second hash from its signer is still equivocation', () => {
    const ledger = new RoundLedger()
    const first = validateVectorMessage(announced(1), 'model', ctx, ledger)
    expect(first).toMatchObject({ ok: true, vector: undefined })
    // Not fetched (the quorum was held): nothing is committed, so a later offer of the same hash
    // (a republish, a pull) is another chance to fetch it, not a duplicate.
    expect(ledger.isPending('model', 10, server)).toBe(true)
    expect(validateVectorMessage(announced(1), 'model', ctx, ledger)).toMatchObject({ ok: true, again: true })
    const second = validateVectorMessage(announced(2), 'model', ctx, ledger)
    expect(second).toMatchObject({ ok: false, reason: 'equivocation' })
    expect(second.ok === false && second.equivocation?.sender).toBe(server)
    expect(ledger.isEquivocator('model', 10, server)).toBe(true)
    expect(ledger.evidence()).toHaveLength(1)
  })
})
