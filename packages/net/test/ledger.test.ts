/**
 * Invariants of the pending ledger (issue 13, item 1), as a fast-check property over random
 * sequences of offers (announced or inline, any of a few payloads, from two senders), fetch
 * results (commit) and window moves: a vector is delivered at most once per (sender, round); a
 * pending entry never turns a later offer of its own hash into a refusal; equivocation is flagged
 * exactly when a sender signed two hashes for a round; entries stay under senders × window.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  createMembership,
  RoundLedger,
  sha256,
  toHex,
  validateVectorMessage,
  vectorToBytes,
} from '../src/index.js'
import { context, header, incoming, vector } from './helpers.js'

const senders = ['server-a', 'server-b'] as const
const membership = createMembership({ members: senders.map((s) => [s, 'server'] as const) })
const window = 2

type Op =
  | { op: 'offer'; sender: number; roundAhead: number; payload: number; inline: boolean }
  | { op: 'commit'; sender: number; roundAhead: number; payload: number }
  | { op: 'advance' }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('offer' as const),
    sender: fc.integer({ min: 0, max: 1 }),
    roundAhead: fc.integer({ min: -1, max: window }),
    payload: fc.integer({ min: 0, max: 2 }),
    inline: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('commit' as const),
    sender: fc.integer({ min: 0, max: 1 }),
    roundAhead: fc.integer({ min: -1, max: window }),
    payload: fc.integer({ min: 0, max: 2 }),
  }),
  fc.constant({ op: 'advance' as const }),
)

const hashOf = (payload: number) => toHex(sha256(vectorToBytes(vector(payload))))

describe('RoundLedger with pending announcements', () => {
  it('delivers once, retries pending hashes, flags two hashes, stays bounded (property)', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 80 }), (ops) => {
        const ledger = new RoundLedger()
        let round = 10
        /** Per key (sender/round): hashes signed, delivered count, whether the payload was verified. */
        const model = new Map<string, { hashes: Set<number>; delivered: number }>()
        for (const op of ops) {
          if (op.op === 'advance') {
            round++
            ledger.prune(round - 1)
            for (const key of model.keys()) if (Number(key.split('/')[1]) < round - 1) model.delete(key)
            continue
          }
          const sender = senders[op.sender]!
          const at = round + op.roundAhead
          const key = `${sender}/${at}`
          const state = model.get(key) ?? { hashes: new Set<number>(), delivered: 0 }
          if (op.op === 'commit') {
            // A fetch of a hash only happens after an offer of it; a commit says it was verified.
            if (!state.hashes.has(op.payload)) continue
            if (ledger.commit('model', at, sender, hashOf(op.payload))) state.delivered++
            model.set(key, state)
            continue
          }
          const h = header(
            { round: at, sender, ...(op.inline ? {} : { payload: new Uint8Array(0) }) },
            vector(op.payload),
          )
          const verdict = validateVectorMessage(
            incoming(h, sender),
            'model',
            context({ currentRound: round, membership }),
            ledger,
          )
          const seenBefore = new Set(state.hashes)
          state.hashes.add(op.payload)
          model.set(key, state)
          if (state.hashes.size > 1) {
            // Two signed hashes for the round: an equivocation, from the second one on.
            expect(verdict.ok).toBe(false)
            expect(!verdict.ok && verdict.reason).toBe('equivocation')
            expect(ledger.isEquivocator('model', at, sender)).toBe(true)
            continue
          }
          if (verdict.ok && verdict.vector !== undefined) state.delivered++
          if (!verdict.ok) {
            // Only a repeat of a verified payload is refused while the sender is honest.
            expect(verdict.reason).toBe('duplicate')
            expect(seenBefore.has(op.payload)).toBe(true)
            expect(state.delivered).toBeGreaterThan(0)
          }
        }
        for (const state of model.values()) expect(state.delivered).toBeLessThanOrEqual(1)
        expect(ledger.size).toBeLessThanOrEqual(senders.length * (window + 2))
      }),
      { numRuns: 300 },
    )
  })
})
