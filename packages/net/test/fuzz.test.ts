/**
 * Random bytes and mutated valid messages against the decoders and the whole pipeline: nothing
 * throws, and nothing accepted is invalid (every accepted message is re-checked field by field
 * against an independent statement of the rules). Relayed sync messages are checked against
 * their origin's signature, which arbitrary or altered fields must never pass.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  decodeMemberAnnouncement,
  decodePayloadHeader,
  decodePayloadRequest,
  decodeRelayed,
  decodeSyncRequest,
  encodeMemberAnnouncement,
  encodePayloadHeader,
  encodePayloadRequest,
  encodeRelayed,
  encodeSyncRequest,
  type MemberHello,
  type RelayedFields,
} from '../src/codec.js'
import {
  checkPayload,
  decodeVectorMessage,
  encodeVectorMessage,
  firstNonFinite,
  type IncomingMessage,
  type MemberRole,
  RoundLedger,
  sha256,
  toHex,
  type VectorHeader,
  type VectorKind,
  type Verdict,
  validateVectorMessage,
} from '../src/index.js'
import { signGossipMessage, verifyRelayed } from '../src/sync.js'
import {
  MemberAnnouncement,
  PayloadRequest,
  PayloadResponseHeader,
  PayloadStatus,
  SyncRequest,
  VectorMessage,
  VectorKind as WireKind,
} from '../src/wire/phalanx.generated.js'
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

const mutation = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), index: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('truncate' as const), index: fc.nat() }),
  fc.record({ kind: fc.constant('delete' as const), index: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    index: fc.nat(),
    byte: fc.integer({ min: 0, max: 255 }),
  }),
)
const mutations = fc.array(mutation, { minLength: 1, maxLength: 4 })
type Mutation = typeof mutation extends fc.Arbitrary<infer M> ? M : never

function mutate(valid: Uint8Array, changes: readonly Mutation[]): Uint8Array {
  let bytes = Uint8Array.from(valid)
  for (const m of changes) {
    const at = bytes.byteLength === 0 ? 0 : m.index % bytes.byteLength
    if (m.kind === 'flip' && bytes.byteLength > 0) bytes[at] = bytes[at]! ^ (1 << m.bit)
    if (m.kind === 'truncate') bytes = bytes.subarray(0, at)
    if (m.kind === 'delete') bytes = Uint8Array.from([...bytes.subarray(0, at), ...bytes.subarray(at + 1)])
    if (m.kind === 'insert')
      bytes = Uint8Array.from([...bytes.subarray(0, at), m.byte, ...bytes.subarray(at)])
  }
  return bytes
}

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
    fc.assert(
      fc.property(mutations, senders, (changes, from) => {
        const message = { topic: topics.models, from, data: mutate(validBytes, changes) }
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

/** One wire decoder with the encoder it inverts. */
interface DecoderCase<T> {
  decode(bytes: Uint8Array): T | undefined
  encode(value: T): Uint8Array
  /** The values its encoder is meant for. */
  values: fc.Arbitrary<T>
  /** What the decoder promises of each field of anything it returns. */
  fields: Record<string, FieldRule>
  /** Messages protobuf parses that the decoder must still refuse. */
  refused?: fc.Arbitrary<Uint8Array>
}

/** A field's promise: its type, a set of allowed values, or a check of its own. */
type FieldRule = 'string' | 'bytes' | 'boolean' | 'count' | readonly unknown[] | ((value: unknown) => void)

function expectFields(value: unknown, rules: Record<string, FieldRule>): void {
  expect(typeof value === 'object' && value !== null).toBe(true)
  // Exactly these fields: a decoder must not pass on wire fields the application never asked for.
  expect(Object.keys(value as object).sort()).toEqual(Object.keys(rules).sort())
  for (const [field, rule] of Object.entries(rules)) {
    const v = (value as Record<string, unknown>)[field]
    if (rule === 'string' || rule === 'boolean') expect(typeof v, field).toBe(rule)
    else if (rule === 'bytes') expect(v, field).toBeInstanceOf(Uint8Array)
    // Rounds and sizes are compared and added as numbers: anything past 2^53 − 1 would round.
    else if (rule === 'count')
      expect(Number.isSafeInteger(v) && (v as number) >= 0, `${field} = ${v}`).toBe(true)
    else if (Array.isArray(rule)) expect(rule, field).toContain(v)
    else (rule as (value: unknown) => void)(v)
  }
}

