import { describe, expect, it } from 'vitest'
import { createMembership } from '../src/index.js'

describe('membership', () => {
  it('answers roles and counts, and is closed by default', () => {
    const m = createMembership({
      members: [
        ['s1', 'server'],
        ['s2', 'server'],
        ['w1', 'worker'],
      ],
    })
    expect(m.closed).toBe(true)
    expect(m.roleOf('s1')).toBe('server')
    expect(m.roleOf('nobody')).toBeUndefined()
    expect([m.count(), m.count('server'), m.count('worker')]).toEqual([3, 2, 1])
  })

  it('replaces the whole set and notifies each change', () => {
    const m = createMembership({ members: [['a', 'worker']], closed: false })
    const changes: number[] = []
    const off = m.onChange(() => changes.push(m.count()))
    m.replace([
      ['b', 'server'],
      ['c', 'worker'],
    ])
    expect(m.has('a')).toBe(false)
    m.add('d', 'worker')
    m.remove('b')
    m.remove('missing') // no change, no notification
    m.setClosed(true)
    off()
    m.add('e', 'worker')
    expect(changes).toEqual([2, 3, 2, 2])
    expect([...m.members().keys()].sort()).toEqual(['c', 'd', 'e'])
  })

  it('hands out a copy of the members, not its own map', () => {
    const m = createMembership({ members: [['a', 'worker']] })
    const copy = m.members() as Map<string, string>
    copy.set('b', 'server')
    expect(m.has('b')).toBe(false)
  })
})
