import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { Member, MemberChange } from '../src/index.js'
import { createMembershipView } from '../src/index.js'

const m = (peerId: string, role: Member['role'] = 'worker'): Member => ({
  peerId,
  nodeId: peerId,
  role,
  multiaddrs: [],
})
const admit = (peerId: string, revision: number, role: Member['role'] = 'worker'): MemberChange => ({
  kind: 'admit',
  member: m(peerId, role),
  revision,
})
const evict = (peerId: string, revision: number): MemberChange => ({ kind: 'evict', peerId, revision })
const ids = (members: readonly Member[]) => members.map((member) => member.peerId)

describe('MembershipView', () => {
  it.each<{ name: string; initial: string[]; staged: MemberChange[]; expected: string[] }>([
    { name: 'an admit joins', initial: ['a'], staged: [admit('b', 1)], expected: ['a', 'b'] },
    { name: 'an evict leaves', initial: ['a', 'b'], staged: [evict('a', 1)], expected: ['b'] },
    { name: 'evicting a stranger is a no-op', initial: ['a'], staged: [evict('z', 1)], expected: ['a'] },
    {
      name: 'changes apply in revision order, not arrival order',
      initial: [],
      staged: [evict('b', 3), admit('b', 2)],
      expected: [],
    },
    {
      name: 'a re-admit after an evict wins when newer',
      initial: ['b'],
      staged: [admit('b', 5), evict('b', 4)],
      expected: ['b'],
    },
    {
      name: 'the same change staged twice counts once',
      initial: [],
      staged: [admit('c', 2), admit('c', 2), admit('a', 1)],
      expected: ['a', 'c'],
    },
  ])('$name', ({ initial, staged, expected }) => {
    const view = createMembershipView({ members: initial.map((id) => m(id)), round: 10 })
    for (const change of staged) view.stage(change)
    expect(ids(view.advanceTo(10))).toEqual([...initial].sort())
    expect(ids(view.advanceTo(11))).toEqual(expected)
    expect(view.round).toBe(11)
    expect(view.pending()).toEqual([])
  })

  it('stages changes seen mid-round until the next round boundary', () => {
    const view = createMembershipView({ members: [m('s0', 'server'), m('w0')], round: 3 })
    view.stage(admit('w1', 7))
    expect(ids(view.current())).toEqual(['s0', 'w0'])
    expect(ids(view.advanceTo(3))).toEqual(['s0', 'w0'])
    expect(view.pending()).toHaveLength(1)
    expect(ids(view.advanceTo(4))).toEqual(['s0', 'w0', 'w1'])
    expect(ids(view.servers())).toEqual(['s0'])
    expect(ids(view.workers())).toEqual(['w0', 'w1'])
  })

  it('ignores a replayed older revision after a newer one was applied', () => {
    const view = createMembershipView({ members: [] })
    view.stage(admit('a', 1))
    view.stage(evict('a', 2))
    view.advanceTo(1)
    view.stage(admit('a', 1))
    expect(ids(view.advanceTo(2))).toEqual([])
  })

  it('refuses to go back a round, by name', () => {
    const view = createMembershipView({ members: [], round: 5 })
    expect(() => view.advanceTo(4)).toThrow(
      expect.objectContaining({ name: 'RoundRegressionError', round: 4, currentRound: 5 }),
    )
  })

  it('returns a snapshot the caller cannot mutate', () => {
    const view = createMembershipView({ members: [m('a')] })
    expect(Object.isFrozen(view.advanceTo(1))).toBe(true)
  })

  it('ends in the state of the latest revision per peer, whatever the arrival order', () => {
    const change = fc.record({ peer: fc.constantFrom('a', 'b', 'c', 'd'), admit: fc.boolean() })
    fc.assert(
      fc.property(fc.array(change, { maxLength: 20 }), fc.infiniteStream(fc.nat()), (changes, keys) => {
        const withRevisions = changes.map((c, i) => (c.admit ? admit(c.peer, i + 1) : evict(c.peer, i + 1)))
        const latest = new Map<string, boolean>()
        for (const c of changes) latest.set(c.peer, c.admit)
        const expected = [...latest]
          .filter(([, present]) => present)
          .map(([peer]) => peer)
          .sort()
        const shuffled = withRevisions
          .map((c) => ({ c, key: keys.next().value as number }))
          .sort((x, y) => x.key - y.key)
          .map(({ c }) => c)
        const view = createMembershipView({ members: [] })
        // Split the arrivals over two rounds: the outcome must not depend on where the boundary falls.
        const half = shuffled.length >> 1
        for (const c of shuffled.slice(0, half)) view.stage(c)
        view.advanceTo(1)
        for (const c of shuffled.slice(half)) view.stage(c)
        view.advanceTo(2)
        return JSON.stringify(ids(view.current())) === JSON.stringify(expected)
      }),
    )
  })
})