const roles: Array<MemberRole | undefined> = ['server', 'worker', undefined]
const kinds: Array<VectorKind | undefined> = ['model', 'gradient', undefined]
const text = fc.string({ unit: 'binary', maxLength: 24 })
/**
 * protons-runtime (5.6.0 here, 8.0.1 too) writes a uint64 in [2^31, 2^32) as its low byte and four
 * 0 bytes: `LongBits` keeps the low word signed, and the varint writer stops on a negative word.
 * Such values decode right but cannot be encoded, so the valid values skip them; the `it.fails`
 * below turns red once protons is fixed, and then this gap should go.
 */
const protonsGap = (n: unknown) => typeof n === 'number' && n >= 2 ** 31 && n < 2 ** 32
const count = fc
  .oneof(fc.maxSafeNat(), fc.constantFrom(0, 2 ** 31 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER))
  .filter((n) => !protonsGap(n))
/** A uint64 the wire can carry but a JS number cannot hold exactly. */
const unsafeCount = fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n })

const vectorHeaders: fc.Arbitrary<VectorHeader> = fc.record({
  cluster: text,
  round: count,
  sender: text,
  role: fc.constantFrom(...roles),
  kind: fc.constantFrom(...kinds),
  dimension: fc.integer({ min: 0, max: 0xffff_ffff }),
  size: count,
  hash: fc.uint8Array({ maxLength: 32 }),
  payload: fc.uint8Array({ maxLength: 64 }),
  epoch: count,
})
const hellos: fc.Arbitrary<MemberHello> = fc.record({
  cluster: text,
  sender: text,
  role: fc.constantFrom(...roles),
  // 32 addresses is the most an announcement may carry: reach that edge, not only short lists.
  multiaddrs: fc.oneof(
    fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 32 }),
    fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 32, maxLength: 32 }),
  ),
  round: count,
  epoch: count,
})
const payloadRequests = fc.record({ cluster: text, round: count, hash: fc.uint8Array({ maxLength: 32 }) })
const payloadHeaders = fc.record({ found: fc.boolean(), size: count })
const syncRequests = fc.record({
  cluster: text,
  kind: fc.constantFrom<VectorKind>('model', 'gradient'),
  fromRound: count,
})
const relayedFields: fc.Arbitrary<RelayedFields> = fc.record({
  from: fc.uint8Array({ maxLength: 40 }),
  data: fc.uint8Array({ maxLength: 64 }),
  seqno: fc.uint8Array({ maxLength: 10 }),
  signature: fc.uint8Array({ maxLength: 80 }),
  topic: text,
})

const decoders: Array<[string, DecoderCase<unknown>]> = [
  [
    'decodeVectorMessage',
    {
      decode: decodeVectorMessage,
      encode: encodeVectorMessage,
      values: vectorHeaders,
      fields: {
        cluster: 'string',
        round: 'count',
        sender: 'string',
        role: roles,
        kind: kinds,
        dimension: (d) =>
          expect(Number.isInteger(d) && (d as number) >= 0 && (d as number) < 2 ** 32).toBe(true),
        size: 'count',
        hash: 'bytes',
        payload: 'bytes',
        epoch: 'count',
      },
      refused: fc
        .tuple(vectorHeaders, fc.constantFrom('round', 'size', 'epoch'), unsafeCount)
        .map(([h, field, n]) =>
          VectorMessage.encode({ ...VectorMessage.decode(encodeVectorMessage(h)), [field]: n }),
        ),
    } satisfies DecoderCase<VectorHeader>,
  ],
  [
    'decodeMemberAnnouncement',
    {
      decode: decodeMemberAnnouncement,
      encode: encodeMemberAnnouncement,
      values: hellos,
      fields: {
        cluster: 'string',
        sender: 'string',
        role: roles,
        multiaddrs: (addresses) => {
          expect(Array.isArray(addresses)).toBe(true)
          expect((addresses as unknown[]).length).toBeLessThanOrEqual(32)
          for (const address of addresses as unknown[]) expect(address).toBeInstanceOf(Uint8Array)
        },
        round: 'count',
        epoch: 'count',
      },
      refused: fc.oneof(
        fc.tuple(hellos, fc.constantFrom('round', 'epoch'), unsafeCount).map(([hello, field, n]) =>
          MemberAnnouncement.encode({
            ...MemberAnnouncement.decode(encodeMemberAnnouncement(hello)),
            [field]: n,
          }),
        ),
        fc
          .tuple(hellos, fc.array(fc.uint8Array({ maxLength: 8 }), { minLength: 33, maxLength: 40 }))
          .map(([hello, multiaddrs]) => encodeMemberAnnouncement({ ...hello, multiaddrs })),
      ),
    } satisfies DecoderCase<MemberHello>,
  ],
  [
    'decodePayloadRequest',
    {
      decode: decodePayloadRequest,
      encode: encodePayloadRequest,
      values: payloadRequests,
      fields: { cluster: 'string', round: 'count', hash: 'bytes' },
      refused: fc
        .tuple(payloadRequests, unsafeCount)
        .map(([request, n]) =>
          PayloadRequest.encode({ ...PayloadRequest.decode(encodePayloadRequest(request)), round: n }),
        ),
    } satisfies DecoderCase<{ cluster: string; round: number; hash: Uint8Array }>,
  ],
  [
    'decodePayloadHeader',
    {
      decode: decodePayloadHeader,
      encode: ({ found, size }: { found: boolean; size: number }) => encodePayloadHeader(found, size),
      values: payloadHeaders,
      fields: { found: 'boolean', size: 'count' },
      refused: fc
        .tuple(fc.constantFrom(PayloadStatus.OK, PayloadStatus.NOT_FOUND), unsafeCount)
        .map(([status, size]) => PayloadResponseHeader.encode({ status, size })),
    } satisfies DecoderCase<{ found: boolean; size: number }>,
  ],
  [
    'decodeSyncRequest',
    {
      decode: decodeSyncRequest,
      encode: encodeSyncRequest,
      values: syncRequests,
      fields: { cluster: 'string', kind: ['model', 'gradient'], fromRound: 'count' },
      refused: fc.tuple(syncRequests, fc.option(unsafeCount)).map(([request, n]) => {
        const wire = SyncRequest.decode(encodeSyncRequest(request))
        // Either half of the contract: a round that fits in a number, a kind that names one.
        return SyncRequest.encode(
          n === null ? { ...wire, kind: WireKind.KIND_UNSPECIFIED } : { ...wire, fromRound: n },
        )
      }),
    } satisfies DecoderCase<{ cluster: string; kind: VectorKind; fromRound: number }>,
  ],
  [
    'decodeRelayed',
    {
      decode: decodeRelayed,
      encode: encodeRelayed,
      values: relayedFields,
      fields: { from: 'bytes', data: 'bytes', seqno: 'bytes', signature: 'bytes', topic: 'string' },
    } satisfies DecoderCase<RelayedFields>,
  ],
]

