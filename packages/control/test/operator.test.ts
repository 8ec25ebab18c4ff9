import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ControlAction, ControlRecord, ControlRejectReason, OperatorKey } from '../src/index.js'
import {
  CONTROL_RECORD_DEFAULTS,
  controlRecordStatement,
  createControlRecordVerifier,
  encodeControlRecord,
  generateOperatorKey,
  loadOperatorKey,
  loadOrCreateOperatorKey,
  operatorPublicKeyObject,
  signControlRecord,
  signJoinRecord,
  writeOperatorKey,
} from '../src/index.js'

const cluster = 'c1'
const T0 = 1_800_000_000_000
const member = (peerId: string, role: 'server' | 'worker' = 'worker') => ({
  peerId,
  nodeId: `${role}-${peerId.toLowerCase()}`,
  role,
  multiaddrs: [],
})
const admit = (peerId: string, role: 'server' | 'worker' = 'worker'): ControlAction => ({
  kind: 'admit',
  member: member(peerId, role),
})
const kill: ControlAction = { kind: 'chaos', nodeId: 'server-1', command: { kind: 'kill' } }

let operator: OperatorKey
let stranger: OperatorKey
beforeAll(() => {
  operator = generateOperatorKey()
  stranger = generateOperatorKey()
})

const verifier = (extra: Partial<Parameters<typeof createControlRecordVerifier>[0]> = {}) =>
  createControlRecordVerifier({
    cluster,
    operatorPublicKey: operator.publicKey,
    now: () => T0,
    chaosIssuedAfterMs: T0 - 1_000,
    ...extra,
  })

const signed = (action: ControlAction, extra: Partial<Parameters<typeof signControlRecord>[1]> = {}) =>
  signControlRecord(operator, { cluster, action, issuedAtMs: T0, ...extra })

