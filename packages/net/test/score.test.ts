import { describe, expect, it } from 'vitest'
import { InvalidMessageScore, isSignerFault, type RejectReason } from '../src/index.js'

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
