/**
 * What one scenario did to the honest servers, read from the reports their processes sent over
 * IPC since the scenario began: rounds skipped, test accuracy, the largest distance between two
 * honest servers' models, messages rejected, and whether anything a server reported complete was
 * lost (a server's completed rounds must only go up, across restarts, and the rounds the honest
 * servers completed between them must have no hole).
 */
import type { ChaosCluster, RoundReport } from './cluster.js'

export interface ScenarioMeasurement {
  /** The cluster's newest honest round when the scenario began and ended. */
  fromRound: number
  toRound: number
  /** Rounds honest servers skipped (catching up after a restart or a partition), summed. */
  roundsLost: number
  /** Mean of the honest servers' last evaluated test accuracy, null when none evaluated. */
  finalAccuracy: number | null
  maxHonestDrift: number
  /** Messages rejected by honest nodes during the scenario, by reason. */
  rejected: Record<string, number>
  /** Completed rounds never regress on any honest server, and the honest union has no hole. */
  nothingLost: boolean
  lossProblems: string[]
}

interface Mark {
  /** Per node: how many round reports each incarnation had when the scenario began. */
  seen: Map<string, number[]>
  fromRound: number
}

/** Reports of `nodeId` since `mark`, with the rejection counts each incarnation had at the mark. */
function since(cluster: ChaosCluster, mark: Mark, nodeId: string) {
  const counts = mark.seen.get(nodeId) ?? []
  return cluster.node(nodeId).incarnations.map((incarnation, i) => {
    const before = counts[i] ?? 0
    return {
      before: incarnation.rounds[before - 1],
      reports: incarnation.rounds.slice(before),
    }
  })
}

export class ScenarioMeter {
  readonly #cluster: ChaosCluster
  readonly #honestServers: readonly string[]
  readonly #mark: Mark

  constructor(cluster: ChaosCluster, honestServers: readonly string[]) {
    this.#cluster = cluster
    this.#honestServers = honestServers
    const seen = new Map<string, number[]>()
    for (const node of cluster.nodes.values()) {
      seen.set(
        node.nodeId,
        node.incarnations.map((incarnation) => incarnation.rounds.length),
      )
    }
    this.#mark = { seen, fromRound: Math.max(-1, ...honestServers.map((id) => cluster.latestRound(id))) }
  }

  /** The honest servers' peer ids: drift counts only distances between two of them. */
  #honestPeers(): Set<string> {
    return new Set(this.#honestServers.map((id) => this.#cluster.node(id).peerId))
  }

  /** Largest honest-to-honest model distance reported since the mark (optionally from a round on). */
  maxHonestDrift(fromRound = -1): number {
    const peers = this.#honestPeers()
    let max = 0
    for (const id of this.#honestServers) {
      for (const { reports } of since(this.#cluster, this.#mark, id)) {
        for (const report of reports) {
          if (report.round < fromRound) continue
          for (const [peer, distance] of Object.entries(report.modelDistances ?? {})) {
            // A non-finite distance is divergence; it must fail the bound, not vanish from a max.
            if (peers.has(peer)) max = Number.isFinite(distance) ? Math.max(max, distance) : Infinity
          }
        }
      }
    }
    return max
  }

  /** Whether some honest server received `nodeId`'s model for a round ≥ `fromRound` (it contributes). */
  contributed(nodeId: string, fromRound: number): boolean {
    const peerId = this.#cluster.node(nodeId).peerId
    return this.#honestServers
      .filter((id) => id !== nodeId)
      .some((id) =>
        since(this.#cluster, this.#mark, id).some(({ reports }) =>
          reports.some((r) => r.round >= fromRound && r.modelDistances?.[peerId] !== undefined),
        ),
      )
  }

  /**
   * Rounds from `fromRound` (the honest servers' newest when the restarted `nodeId` listened) to
   * the first later round in which an honest server other than it received its model (a server)
   * or aggregated its gradient (a worker): the signal that it contributes again. Undefined while
   * it has not.
   */
  rejoinRounds(nodeId: string, fromRound: number): number | undefined {
    const node = this.#cluster.node(nodeId)
    let first: number | undefined
    for (const id of this.#honestServers) {
      if (id === nodeId) continue
      for (const { reports } of since(this.#cluster, this.#mark, id)) {
        for (const r of reports) {
          if (r.round <= fromRound || (first !== undefined && r.round >= first)) continue
          const counted =
            node.role === 'server'
              ? r.modelDistances?.[node.peerId] !== undefined
              : (r.gradientSenders?.includes(node.peerId) ?? false)
          if (counted) first = r.round
        }
      }
    }
    return first === undefined ? undefined : first - fromRound
  }

  rejected(nodeIds: readonly string[]): Record<string, number> {
    const total: Record<string, number> = {}
    for (const id of nodeIds) {
      for (const { before, reports } of since(this.#cluster, this.#mark, id)) {
        const last = reports.at(-1)
        if (last === undefined) continue
        for (const [reason, count] of Object.entries(last.rejectedSinceStart)) {
          const delta = count - (before?.rejectedSinceStart[reason] ?? 0)
          if (delta > 0) total[reason] = (total[reason] ?? 0) + delta
        }
      }
    }
    return total
  }

  measure(honestNodes: readonly string[]): ScenarioMeasurement {
    const problems: string[] = []
    let roundsLost = 0
    const union = new Set<number>()
    const accuracies: number[] = []
    for (const id of this.#honestServers) {
      const all: RoundReport[] = []
      // The newest round reported before the mark, by whichever incarnation: a dead incarnation's
      // last report is not where the live one stood (taking the first incarnation's charged a
      // restart's catch-up to every later scenario again).
      let previous: number | undefined
      for (const { before, reports } of since(this.#cluster, this.#mark, id)) {
        if (before !== undefined) previous = Math.max(previous ?? -Infinity, before.round)
        all.push(...reports)
      }
      for (const report of all) {
        if (previous !== undefined && report.round <= previous) {
          problems.push(`${id} reported round ${report.round} after round ${previous}`)
        }
        if (previous !== undefined && report.round > previous + 1) roundsLost += report.round - previous - 1
        previous = report.round
        union.add(report.round)
      }
      const evaluated = all.filter((r) => r.accuracy !== undefined).at(-1)
      if (evaluated?.accuracy !== undefined) accuracies.push(evaluated.accuracy)
    }
    // Rounds up to the mark's newest were completed before the scenario (a straggler may report
    // one of them now); a hole counts only where the scenario's own rounds are.
    const rounds = [...union].filter((round) => round >= this.#mark.fromRound).sort((a, b) => a - b)
    for (let i = 1; i < rounds.length; i++) {
      if (rounds[i]! !== rounds[i - 1]! + 1) {
        problems.push(`no honest server completed rounds ${rounds[i - 1]! + 1}–${rounds[i]! - 1}`)
      }
    }
    return {
      fromRound: this.#mark.fromRound,
      toRound: rounds.at(-1) ?? this.#mark.fromRound,
      roundsLost,
      finalAccuracy:
        accuracies.length === 0 ? null : accuracies.reduce((a, b) => a + b, 0) / accuracies.length,
      maxHonestDrift: this.maxHonestDrift(),
      rejected: this.rejected(honestNodes),
      nothingLost: problems.length === 0,
      lossProblems: problems,
    }
  }
}