describe('control records', () => {
  it.each<{ name: string; record: () => unknown; reason: ControlRejectReason }>([
    { name: 'garbage', record: () => new TextEncoder().encode('{nope'), reason: 'malformed' },
    { name: 'a bare member record (the old KV value)', record: () => member('A'), reason: 'malformed' },
    {
      name: 'an unknown extra field',
      record: () => ({ ...signed(admit('A')), role: 'server' }),
      reason: 'malformed',
    },
    { name: 'another cluster', record: () => signed(admit('A'), { cluster: 'c2' }), reason: 'wrong_cluster' },
    {
      name: 'a stranger key',
      record: () => signControlRecord(stranger, { cluster, action: admit('A'), issuedAtMs: T0 }),
      reason: 'bad_signature',
    },
    {
      name: 'a role changed after signing',
      record: () => {
        const record = signed(admit('A'))
        return { ...record, action: admit('A', 'server') }
      },
      reason: 'bad_signature',
    },
    {
      name: 'a seq changed after signing',
      record: () => ({ ...signed(admit('A')), seq: Number.MAX_SAFE_INTEGER }),
      reason: 'bad_signature',
    },
    {
      name: 'an expired command',
      record: () => signed(kill, { issuedAtMs: T0 - 120_000, lifetimeMs: 60_000 }),
      reason: 'expired',
    },
    {
      name: 'a command from the future',
      record: () => signed(kill, { issuedAtMs: T0 + CONTROL_RECORD_DEFAULTS.maxClockSkewMs + 1 }),
      reason: 'not_yet_valid',
    },
    {
      name: 'a chaos command issued before the node started',
      record: () => signed(kill, { issuedAtMs: T0 - 5_000 }),
      reason: 'replayed',
    },
    {
      name: 'an operator record claiming the member signed it',
      record: () => ({ ...signed(admit('A')), signer: 'member' }),
      reason: 'wrong_signer',
    },
  ])('refuses $name as $reason, and counts it', async ({ record, reason }) => {
    const v = verifier()
    const verdict = await v.check(record())
    expect(verdict.ok).toBe(false)
    if (verdict.ok) return
    expect(verdict.error.name).toBe('ControlRecordRejectedError')
    expect(verdict.error.code).toBe(reason)
    expect(Object.entries(v.rejected()).filter(([key]) => key.endsWith(`/${reason}`))).toHaveLength(1)
  })

  it('refuses every operator record when no operator key is pinned', async () => {
    const counted: string[] = []
    const v = createControlRecordVerifier({
      cluster,
      onRejected: (kind, reason) => counted.push(`${kind}/${reason}`),
    })
    const verdict = await v.check(signControlRecord(operator, { cluster, action: admit('A') }))
    expect(verdict.ok ? 'accepted' : verdict.error.code).toBe('no_operator_key')
    expect(counted).toEqual(['admit/no_operator_key'])
  })

  it('accepts a valid record once, its exact repeat idempotently, and refuses an older one', async () => {
    const v = verifier()
    const older = signed(admit('A'), { seq: 10 })
    const newer = signControlRecord(operator, {
      cluster,
      action: { kind: 'evict', peerId: 'A' },
      seq: 11,
      issuedAtMs: T0,
    })
    expect(await v.check(encodeControlRecord(older))).toMatchObject({ ok: true, repeat: false })
    expect(await v.check(newer)).toMatchObject({ ok: true, repeat: false })
    expect(await v.check(newer)).toMatchObject({ ok: true, repeat: true })
    const replay = await v.check(older)
    expect(replay.ok ? 'accepted' : replay.error.code).toBe('replayed')
    // Sequence numbers are per target: another member's record is not affected.
    expect(await v.check(signed(admit('B'), { seq: 1 }))).toMatchObject({ ok: true })
  })

  it('takes a worker join only when admission is open and the peer key signed it', async () => {
    const peerKey = generateOperatorKey()
    const verifyPeer = async (peerId: string, data: Uint8Array, signature: Uint8Array) => {
      const { verify } = await import('node:crypto')
      return peerId === 'W' && verify(null, data, operatorPublicKeyObject(peerKey.publicKey), signature)
    }
    const { sign } = await import('node:crypto')
    const join = await signJoinRecord(async (statement) => sign(null, statement, peerKey.privateKey), {
      cluster,
      issuedAtMs: T0,
      member: { ...member('W'), role: 'worker' },
    })
    const closed = await verifier({ verifyPeer }).check(join)
    expect(closed.ok ? 'accepted' : closed.error.code).toBe('not_allowed')
    expect(await verifier({ verifyPeer, workerAdmission: 'open' }).check(join)).toMatchObject({ ok: true })
    // The same join claiming another peer's id is not that peer's signature.
    const stolen = { ...join, action: { kind: 'join', member: { ...member('X'), role: 'worker' } } }
    const verdict = await verifier({ verifyPeer, workerAdmission: 'open' }).check(stolen)
    expect(verdict.ok ? 'accepted' : verdict.error.code).toBe('bad_signature')
    // A join can never make a server.
    const asServer = { ...join, action: { kind: 'join', member: member('W', 'server') } }
    const server = await verifier({ verifyPeer, workerAdmission: 'open' }).check(asServer)
    expect(server.ok ? 'accepted' : server.error.code).toBe('malformed')
  })

  it('signs over a canonical statement: key order does not change what was signed', () => {
    const record = signed(admit('A'))
    const { signature: _s, ...unsigned } = record
    const shuffled = Object.fromEntries(Object.entries(unsigned).reverse()) as typeof unsigned
    expect(Buffer.from(controlRecordStatement(shuffled))).toEqual(
      Buffer.from(controlRecordStatement(unsigned)),
    )
    expect(new TextDecoder().decode(controlRecordStatement(unsigned))).toMatch(
      /^phalanx-control-record\/v1\n/,
    )
  })

  it('applies no fuzzed record and never throws (fast-check)', async () => {
    const base = signed(admit('A', 'server'), { seq: 5 })
    const mutation = fc.oneof(
      fc.record({
        field: fc.constantFrom('cluster', 'seq', 'issuedAtMs', 'expiresAtMs', 'signer', 'signature', 'v'),
        value: fc.jsonValue(),
      }),
      fc.record({ field: fc.constant('action'), value: fc.jsonValue() }),
    )
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const record: Record<string, unknown> = { ...base }
        for (const { field, value } of mutations) record[field] = value
        if (JSON.stringify(record) === JSON.stringify(base)) return
        const v = verifier()
        const verdict = await v.check(record)
        expect(verdict.ok).toBe(false)
      }),
      { numRuns: 300 },
    )
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        expect((await verifier().check(bytes)).ok).toBe(false)
      }),
      { numRuns: 200 },
    )
  })
})

describe('operator key file', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'phalanx-operator-'))
  })
  afterAll(async () => rm(dir, { recursive: true, force: true }))

  it('writes 0600 PEM, loads the same public key, and never overwrites', async () => {
    const path = join(dir, 'operator.pem')
    const key = generateOperatorKey()
    await writeOperatorKey(path, key)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect((await loadOperatorKey(path)).publicKey).toBe(key.publicKey)
    await expect(writeOperatorKey(path, generateOperatorKey())).rejects.toMatchObject({ code: 'key_exists' })
    expect((await loadOrCreateOperatorKey(path)).publicKey).toBe(key.publicKey)
    expect(await readFile(path, 'utf8')).toMatch(/BEGIN PRIVATE KEY/)
  })

  it.each([
    { name: 'a missing file', write: undefined, code: 'unreadable' },
    { name: 'not a key', write: 'hello', code: 'invalid_key' },
  ])('names $name ($code)', async ({ write, code }) => {
    const path = join(dir, `bad-${code}.pem`)
    if (write !== undefined) await import('node:fs/promises').then((fs) => fs.writeFile(path, write))
    await expect(loadOperatorKey(path)).rejects.toMatchObject({ name: 'OperatorKeyError', code })
  })

  it.each(['', 'abc', 'A'.repeat(44), '+'.repeat(43)])('refuses %j as a public key', (value) => {
    expect(() => operatorPublicKeyObject(value)).toThrow(
      expect.objectContaining({ code: 'invalid_public_key' }),
    )
  })

  it('keeps key-record types honest', () => {
    const record: ControlRecord = signed(kill)
    expect(record.action.kind).toBe('chaos')
  })
})
