import { describe, expect, it } from 'vitest'
import {
  checkPayload,
  type RejectReason,
  RoundLedger,
  sha256,
  type VectorHeader,
  validateVectorMessage,
  vectorToBytes,
} from '../src/index.js'
import { context, dimension, header, incoming, server, vector, worker } from './helpers.js'

const nanVector = vector(1)
nanVector[3] = Number.NaN
const nanBytes = vectorToBytes(nanVector)
const infVector = vector(1)
infVector[0] = Number.POSITIVE_INFINITY

type Case = {
  name: string
  header: VectorHeader
  from?: string
  unsigned?: boolean
  kind?: 'model' | 'gradient'
  reason: RejectReason
}

const cases: Case[] = [
  { name: 'wrong cluster', header: header({ cluster: 'other' }), reason: 'wrong_cluster' },
  // Last run's signed model replayed after a whole-cluster restart (the node is at epoch 0).
  { name: 'another epoch', header: header({ epoch: 1 }), reason: 'wrong_epoch' },
  {
    name: 'another epoch, even from a non-member',
    header: header({ epoch: 7, sender: 'stranger' }),
    from: 'stranger',
    reason: 'wrong_epoch',
  },
  { name: 'unsigned', header: header(), unsigned: true, reason: 'forged_sender' },
  {
    name: 'unknown signer',
    header: header({ sender: 'stranger' }),
    from: 'stranger',
    reason: 'unknown_sender',
  },
  { name: 'forged sender field', header: header({ sender: server }), from: worker, reason: 'forged_sender' },
  { name: 'model on the gradient topic', header: header(), kind: 'gradient', reason: 'wrong_topic' },
  {
    name: 'worker publishing a model',
    header: header({ sender: worker, role: 'server' }),
    reason: 'wrong_role',
  },
  { name: 'server claiming worker role', header: header({ role: 'worker' }), reason: 'wrong_role' },
  { name: 'unknown kind', header: header({ kind: undefined }), reason: 'wrong_topic' },
  {
    name: 'announced size over the maximum',
    header: header({ size: 10_000, payload: new Uint8Array(0) }),
    reason: 'oversize',
  },
  { name: 'inline payload over the maximum', header: header({}, vector(1, 200)), reason: 'oversize' },
  { name: 'wrong dimension', header: header({}, vector(1, dimension + 1)), reason: 'wrong_dimension' },
  { name: 'size not 4·d', header: header({ size: 31, payload: new Uint8Array(0) }), reason: 'size_mismatch' },
  {
    name: 'inline payload shorter than size',
    header: header({ payload: new Uint8Array(28) }),
    reason: 'size_mismatch',
  },
  { name: 'short hash', header: header({ hash: new Uint8Array(4) }), reason: 'malformed' },
  { name: 'stale round (current − 2)', header: header({ round: 8 }), reason: 'stale_round' },
  { name: 'far-future round (current + W + 1)', header: header({ round: 13 }), reason: 'future_round' },
  {
    name: 'hash not of the payload',
    header: header({ hash: sha256(Uint8Array.of(1)) }),
    reason: 'hash_mismatch',
  },
  { name: 'NaN payload', header: header({}, nanVector), reason: 'non_finite' },
  { name: '+Infinity payload', header: header({}, infVector), reason: 'non_finite' },
]