/** `bytes` inside a larger buffer of 0xff, as frames sliced out of a stream arrive. */
function embedded(bytes: Uint8Array, offset: number): Uint8Array {
  const buffer = new Uint8Array(offset + bytes.byteLength + 8).fill(0xff)
  buffer.set(bytes, offset)
  return buffer.subarray(offset, offset + bytes.byteLength)
}

describe('fuzz: every wire decoder', () => {
  it.each(decoders)('%s never throws on random bytes, wherever they sit in memory', (_name, c) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), fc.integer({ min: 1, max: 7 }), (bytes, offset) => {
        let decoded: unknown
        expect(() => {
          decoded = c.decode(bytes)
        }).not.toThrow()
        if (decoded !== undefined) expectFields(decoded, c.fields)
        // A decoder that read past its view (or from the start of the buffer) would differ here.
        expect(c.decode(embedded(bytes, offset))).toEqual(decoded)
      }),
      { numRuns: 2000 },
    )
  })

  it.each(decoders)(
    '%s never throws on mutated valid encodings, and returns only well-formed values',
    (_name, c) => {
      fc.assert(
        fc.property(c.values, mutations, (value, changes) => {
          const bytes = mutate(c.encode(value), changes)
          let decoded: unknown
          expect(() => {
            decoded = c.decode(bytes)
          }).not.toThrow()
          if (decoded === undefined) return
          expectFields(decoded, c.fields)
          // Well-formed means the encoder takes it back as it is, not only that the fields have types.
          const fields = Object.entries(decoded as Record<string, unknown>)
          if (fields.some(([field, v]) => c.fields[field] === 'count' && protonsGap(v))) return
          // protons reads malformed UTF-8 leniently, into lone surrogates, and writes those back as
          // U+FFFD: such a string equals no cluster, peer id or topic, so it is refused downstream.
          const expected = fields.map(([field, v]) => [
            field,
            typeof v === 'string' && /\p{Cs}/u.test(v) ? expect.any(String) : v,
          ])
          expect(c.decode(c.encode(decoded))).toEqual(Object.fromEntries(expected))
        }),
        { numRuns: 2000 },
      )
    },
  )

  it.each(decoders)('%s round-trips every valid value exactly', (_name, c) => {
    fc.assert(
      fc.property(c.values, (value) => {
        expect(c.decode(c.encode(value))).toEqual(value)
      }),
      { numRuns: 1000 },
    )
  })

  it.each(decoders.filter(([, c]) => c.refused !== undefined))(
    '%s refuses what protobuf parses but the contract excludes',
    (_name, c) => {
      fc.assert(
        fc.property(c.refused!, (bytes) => {
          expect(c.decode(bytes)).toBeUndefined()
        }),
        { numRuns: 500 },
      )
    },
  )
})

