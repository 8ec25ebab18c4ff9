/**
 * Issue #12, problem 1, over real processes: an outsider with throw-away keys announces that
 * F+1, then N, "servers" are at round 2^50, first straight to the honest servers, then handed on
 * by a member server relaying them. Before, F+1 such announcements moved every waiting node's
 * window to 2^50 and it refused all real traffic as stale. Now each is refused as
 * `unknown_sender` and counted, no honest window moves, and the rounds keep completing.
 *
 * N = 4 servers (F = 1), one process each, under an open member set (the mode in which a
 * stranger may connect at all): three honest, one Byzantine member that also relays.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreatePeerKey, type MemberRole } from '@phalanx/net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type PeerEvent, PeerProcess } from './fixtures/net-harness.js'

const cluster = 'forged'
const dimension = 16
const N = 4
const F = 1
const quorum = N - F
const forgedRound = 2 ** 50

type Name = 's0' | 's1' | 's2' | 'byzantine' | 'outsider'
const honest = ['s0', 's1', 's2'] as const
const servers = [...honest, 'byzantine'] as const
const names: readonly Name[] = [...servers, 'outsider']

let dir: string
const ids = {} as Record<Name, string>
const peers = {} as Record<Name, PeerProcess>
let nextRound = 0

interface RoundResult {
  round: number
  window: number
  senders: string[]
}

/** Runs the next round on every server; the honest ones must complete it and keep their window. */
async function roundsComplete(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const round = nextRound++
    const results = await Promise.allSettled(
      servers.map((name) =>
        peers[name].request<RoundResult>('runRound', {
          round,
          quorum,
          dimension,
          // Graylisted by the honest servers once it relays, the Byzantine one may go unserved.
          timeoutMs: name === 'byzantine' ? 3_000 : 30_000,
        }),
      ),
    )
    honest.forEach((name, index) => {
      const result = results[index]!
      expect(result.status, `${name}, round ${round}`).toBe('fulfilled')
      const { window, senders } = (result as PromiseFulfilledResult<RoundResult>).value
      expect(window, `${name}'s window after round ${round}`).toBe(round + 1)
      expect(senders.length).toBeGreaterThanOrEqual(quorum)
      expect(senders.every((sender) => servers.some((s) => ids[s] === sender))).toBe(true)
    })
  }
}

const unknownAnnouncement = (e: PeerEvent) =>
  e.event === 'rejected' && e.reason === 'unknown_sender' && String(e.topic).endsWith('/membership')

/** Waits until each honest server has refused `count` more forged announcements than at `marks`. */
async function refused(marks: readonly number[], count: number): Promise<void> {
  await Promise.all(
    honest.map((name, i) => {
      let seen = 0
      return peers[name].waitFor(
        (e) => peers[name].events.indexOf(e) >= marks[i]! && unknownAnnouncement(e) && ++seen >= count,
      )
    }),
  )
}

const marks = () => honest.map((name) => peers[name].events.length)

async function unknownSenders(name: Name): Promise<number> {
  const counters = await peers[name].request<{ messages_rejected_total: Record<string, number> }>('counters')
  return counters.messages_rejected_total.unknown_sender ?? 0
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phalanx-forged-'))
  for (const name of names) {
    const { key } = await loadOrCreatePeerKey(join(dir, `${name}.key`))
    ids[name] = peerIdFromPrivateKey(key).toString()
  }
  const members = servers.map((name) => [ids[name], 'server'] as [string, MemberRole])
  await Promise.all(names.map(async (name) => (peers[name] = await PeerProcess.spawn(name))))
  const addrs: string[] = []
  // Each node dials every one started before it: a full mesh, the outsider connected to all.
  for (const name of names) {
    const started = await peers[name].request<{ addrs: string[] }>('start', {
      cluster,
      role: 'server',
      dimension,
      members,
      closed: false,
      keyFile: join(dir, `${name}.key`),
      bootstrap: [...addrs],
      forward: { vector: false },
    })
    addrs.push(started.addrs[0]!)
  }
  await Promise.all(
    names.map((name) => peers[name].request('waitForSubscribers', { kind: 'membership', count: N })),
  )
  await Promise.all(servers.map((name) => peers[name].request('transport', { serverQuorum: quorum })))
}, 120_000)

afterAll(async () => {
  await Promise.all(Object.values(peers).map((peer) => peer.kill()))
  await rm(dir, { recursive: true, force: true })
})

describe('forged round announcements', () => {
  it('run rounds before any attack', async () => {
    await roundsComplete(3)
  })

  it.each([
    { name: 'F+1, straight from the outsider', from: 'outsider', count: F + 1 },
    { name: 'N, straight from the outsider', from: 'outsider', count: N },
    { name: 'F+1, relayed by a member server', from: 'byzantine', count: F + 1 },
    { name: 'N, relayed by a member server', from: 'byzantine', count: N },
  ] as const)('refuses $name, counts each, and no honest window moves', async ({ from, count }) => {
    const before = await Promise.all(honest.map((name) => unknownSenders(name)))
    const at = marks()
    const handedTo = await peers[from].request<string[]>('forgeAnnouncements', {
      cluster,
      count,
      round: forgedRound,
      targets: honest.map((name) => ids[name]),
    })
    expect(handedTo.sort()).toEqual(honest.map((name) => ids[name]).sort())
    await refused(at, count)
    const after = await Promise.all(honest.map((name) => unknownSenders(name)))
    after.forEach((total, i) => {
      expect(total).toBe(before[i]! + count)
    })
    // The stalled-node check runs in every round: with the forged rounds accepted it would have
    // moved each window to 2^50, and the next round could never complete.
    await roundsComplete(2)
  })
})