describe('validation pipeline', () => {
  it.each(cases)('rejects $name as $reason', (testCase) => {
    const { header: h, kind, reason } = testCase
    const verdict = validateVectorMessage(
      incoming(h, testCase.unsigned === true ? null : (testCase.from ?? h.sender), kind ?? 'model'),
      kind ?? 'model',
      context(),
      new RoundLedger(),
    )
    expect(verdict.ok).toBe(false)
    if (!verdict.ok) expect(verdict.reason).toBe(reason)
  })

  it.each([
    ['current round − 1', 9],
    ['current round', 10],
    ['current round + W', 12],
  ])('accepts a valid inline model at %s', (_name, round) => {
    const verdict = validateVectorMessage(incoming(header({ round })), 'model', context(), new RoundLedger())
    expect(verdict.ok).toBe(true)
    if (verdict.ok) expect([...(verdict.vector ?? [])]).toEqual([...vector(1)])
  })

  it('accepts an announcement and leaves the payload for the fetch', () => {
    const verdict = validateVectorMessage(
      incoming(header({ payload: new Uint8Array(0) })),
      'model',
      context(),
      new RoundLedger(),
    )
    expect(verdict.ok && verdict.vector === undefined).toBe(true)
  })

  it('accepts a worker gradient on the gradient topic', () => {
    const h = header({ sender: worker, role: 'worker', kind: 'gradient' })
    expect(
      validateVectorMessage(incoming(h, worker, 'gradient'), 'gradient', context(), new RoundLedger()).ok,
    ).toBe(true)
  })

  it('flags a duplicate, then an equivocation with both messages as evidence, then blocks the sender', () => {
    const ledger = new RoundLedger()
    const ctx = context()
    const first = incoming(header({}, vector(1)))
    const again = incoming(header({}, vector(1)))
    const other = incoming(header({}, vector(2)))
    expect(validateVectorMessage(first, 'model', ctx, ledger).ok).toBe(true)
    const duplicate = validateVectorMessage(again, 'model', ctx, ledger)
    expect(!duplicate.ok && duplicate.reason).toBe('duplicate')
    const equivocation = validateVectorMessage(other, 'model', ctx, ledger)
    expect(!equivocation.ok && equivocation.reason).toBe('equivocation')
    expect(!equivocation.ok && equivocation.equivocation?.first.data).toEqual(first.data)
    expect(!equivocation.ok && equivocation.equivocation?.second.data).toEqual(other.data)
    expect(ledger.isEquivocator('model', 10, server)).toBe(true)
    const afterwards = validateVectorMessage(incoming(header({}, vector(3))), 'model', ctx, ledger)
    expect(!afterwards.ok && afterwards.reason).toBe('equivocation')
    expect(!afterwards.ok && afterwards.equivocation).toBeUndefined()
    expect(ledger.evidence()).toHaveLength(1)
    // Another round is independent.
    expect(validateVectorMessage(incoming(header({ round: 11 })), 'model', ctx, ledger).ok).toBe(true)
  })

  it('prunes old rounds, equivocators of those rounds included, but keeps the evidence', () => {
    const ledger = new RoundLedger()
    const ctx = context()
    validateVectorMessage(incoming(header({ round: 9 }, vector(1))), 'model', ctx, ledger)
    validateVectorMessage(incoming(header({ round: 9 }, vector(2))), 'model', ctx, ledger)
    validateVectorMessage(incoming(header({ round: 10 }, vector(1))), 'model', ctx, ledger)
    validateVectorMessage(incoming(header({ round: 10 }, vector(2))), 'model', ctx, ledger)
    ledger.prune(10)
    expect(ledger.isEquivocator('model', 10, server)).toBe(true)
    expect(ledger.isEquivocator('model', 9, server)).toBe(false)
    expect(ledger.size).toBe(1)
    expect(ledger.evidence()).toHaveLength(2)
    // Round 9 was forgotten: the same message now counts as a first one.
    expect(validateVectorMessage(incoming(header({ round: 9 }, vector(1))), 'model', ctx, ledger).ok).toBe(
      true,
    )
  })

  it('keeps only the newest maxEvidence equivocation pairs', () => {
    const ledger = new RoundLedger(3)
    // A member equivocating round after round, the window moving with it.
    for (let round = 10; round < 20; round++) {
      const ctx = context({ currentRound: round })
      validateVectorMessage(incoming(header({ round }, vector(1))), 'model', ctx, ledger)
      validateVectorMessage(incoming(header({ round }, vector(2))), 'model', ctx, ledger)
      ledger.prune(round - 1)
    }
    expect(ledger.evidence().map((e) => e.round)).toEqual([17, 18, 19])
    expect(ledger.size).toBeLessThanOrEqual(2)
  })

  it.each([
    ['matching payload', vectorToBytes(vector(1)), undefined],
    ['short payload', vectorToBytes(vector(1)).subarray(4), 'size_mismatch'],
    ['other payload', vectorToBytes(vector(2)), 'hash_mismatch'],
  ] as const)('checkPayload: %s', (_name, bytes, reason) => {
    expect(checkPayload(header(), bytes)?.reason).toBe(reason)
  })

  it('checkPayload: NaN payload whose hash matches is the signer’s fault', () => {
    expect(checkPayload({ size: nanBytes.byteLength, hash: sha256(nanBytes) }, nanBytes)?.reason).toBe(
      'non_finite',
    )
  })
})
