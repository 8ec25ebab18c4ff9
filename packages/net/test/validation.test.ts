import { describe, expect, it } from 'vitest'
import {
  checkPayload,
  createMembership,
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

describe('RoundLedger: pending announcements', () => {
  /** An announcement: the signed header of a payload fetched over a stream, no inline bytes. */
  const announced = (values: Float32Array, round = 10) =>
    incoming(header({ round, payload: new Uint8Array(0) }, values))

  it('keeps an announced vector pending until its payload is verified, and offers it again', () => {
    const ledger = new RoundLedger()
    const ctx = context()
    const first = validateVectorMessage(announced(vector(1)), 'model', ctx, ledger)
    expect(first.ok && first.vector === undefined && first.again !== true).toBe(true)
    expect(ledger.isPending('model', 10, server)).toBe(true)
    // The fetch failed: the republish (or a relay's copy, or a sync answer) is fetched again.
    const again = validateVectorMessage(announced(vector(1)), 'model', ctx, ledger)
    expect(again.ok && again.again).toBe(true)
    const hash = first.ok ? first.hash : ''
    expect(ledger.commit('model', 10, server, hash)).toBe(true)
    // Only once: a second copy fetched meanwhile is not delivered again.
    expect(ledger.commit('model', 10, server, hash)).toBe(false)
    const late = validateVectorMessage(announced(vector(1)), 'model', ctx, ledger)
    expect(!late.ok && late.reason).toBe('duplicate')
  })

  it('detects equivocation on announcements whose payloads never arrived', () => {
    const ledger = new RoundLedger()
    const ctx = context()
    validateVectorMessage(announced(vector(1)), 'model', ctx, ledger)
    const second = validateVectorMessage(announced(vector(2)), 'model', ctx, ledger)
    expect(!second.ok && second.reason).toBe('equivocation')
    expect(!second.ok && second.equivocation?.first.hash).not.toBe(
      !second.ok && second.equivocation?.second.hash,
    )
    expect(ledger.isEquivocator('model', 10, server)).toBe(true)
    // The pending hash cannot be committed once the signer is caught.
    const hash = Buffer.from(sha256(vectorToBytes(vector(1)))).toString('hex')
    expect(ledger.commit('model', 10, server, hash)).toBe(false)
  })

  it('commits the same bytes arriving inline while the announced copy is pending', () => {
    const ledger = new RoundLedger()
    const ctx = context()
    validateVectorMessage(announced(vector(1)), 'model', ctx, ledger)
    expect(validateVectorMessage(incoming(header({}, vector(1))), 'model', ctx, ledger).ok).toBe(true)
    expect(ledger.isPending('model', 10, server)).toBe(false)
  })

  it('keeps evidence compact and bounded per sender and in total, and hands it over once', () => {
    const ledger = new RoundLedger(5, 2)
    const other = 'server-2'
    const ctx = context({
      membership: createMembership({
        members: [
          [server, 'server'],
          [other, 'server'],
          [worker, 'worker'],
        ],
      }),
    })
    for (let round = 10; round < 20; round++) {
      const at = context({ ...ctx, currentRound: round })
      for (const sender of [server, other]) {
        validateVectorMessage(incoming(header({ round, sender }, vector(1)), sender), 'model', at, ledger)
        validateVectorMessage(incoming(header({ round, sender }, vector(2)), sender), 'model', at, ledger)
      }
      ledger.prune(round - 1)
    }
    const held = ledger.evidence()
    expect(held.filter((e) => e.sender === server).map((e) => e.round)).toEqual([18, 19])
    expect(held.filter((e) => e.sender === other).map((e) => e.round)).toEqual([18, 19])
    expect(ledger.evidenceDropped).toBe(16)
    expect(ledger.takeEvidence()).toHaveLength(4)
    expect(ledger.evidence()).toHaveLength(0)
  })

  it('keeps an inline message of a large vector as hash and signature only', () => {
    const big = Float32Array.from({ length: 4096 }, (_, i) => i)
    const ctx = context({ dimension: 4096, maxPayloadBytes: 1 << 20 })
    const ledger = new RoundLedger()
    validateVectorMessage(incoming(header({}, big)), 'model', ctx, ledger)
    const bigger = big.slice()
    bigger[0] = -1
    const verdict = validateVectorMessage(incoming(header({}, bigger)), 'model', ctx, ledger)
    const evidence = !verdict.ok ? verdict.equivocation : undefined
    expect(evidence?.first.data).toBeUndefined()
    expect(evidence?.second.data).toBeUndefined()
    expect(evidence?.second.signature?.byteLength).toBe(64)
    expect(evidence?.second.hash).toMatch(/^[0-9a-f]{64}$/)
  })
})
