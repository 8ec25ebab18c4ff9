import type { DeliveredVector, NetNode } from '@phalanx/net'
import { describe, expect, it } from 'vitest'
import { netTransport } from '../src/net-transport.js'

/** Just the part of a net node the adapter reads: delivered vectors and equivocation flags. */
function fakeNode(equivocators: ReadonlySet<string>) {
  const listeners = new Map<string, Array<(detail: unknown) => void>>()
  const delivered: DeliveredVector[] = []
  let round = 0
  const node = {
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
  return { node: node as unknown as NetNode, deliver }
}

describe('netTransport catch-up', () => {
  it.each([
    ['no equivocator', new Set<string>(), 3],
    // Peers that saw one version went on with it; this node saw both. It must still be able to
    // follow them, or with N−F honest servers the cluster waits on it for good.
    ['an equivocator whose first version was delivered', new Set(['s0']), 3],
  ])('finds a later round with a quorum of models (%s)', (_case, equivocators, quorum) => {
    const { node, deliver } = fakeNode(equivocators)
    const transport = netTransport(node, { byzantineServers: 1 })
    for (const sender of ['s0', 's1', 's2']) deliver(sender, 7)
    const ahead = transport.ahead?.('model', 5, quorum)
    expect(ahead?.round).toBe(7)
    expect(ahead?.vectors.map((v) => v.sender).sort()).toEqual(['s0', 's1', 's2'])
  })

  it('does not catch up to a round without a quorum, nor to the current one', () => {
    const { node, deliver } = fakeNode(new Set())
    const transport = netTransport(node, { byzantineServers: 1 })
    for (const sender of ['s0', 's1']) deliver(sender, 7)
    for (const sender of ['s0', 's1', 's2']) deliver(sender, 5)
    expect(transport.ahead?.('model', 5, 3)).toBeUndefined()
  })
})
