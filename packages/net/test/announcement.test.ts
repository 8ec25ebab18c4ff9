/**
 * The membership topic's checks (members only, in their member-set role, of this cluster and
 * epoch) and the round a lagging node may move its window to: N−F member servers' worth, which
 * no F Byzantine servers and no outsider can reach.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  checkAnnouncement,
  createMembership,
  encodeMemberAnnouncement,
  type MemberHello,
  type MemberRole,
  type RejectReason,
  ServerRounds,
} from '../src/index.js'
import { cluster, server, worker } from './helpers.js'

const ctx = {
  cluster,
  epoch: 3,
  membership: createMembership({
    members: [
      [server, 'server'],
      [worker, 'worker'],
    ] as Array<[string, MemberRole]>,
  }),
}

function hello(overrides: Partial<MemberHello> = {}): MemberHello {
  return { cluster, sender: server, role: 'server', multiaddrs: [], round: 7, epoch: 3, ...overrides }
}

describe('checkAnnouncement', () => {
  it.each<{ name: string; data: Uint8Array; from: string | undefined; reason: RejectReason }>([
    { name: 'not an announcement', data: Uint8Array.from([0xff, 0xff]), from: server, reason: 'malformed' },
    {
      name: 'another cluster',
      data: encodeMemberAnnouncement(hello({ cluster: 'other' })),
      from: server,
      reason: 'wrong_cluster',
    },
    {
      name: 'an earlier epoch, replayed',
      data: encodeMemberAnnouncement(hello({ epoch: 2 })),
      from: server,
      reason: 'wrong_epoch',
    },
    { name: 'unsigned', data: encodeMemberAnnouncement(hello()), from: undefined, reason: 'forged_sender' },
    {
      // The forged round announcement of issue #12: a throw-away key claiming the server role.
      name: 'a non-member claiming the server role at round 2^50',
      data: encodeMemberAnnouncement(hello({ sender: 'throwaway', round: 2 ** 50 })),
      from: 'throwaway',
      reason: 'unknown_sender',
    },
    {
      name: 'a member announcing for another',
      data: encodeMemberAnnouncement(hello({ sender: server })),
      from: worker,
      reason: 'forged_sender',
    },
    {
      name: 'a member worker claiming the server role',
      data: encodeMemberAnnouncement(hello({ sender: worker, role: 'server' })),
      from: worker,
      reason: 'wrong_role',
    },
    {
      name: 'a member server announcing no role',
      data: encodeMemberAnnouncement(hello({ role: undefined })),
      from: server,
      reason: 'wrong_role',
    },
  ])('refuses $name: $reason', ({ data, from, reason }) => {
    const verdict = checkAnnouncement(data, from, ctx)
    expect(verdict.ok).toBe(false)
    expect(verdict.ok ? undefined : verdict.reason).toBe(reason)
  })

  it.each([
    ['server', server],
    ['worker', worker],
  ] as const)('accepts a member %s in its member-set role', (role, sender) => {
    const verdict = checkAnnouncement(encodeMemberAnnouncement(hello({ sender, role })), sender, ctx)
    expect(verdict).toMatchObject({ ok: true, role, hello: { sender, round: 7 } })
  })
})

describe('ServerRounds', () => {
  const n = 4
  const f = 1
  const servers = Array.from({ length: n }, (_, i) => `s${i}`)
  const membership = () =>
    createMembership({
      members: [...servers.map((s) => [s, 'server'] as const), ['w0', 'worker'] as const],
    })

  it('is the highest round N−F distinct member servers have reached', () => {
    const rounds = new ServerRounds(membership())
    for (const [peer, round] of [
      ['s0', 9],
      ['s1', 7],
      ['s1', 5], // older: a server's round only goes up
      ['s2', 8],
      ['s3', 2 ** 50], // a Byzantine server announcing far ahead
      ['w0', 2 ** 50], // a worker is no server
      ['outsider', 2 ** 50],
    ] as const)
      rounds.observe(peer, round)
    expect(rounds.quorumRound(n - f)).toBe(8)
    expect(rounds.quorumRound(1)).toBe(2 ** 50)
    expect(rounds.quorumRound(n + 1)).toBeUndefined()
    expect(rounds.quorumRound(0)).toBeUndefined()
    expect(rounds.size).toBe(n)
  })

  it('forgets a server evicted from the member set', () => {
    const members = membership()
    const rounds = new ServerRounds(members)
    for (const s of servers) rounds.observe(s, 10)
    members.remove('s0')
    expect(rounds.quorumRound(n)).toBeUndefined()
    expect(rounds.size).toBe(n - 1)
  })

  it('never reaches past the honest servers, whatever F Byzantine servers and any outsiders sign', () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 1000 }), { minLength: n - f, maxLength: n - f }),
        fc.array(fc.maxSafeNat(), { minLength: f, maxLength: f }),
        fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.maxSafeNat()), { maxLength: 50 }),
        fc.integer({ min: 0, max: 2 ** 32 }),
        (honest, byzantine, outsiders, seed) => {
          const rounds = new ServerRounds(membership())
          const observations: Array<[string, number]> = [
            ...honest.map((round, i) => [servers[i]!, round] as [string, number]),
            ...byzantine.map((round, i) => [servers[n - f + i]!, round] as [string, number]),
            ...outsiders.map(([peer, round]) => [`x-${peer}`, round] as [string, number]),
          ]
          // Any arrival order.
          const order = observations.map((o, i) => [o, (i * 2654435761 + seed) % 4294967296] as const)
          order.sort((a, b) => a[1] - b[1])
          for (const [[peer, round]] of order) rounds.observe(peer, round)
          const reached = rounds.quorumRound(n - f)
          expect(reached).toBeDefined()
          expect(reached!).toBeLessThanOrEqual(Math.max(...honest))
          // And at least where the slowest honest server is: liveness of the catch-up.
          expect(reached!).toBeGreaterThanOrEqual(Math.min(...honest))
          expect(rounds.size).toBeLessThanOrEqual(n)
        },
      ),
      { numRuns: 500 },
    )
  })
})
