/**
 * The verified member set (member-set.ts) against every kind of bucket entry an attacker with write
 * access could leave: only operator-signed admits and evictions (and, when admission is open,
 * workers' own joins) change it, never beyond N servers, never changing a role in place.
 */
import { generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto'
import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import type {
  ControlRecord,
  Member,
  MembershipEntry,
  OperatorKey,
  VerifiedMembersInit,
} from '../src/index.js'
import {
  createVerifiedMembers,
  encodeControlRecord,
  generateOperatorKey,
  signAdmitRecord,
  signControlRecord,
  signEvictRecord,
  signJoinRecord,
} from '../src/index.js'

const cluster = 'c1'
const T0 = 1_800_000_000_000
const member = (peerId: string, role: Member['role'] = 'worker'): Member => ({
  peerId,
  nodeId: `${role}-${peerId.toLowerCase()}`,
  role,
  multiaddrs: [],
})
const configured = [member('S0', 'server'), member('S1', 'server'), member('S2', 'server'), member('W0')]

let operator: OperatorKey
let stranger: OperatorKey
/** Peer keys of would-be workers (a stand-in for libp2p keys: the verifier is injected). */
const peerKeys = new Map<string, { privateKey: KeyObject; publicKey: KeyObject }>()
beforeAll(() => {
  operator = generateOperatorKey()
  stranger = generateOperatorKey()
  for (const peerId of ['J1', 'J2', 'S0', 'X9']) peerKeys.set(peerId, generateKeyPairSync('ed25519'))
})
const verifyPeer = async (peerId: string, data: Uint8Array, signature: Uint8Array) => {
  const key = peerKeys.get(peerId)
  return key !== undefined && verify(null, data, key.publicKey, signature)
}
const signAs = (peerId: string) => async (statement: Uint8Array) =>
  new Uint8Array(sign(null, statement, peerKeys.get(peerId)!.privateKey))

let revision = 0
const entry = (
  value: Uint8Array | ControlRecord,
  key: string,
  bucket: MembershipEntry['bucket'] = 'members',
  operation: MembershipEntry['operation'] = 'PUT',
): MembershipEntry => ({
  bucket,
  key,
  revision: ++revision,
  operation,
  value: value instanceof Uint8Array ? value : encodeControlRecord(value),
})
const admitOf = (peerId: string, role: Member['role'] = 'worker', key = operator, issuedAtMs = T0) =>
  signControlRecord(key, { cluster, action: { kind: 'admit', member: member(peerId, role) }, issuedAtMs })
const evictOf = (peerId: string) => signEvictRecord(operator, { cluster, peerId })
const joinOf = (peerId: string, signer = peerId, seq?: number) =>
  signJoinRecord(signAs(signer), {
    cluster,
    member: { ...member(peerId), role: 'worker' },
    issuedAtMs: T0,
    ...(seq === undefined ? {} : { seq }),
  })

function membersFor(extra: Partial<VerifiedMembersInit> = {}) {
  const rejected: string[] = []
  const set = createVerifiedMembers({
    cluster,
    servers: 4,
    configured,
    operatorPublicKey: operator.publicKey,
    verifyPeer,
    now: () => T0,
    onRejected: (kind, reason) => rejected.push(`${kind}/${reason}`),
    ...extra,
  })
  const peers = () => set.members().map((m) => `${m.peerId}:${m.role}`)
  return { set, rejected, peers }
}

const initialPeers = ['S0:server', 'S1:server', 'S2:server', 'W0:worker']

describe('verified members: what is refused', () => {
  const text = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
  it.each<{ name: string; entry: () => MembershipEntry | Promise<MembershipEntry>; counted: string }>([
    {
      name: 'bare Member JSON (the old KV value)',
      entry: () => entry(text(member('Z1', 'server')), 'Z1'),
      counted: 'unknown/malformed',
    },
    {
      name: 'garbage bytes',
      entry: () => entry(new Uint8Array([0xff, 0x00]), 'Z1'),
      counted: 'unknown/malformed',
    },
    {
      name: 'an admit signed by a stranger key',
      entry: () => entry(admitOf('Z1', 'server', stranger), 'Z1'),
      counted: 'admit/bad_signature',
    },
    {
      name: 'an expired admit',
      entry: () =>
        entry(
          signControlRecord(operator, {
            cluster,
            action: { kind: 'admit', member: member('Z1') },
            issuedAtMs: T0 - 2_000,
            lifetimeMs: 1_000,
          }),
          'Z1',
        ),
      counted: 'admit/expired',
    },
    {
      name: 'an admit for another cluster',
      entry: () =>
        entry(
          signControlRecord(operator, { cluster: 'c2', action: { kind: 'admit', member: member('Z1') } }),
          'Z1',
        ),
      counted: 'admit/wrong_cluster',
    },
    {
      name: 'an admit stored under another key',
      entry: () => entry(admitOf('Z1'), 'Z2'),
      counted: 'admit/malformed',
    },
    {
      name: 'an admit in the joins bucket',
      entry: () => entry(admitOf('Z1'), 'Z1', 'joins'),
      counted: 'admit/not_allowed',
    },
    {
      name: 'a bare delete of a member',
      entry: () => entry(new Uint8Array(), 'S1', 'members', 'DEL'),
      counted: 'evict/malformed',
    },
    {
      name: 'a purge of a member',
      entry: () => entry(new Uint8Array(), 'S1', 'members', 'PURGE'),
      counted: 'evict/malformed',
    },
    {
      name: 'a chaos record in the members bucket',
      entry: () =>
        entry(
          signControlRecord(operator, {
            cluster,
            action: { kind: 'chaos', nodeId: 'server-1', command: { kind: 'kill' } },
          }),
          'S1',
        ),
      counted: 'chaos/not_allowed',
    },
    {
      name: 'a join while admission is closed',
      entry: async () => entry(await joinOf('J1'), 'J1', 'joins'),
      counted: 'join/not_allowed',
    },
  ])('$name: nothing applied, counted as $counted', async ({ entry: make, counted }) => {
    const { set, rejected, peers } = membersFor()
    const verdict = await set.apply(await make())
    expect(verdict).toMatchObject({ ok: false, error: { name: 'ControlRecordRejectedError' } })
    expect(rejected).toEqual([counted])
    expect(peers()).toEqual(initialPeers)
  })

  it('refuses every admit when no operator key is pinned', async () => {
    const { set, rejected, peers } = membersFor({ operatorPublicKey: undefined })
    expect(await set.apply(entry(admitOf('Z1'), 'Z1'))).toMatchObject({
      ok: false,
      error: { code: 'no_operator_key' },
    })
    expect(rejected).toEqual(['admit/no_operator_key'])
    expect(peers()).toEqual(initialPeers)
  })

  it('refuses an older record written again over a newer one (replay)', async () => {
    const { set, rejected, peers } = membersFor()
    const older = signAdmitRecord(operator, { cluster, member: member('W7') })
    const newer = evictOf('W7')
    expect(await set.apply(entry(older, 'W7'))).toMatchObject({ ok: true, change: { kind: 'admit' } })
    expect(await set.apply(entry(newer, 'W7'))).toMatchObject({ ok: true, change: { kind: 'evict' } })
    expect(await set.apply(entry(older, 'W7'))).toMatchObject({ ok: false, error: { code: 'replayed' } })
    expect(rejected).toEqual(['admit/replayed'])
    expect(peers()).toEqual(initialPeers)
  })
})

describe('verified members: the operator’s records', () => {
  it('admits and evicts with signed records; the same record again changes nothing', async () => {
    const { set, rejected, peers } = membersFor()
    const admit = admitOf('W5')
    expect(await set.apply(entry(admit, 'W5'))).toMatchObject({
      ok: true,
      change: { kind: 'admit', member: { peerId: 'W5' } },
    })
    expect(await set.apply(entry(admit, 'W5'))).toEqual({ ok: true, change: undefined })
    expect(peers()).toContain('W5:worker')
    expect(await set.apply(entry(evictOf('W5'), 'W5'))).toMatchObject({
      ok: true,
      change: { kind: 'evict', peerId: 'W5' },
    })
    // A config member can be evicted too (the first step of replacing a server).
    expect(await set.apply(entry(evictOf('S2'), 'S2'))).toMatchObject({ ok: true, change: { kind: 'evict' } })
    expect(peers()).toEqual(['S0:server', 'S1:server', 'W0:worker'])
    expect(rejected).toEqual([])
  })

  it('never admits more than N servers: a 5th is refused until one is evicted', async () => {
    const { set, rejected } = membersFor()
    expect(await set.apply(entry(admitOf('S3', 'server'), 'S3'))).toMatchObject({ ok: true })
    expect(await set.apply(entry(admitOf('S4', 'server'), 'S4'))).toMatchObject({
      ok: false,
      error: { code: 'not_allowed', kind: 'admit' },
    })
    expect(set.servers().map((m) => m.peerId)).toEqual(['S0', 'S1', 'S2', 'S3'])
    expect(rejected).toEqual(['admit/not_allowed'])
    await set.apply(entry(evictOf('S1'), 'S1'))
    expect(await set.apply(entry(admitOf('S4', 'server'), 'S4'))).toMatchObject({
      ok: true,
      change: { kind: 'admit' },
    })
    expect(set.servers().map((m) => m.peerId)).toEqual(['S0', 'S2', 'S3', 'S4'])
  })

  it('never changes a member’s role in place, a config member’s included', async () => {
    const { set, rejected, peers } = membersFor()
    expect(await set.apply(entry(admitOf('W0', 'server'), 'W0'))).toMatchObject({
      ok: false,
      error: { code: 'not_allowed' },
    })
    expect(await set.apply(entry(admitOf('S0', 'worker'), 'S0'))).toMatchObject({
      ok: false,
      error: { code: 'not_allowed' },
    })
    expect(rejected).toEqual(['admit/not_allowed', 'admit/not_allowed'])
    expect(peers()).toEqual(initialPeers)
  })
})

describe('verified members: workers’ own joins (workerAdmission: open)', () => {
  it('a join signed by the worker’s own key makes it a worker', async () => {
    const { set, rejected, peers } = membersFor({ workerAdmission: 'open' })
    expect(await set.apply(entry(await joinOf('J1'), 'J1', 'joins'))).toMatchObject({
      ok: true,
      change: { kind: 'admit', member: { peerId: 'J1', role: 'worker' } },
    })
    expect(peers()).toContain('J1:worker')
    expect(rejected).toEqual([])
  })

  it.each<{ name: string; make: () => Promise<MembershipEntry>; counted: string }>([
    {
      name: 'a join signed by another peer',
      make: async () => entry(await joinOf('J2', 'J1'), 'J2', 'joins'),
      counted: 'join/bad_signature',
    },
    {
      name: 'a join for a server’s peer id',
      make: async () => entry(await joinOf('S0'), 'S0', 'joins'),
      counted: 'join/not_allowed',
    },
    {
      name: 'a join in the members bucket',
      make: async () => entry(await joinOf('J1'), 'J1', 'members'),
      counted: 'join/not_allowed',
    },
    {
      name: 'a bare delete in the joins bucket',
      make: async () => entry(new Uint8Array(), 'J1', 'joins', 'DEL'),
      counted: 'join/malformed',
    },
  ])('$name is refused ($counted)', async ({ make, counted }) => {
    const { set, rejected, peers } = membersFor({ workerAdmission: 'open' })
    expect(await set.apply(await make())).toMatchObject({ ok: false })
    expect(rejected).toEqual([counted])
    expect(peers()).toEqual(initialPeers)
  })

  it('a peer the operator evicted cannot join again until the operator admits it, whatever seq it signs', async () => {
    const { set, rejected, peers } = membersFor({ workerAdmission: 'open' })
    await set.apply(entry(await joinOf('J1'), 'J1', 'joins'))
    // A join with a huge sequence number must not outrank the operator's eviction.
    await set.apply(entry(await joinOf('J1', 'J1', Number.MAX_SAFE_INTEGER - 1), 'J1', 'joins'))
    expect(await set.apply(entry(evictOf('J1'), 'J1'))).toMatchObject({ ok: true, change: { kind: 'evict' } })
    expect(
      await set.apply(entry(await joinOf('J1', 'J1', Number.MAX_SAFE_INTEGER), 'J1', 'joins')),
    ).toMatchObject({
      ok: false,
      error: { code: 'not_allowed' },
    })
    expect(peers()).toEqual(initialPeers)
    expect(await set.apply(entry(admitOf('J1'), 'J1'))).toMatchObject({ ok: true, change: { kind: 'admit' } })
    expect(peers()).toContain('J1:worker')
    expect(rejected).toEqual(['join/not_allowed'])
  })
})

describe('verified members: fuzzed entries', () => {
  it('no unsigned or stranger-signed entry is ever applied, and apply never throws', async () => {
    const record = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc.json().map((json) => new TextEncoder().encode(json)),
      fc
        .record({
          peerId: fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/),
          role: fc.constantFrom('server' as const, 'worker' as const),
          kind: fc.constantFrom('admit' as const, 'evict' as const),
        })
        .map(({ peerId, role, kind }) =>
          encodeControlRecord(
            signControlRecord(stranger, {
              cluster,
              action: kind === 'admit' ? { kind, member: member(peerId, role) } : { kind, peerId },
              issuedAtMs: T0,
            }),
          ),
        ),
    )
    const entries = fc.array(
      fc.record({
        value: record,
        key: fc.constantFrom('S0', 'S1', 'W0', 'Z1', 'A'),
        bucket: fc.constantFrom('members' as const, 'joins' as const),
        operation: fc.constantFrom('PUT' as const, 'DEL' as const, 'PURGE' as const),
      }),
      { maxLength: 12 },
    )
    await fc.assert(
      fc.asyncProperty(entries, async (list) => {
        const { set, rejected, peers } = membersFor({ workerAdmission: 'open' })
        for (const e of list) {
          const verdict = await set.apply({ ...e, revision: ++revision })
          expect(verdict.ok).toBe(false)
        }
        expect(peers()).toEqual(initialPeers)
        expect(rejected).toHaveLength(list.length)
      }),
      { numRuns: 60 },
    )
  })
})
