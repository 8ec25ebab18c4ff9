import type { DeliveredVector, NetNode } from '@phalanx/net'
import { describe, expect, it } from 'vitest'
import { netTransport } from '../src/net-transport.js'

/**
 * Just the part of a net node the adapter reads: delivered vectors, equivocation flags, and the
 * round `clusterRound` gives for each quorum (the net node's member-server evidence).
 */
function fakeNode(equivocators: ReadonlySet<string>, clusterRounds: Record<number, number> = {}) {
  const listeners = new Map<string, Array<(detail: unknown) => void>>()
  const delivered: DeliveredVector[] = []
  let round = 0
  const node = {
    clusterRound: (quorum: number) => clusterRounds[quorum],
    peerId: 'self',
    get round() {
      return round
    },
    on: (event: string, listener: (detail: unknown) => void) => {
      listeners.set(event, [...(listeners.get(event) ?? []), listener])
      return () => {}
    },
    received: (kind: string, r: number) => delivered.filter((v) => v.kind === kind && v.round === r),
    isEquivocator: (_kind: string, _round: number, sender: string) => equivocators.has(sender),
    setRound: (r: number) => {
      round = r
    },
    rejected: () => ({}),
  }
  const deliver = (sender: string, r: number) => {
    const vector: DeliveredVector = {
      kind: 'model',
      round: r,
      sender,
      role: 'server',
      vector: new Float32Array([r]),
      hash: `${sender}/${r}`,
      self: false,
    }
    delivered.push(vector)
    for (const listener of listeners.get('vector') ?? []) listener(vector)
  }
  const emit = (event: string, detail: unknown) => {
    for (const listener of listeners.get(event) ?? []) listener(detail)
  }
  return { node: node as unknown as NetNode, deliver, emit, round: () => round }
}

describe('netTransport catch-up', () => {
  it.each([
    ['no equivocator', new Set<string>(), 3],
    // Peers that saw one version went on with it; this node saw both. It must still be able to
    // follow them, or with N−F honest servers the cluster waits on it for good.
    ['an equivocator whose first version was delivered', new Set(['s0']), 3],
  ])('finds a later round with a quorum of models (%s)', (_case, equivocators, quorum) => {
    const { node, deliver } = fakeNode(equivocators)
    const transport = netTransport(node, { serverQuorum: 3 })
    for (const sender of ['s0', 's1', 's2']) deliver(sender, 7)
    const ahead = transport.ahead?.('model', 5, quorum)
    expect(ahead?.round).toBe(7)
    expect(ahead?.vectors.map((v) => v.sender).sort()).toEqual(['s0', 's1', 's2'])
  })

  it('does not catch up to a round without a quorum, nor to the current one', () => {
    const { node, deliver } = fakeNode(new Set())
    const transport = netTransport(node, { serverQuorum: 3 })
    for (const sender of ['s0', 's1']) deliver(sender, 7)
    for (const sender of ['s0', 's1', 's2']) deliver(sender, 5)
    expect(transport.ahead?.('model', 5, 3)).toBeUndefined()
  })

  it.each<{ name: string; clusterRounds: Record<number, number>; expected: number }>([
    // N = 4, F = 1: the window moves to where N − F = 3 member servers are, and only there.
    { name: 'N−F member servers at round 40', clusterRounds: { 3: 40 }, expected: 40 },
    { name: 'only F+1 member servers ahead', clusterRounds: { 2: 2 ** 50 }, expected: 0 },
    { name: 'no member server heard', clusterRounds: {}, expected: 0 },
    { name: 'N−F at the next round only (within the window)', clusterRounds: { 3: 1 }, expected: 0 },
  ])(
    'moves a lagging window only to the round N−F member servers signed: $name',
    ({ clusterRounds, expected }) => {
      const { node, emit, round } = fakeNode(new Set(), clusterRounds)
      const transport = netTransport(node, { serverQuorum: 3 })
      // What the old adapter trusted: F+1 announcements claiming the server role. The net node
      // now emits only members' announcements with their member-set role, and the adapter no
      // longer reads them for the window at all.
      for (const peerId of ['x1', 'x2', 'x3', 'x4'])
        emit('member', { peerId, role: 'server', multiaddrs: [], round: 2 ** 50 })
      expect(transport.ahead?.('model', 0, 3)).toBeUndefined()
      expect(round()).toBe(expected)
    },
  )
})
