/**
 * The scenario meter's arithmetic on made-up incarnations (no processes): rounds lost are the
 * holes in what a server reported during the scenario, counted from where it stood at the mark,
 * and a restart before the mark is not charged again to a later scenario.
 */
import { describe, expect, it } from 'vitest'
import type { ChaosCluster, ChaosNode, RoundReport } from './cluster.js'
import { ScenarioMeter } from './measure.js'

interface Fake {
  nodes: Map<string, ChaosNode>
  add(nodeId: string, ...incarnations: number[][]): void
  report(nodeId: string, round: number): void
  cluster: ChaosCluster
}

function fakeCluster(): Fake {
  const nodes = new Map<string, ChaosNode>()
  const report = (round: number) => ({ round, rejectedSinceStart: {} }) as unknown as RoundReport
  const cluster = {
    nodes,
    node: (id: string) => nodes.get(id)!,
    latestRound: (id: string) =>
      Math.max(-1, ...nodes.get(id)!.incarnations.flatMap((i) => i.rounds.map((r) => r.round))),
  } as unknown as ChaosCluster
  return {
    nodes,
    cluster,
    add(nodeId, ...incarnations) {
      nodes.set(nodeId, {
        nodeId,
        role: 'server',
        peerId: `peer-${nodeId}`,
        port: 0,
        keyFile: '',
        logFile: '',
        incarnations: incarnations.map((rounds) => ({ rounds: rounds.map(report) })) as never,
      })
    },
    report(nodeId, round) {
      ;(nodes.get(nodeId)!.incarnations.at(-1)!.rounds as RoundReport[]).push(report(round))
    },
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('ScenarioMeter rounds lost', () => {
  it.each([
    {
      name: 'no hole',
      incarnations: [range(0, 10)],
      during: [11, 12, 13],
      lost: 0,
      hole: false,
    },
    {
      name: 'a catch-up during the scenario',
      incarnations: [range(0, 10)],
      during: [11, 15, 16],
      lost: 3,
      // One honest server only: nobody completed 12–14.
      hole: true,
    },
    {
      name: 'restarted before the mark, caught up before it: nothing charged',
      incarnations: [range(0, 10), range(20, 30)],
      during: [31, 32],
      lost: 0,
      hole: false,
    },
    {
      name: 'restarted before the mark, reporting only during the scenario',
      incarnations: [range(0, 10), []],
      during: [11, 12],
      lost: 0,
      hole: false,
    },
  ])('$name: $lost', ({ incarnations, during, lost, hole }) => {
    const fake = fakeCluster()
    fake.add('server-1', ...incarnations)
    const meter = new ScenarioMeter(fake.cluster, ['server-1'])
    for (const round of during) fake.report('server-1', round)
    const measured = meter.measure([])
    expect(measured.roundsLost).toBe(lost)
    expect(measured.nothingLost).toBe(!hole)
  })

  it('a restart during the scenario that comes back behind is a regression', () => {
    const fake = fakeCluster()
    fake.add('server-1', range(0, 10), range(20, 30))
    const meter = new ScenarioMeter(fake.cluster, ['server-1'])
    fake.nodes.get('server-1')!.incarnations.push({ rounds: [] } as never)
    fake.report('server-1', 25)
    const measured = meter.measure([])
    expect(measured.nothingLost).toBe(false)
    expect(measured.lossProblems[0]).toMatch(/reported round 25 after round 30/)
  })
})
