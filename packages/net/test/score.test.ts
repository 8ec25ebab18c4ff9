import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { InvalidMessageScore, isRelayFault, isSignerFault, type RejectReason } from '../src/index.js'

describe('InvalidMessageScore', () => {
  it('adds the penalty per invalid message and halves it every half-life', () => {
    let now = 0
    const score = new InvalidMessageScore(-10, 1000, () => now)
    expect(score.score('p')).toBe(0)
    score.penalize('p')
    score.penalize('p')
    expect(score.score('p')).toBe(-20)
    now = 1000
    expect(score.score('p')).toBe(-10)
    score.penalize('p')
    expect(score.score('p')).toBe(-20)
    expect(score.score('q')).toBe(0)
  })

  it('holds at most maxPeers tallies, dropping decayed ones first, then the smallest', () => {
    let now = 0
    const score = new InvalidMessageScore(-10, 1000, () => now, 3)
    for (const peer of ['a', 'a', 'a', 'b', 'b', 'c']) score.penalize(peer)
    score.penalize('d') // full: c (one message) goes
    expect(['a', 'b', 'c', 'd'].map((p) => score.score(p))).toEqual([-30, -20, 0, -10])
    now = 20_000 // every tally decayed below a hundredth of a message
    score.penalize('e')
    expect(score.size).toBe(1)
  })

  it('stays bounded however many fresh peers are penalised', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.string({ maxLength: 6 }), fc.nat({ max: 5000 })), { maxLength: 300 }),
        fc.integer({ min: 1, max: 20 }),
        (events, maxPeers) => {
          let now = 0
          const score = new InvalidMessageScore(-10, 1000, () => now, maxPeers)
          for (const [peer, step] of events) {
            now += step
            score.penalize(peer)
            expect(score.size).toBeLessThanOrEqual(maxPeers)
            // The peer just penalised is always held.
            expect(score.score(peer)).toBeLessThan(0)
          }
        },
      ),
    )
  })
})

describe('isSignerFault', () => {
  it.each([
    ['non_finite', true],
    ['forged_sender', true],
    ['equivocation', true],
    ['unknown_sender', true],
    ['stale_round', false],
    ['future_round', false],
    ['duplicate', false],
    ['payload_unavailable', false],
  ] as Array<[RejectReason, boolean]>)('%s → %s', (reason, expected) => {
    expect(isSignerFault(reason)).toBe(expected)
  })
})

describe('isRelayFault', () => {
  it.each([
    ['unknown_sender', true],
    ['wrong_epoch', true],
    ['wrong_role', true],
    ['non_finite', true],
    // An honest relay forwards the version it saw first: only the signer is at fault.
    ['equivocation', false],
    // An honest straggler's or a re-announcement's: no one's fault.
    ['stale_round', false],
    ['future_round', false],
    ['duplicate', false],
    ['payload_unavailable', false],
  ] as Array<[RejectReason, boolean]>)('%s → %s', (reason, expected) => {
    expect(isRelayFault(reason)).toBe(expected)
  })
})
