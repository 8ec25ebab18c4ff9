/**
 * Random bytes and mutated valid messages against the decoder and the whole pipeline: nothing
 * throws, and nothing accepted is invalid (every accepted message is re-checked field by field
 * against an independent statement of the rules).
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  checkPayload,
  decodeVectorMessage,
  encodeVectorMessage,
  firstNonFinite,
  type IncomingMessage,
  RoundLedger,
  sha256,
  toHex,
  type Verdict,
  validateVectorMessage,
} from '../src/index.js'
import { context, header, incoming, server, topics, vector, worker } from './helpers.js'

const ctx = context()

/** The rules restated independently of the implementation. */
function assertAcceptable(verdict: Verdict, message: IncomingMessage): void {
  if (!verdict.ok) return
  const h = verdict.header
  expect(h.cluster).toBe(ctx.cluster)
  expect(message.from).toBe(h.sender)
  expect(ctx.membership.roleOf(h.sender)).toBe(h.role)
  expect(h.kind === 'model' ? 'server' : 'worker').toBe(h.role)
  expect(h.dimension).toBe(ctx.dimension)
  expect(h.size).toBe(4 * ctx.dimension)
  expect(h.round).toBeGreaterThanOrEqual(ctx.currentRound - 1)
  expect(h.round).toBeLessThanOrEqual(ctx.currentRound + ctx.roundWindowAhead)
  expect(verdict.hash).toBe(toHex(h.hash))
  if (h.payload.byteLength > 0) {
    expect(toHex(sha256(h.payload))).toBe(verdict.hash)
    expect(verdict.vector).toBeDefined()
    expect(firstNonFinite(verdict.vector!)).toBe(-1)
  }
}

const senders = fc.constantFrom(server, worker, 'stranger')
const validBytes = encodeVectorMessage(header())

describe('fuzz: decoder and validators', () => {
  it('never throws on random bytes, and accepts nothing invalid', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), senders, fc.boolean(), (bytes, from, onModels) => {
        expect(() => decodeVectorMessage(bytes)).not.toThrow()
        const message = { topic: onModels ? topics.models : topics.gradients, from, data: bytes }
        const verdict = validateVectorMessage(
          message,
          onModels ? 'model' : 'gradient',
          ctx,
          new RoundLedger(),
        )
        assertAcceptable(verdict, message)
      }),
      { numRuns: 3000 },
    )
  })

  it('never throws on mutated valid messages, and accepts only those still valid', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), index: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
      fc.record({ kind: fc.constant('truncate' as const), index: fc.nat() }),
      fc.record({
        kind: fc.constant('insert' as const),
        index: fc.nat(),
        byte: fc.integer({ min: 0, max: 255 }),
      }),
    )
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), senders, (mutations, from) => {
        let bytes = Uint8Array.from(validBytes)
        for (const m of mutations) {
          const at = bytes.byteLength === 0 ? 0 : m.index % bytes.byteLength
          if (m.kind === 'flip' && bytes.byteLength > 0) bytes[at] = bytes[at]! ^ (1 << m.bit)
          if (m.kind === 'truncate') bytes = bytes.subarray(0, at)
          if (m.kind === 'insert')
            bytes = Uint8Array.from([...bytes.subarray(0, at), m.byte, ...bytes.subarray(at)])
        }
        const message = { topic: topics.models, from, data: bytes }
        const verdict = validateVectorMessage(message, 'model', ctx, new RoundLedger())
        assertAcceptable(verdict, message)
      }),
      { numRuns: 3000 },
    )
  })

  it('never accepts a structurally valid message with arbitrary field values unless every rule holds', () => {
    // Each field is valid most of the time, so that both sides of every rule are reached.
    const mostly = <T>(valid: T, ...invalid: T[]) => fc.constantFrom(valid, valid, valid, ...invalid)
    const floats = fc.oneof(
      fc.constant(new Float32Array(0)),
      fc.float32Array({ minLength: 8, maxLength: 8 }),
      fc.float32Array({ minLength: 0, maxLength: 12 }),
    )
    let accepted = 0
    fc.assert(
      fc.property(
        fc.record({
          cluster: mostly('unit', 'other', ''),
          round: fc.oneof(fc.integer({ min: 9, max: 12 }), fc.integer({ min: 0, max: 20 })),
          sender: mostly(server, worker, 'stranger'),
          role: mostly<'server' | 'worker' | undefined>('server', 'worker', undefined),
          kind: mostly<'model' | 'gradient' | undefined>('model', 'gradient', undefined),
          dimension: mostly(8, 0, 7, 9),
          lieAboutSize: mostly(false, true),
          lieAboutHash: mostly(false, true),
          inline: fc.boolean(),
        }),
        floats,
        mostly(server, worker, 'stranger'),
        (fields, values, from) => {
          const base = header({}, values.length > 0 ? values : vector(1))
          const h = {
            ...base,
            ...fields,
            size: fields.lieAboutSize ? base.size + 4 : base.size,
            hash: fields.lieAboutHash ? sha256(Uint8Array.of(0)) : base.hash,
            payload: fields.inline ? base.payload : new Uint8Array(0),
          }
          const message = incoming(h, from)
          const verdict = validateVectorMessage(message, 'model', ctx, new RoundLedger())
          assertAcceptable(verdict, message)
          if (verdict.ok) accepted++
          if (verdict.ok && fields.inline) expect(checkPayload(h, h.payload)).toBeUndefined()
        },
      ),
      { numRuns: 3000 },
    )
    // The generator must reach valid messages too, or the property above proves nothing.
    expect(accepted).toBeGreaterThan(0)
  })
})