describe('fuzz: known encoder gap', () => {
  it.fails('encodes a uint64 in [2^31, 2^32) (fails while protons has the bug: see `protonsGap`)', () => {
    expect(decodePayloadHeader(encodePayloadHeader(true, 2 ** 31))).toEqual({ found: true, size: 2 ** 31 })
  })
})

describe('fuzz: relayed signatures', () => {
  type Signed = Awaited<ReturnType<typeof signGossipMessage>>
  const fieldsOf = (message: Signed): RelayedFields => ({
    from: message.from!,
    data: message.data!,
    seqno: message.seqno!,
    signature: message.signature!,
    topic: message.topic,
  })
  const sameBytes = (a: Uint8Array, b: Uint8Array) =>
    a.byteLength === b.byteLength && a.every((x, i) => x === b[i])
  const sameFields = (a: RelayedFields, b: RelayedFields) =>
    sameBytes(a.from, b.from) &&
    sameBytes(a.data, b.data) &&
    sameBytes(a.seqno, b.seqno) &&
    sameBytes(a.signature, b.signature) &&
    a.topic === b.topic

  let key: PrivateKey
  let genuine: RelayedFields
  let otherSignature: Uint8Array
  let otherOrigin: Uint8Array
  beforeAll(async () => {
    const [own, other] = (await Promise.all([
      generateKeyPair('Ed25519'),
      generateKeyPair('Ed25519'),
    ])) as unknown as [PrivateKey, PrivateKey]
    key = own
    genuine = fieldsOf(await signGossipMessage(key, { data: Uint8Array.of(1, 2, 3), topic: topics.models }))
    // Real signatures and a real origin, only not for these fields: what a forging relay has at hand.
    otherSignature = (await signGossipMessage(key, { data: Uint8Array.of(1, 2, 4), topic: topics.models }))
      .signature!
    otherOrigin = peerIdFromPrivateKey(other).toMultihash().bytes
  })

  it('never throws on arbitrary fields, and verifies only the fields the origin signed', async () => {
    // Each field is the signed one most of the time, so that one wrong field at a time is common.
    const mostly = <T>(signed: T, other: fc.Arbitrary<T>) =>
      fc.oneof({ arbitrary: fc.constant(signed), weight: 3 }, { arbitrary: other, weight: 1 })
    let verified = 0
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          from: mostly(genuine.from, fc.oneof(fc.constant(otherOrigin), fc.uint8Array({ maxLength: 48 }))),
          data: mostly(genuine.data, fc.uint8Array({ maxLength: 16 })),
          seqno: mostly(genuine.seqno, fc.uint8Array({ maxLength: 10 })),
          signature: mostly(
            genuine.signature,
            fc.oneof(
              fc.constant(otherSignature),
              fc.uint8Array({ minLength: 64, maxLength: 64 }),
              fc.uint8Array({ maxLength: 80 }),
            ),
          ),
          topic: mostly(genuine.topic, text),
        }),
        async (fields) => {
          const message = await verifyRelayed(fields)
          expect(message !== undefined).toBe(sameFields(fields, genuine))
          if (message === undefined) return
          verified++
          expect(message).toMatchObject({ type: 'signed', data: genuine.data, topic: genuine.topic })
        },
      ),
      { numRuns: 200 },
    )
    // The generator must reach the genuine message too, or the property above proves nothing.
    expect(verified).toBeGreaterThan(0)
  })

  it('verifies a freshly signed message, and nothing after any change to one field', async () => {
    const field = fc.constantFrom('from', 'data', 'seqno', 'signature', 'topic')
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 64 }),
        text,
        field,
        mutations,
        async (data, topic, name, changes) => {
          const signed = fieldsOf(await signGossipMessage(key, { data, topic }))
          const message = await verifyRelayed(signed)
          expect(message).toMatchObject({ type: 'signed', data, topic })
          expect(message?.type === 'signed' && message.sequenceNumber).toBe(
            new DataView(signed.seqno.buffer, signed.seqno.byteOffset, 8).getBigUint64(0),
          )

          const altered =
            name === 'topic'
              ? {
                  ...signed,
                  topic: new TextDecoder().decode(mutate(new TextEncoder().encode(topic), changes)),
                }
              : { ...signed, [name]: mutate(signed[name], changes) }
          // A mutation can be a no-op (flipping nothing in empty data): then it is still genuine.
          expect((await verifyRelayed(altered)) !== undefined).toBe(sameFields(altered, signed))
        },
      ),
      { numRuns: 150 },
    )
  })
})
