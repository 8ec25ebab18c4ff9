/**
 * What a config must satisfy before any node starts (`phalanx local`, an experiment's cells)
 * or a node runs: the cluster's bounds.
 */
import { rules } from '@phalanx/aggregation'
import type { ClusterConfig } from './config.js'
import { ClusterBoundError } from './errors.js'
import { replicationMode } from './replication/registry.js'
import { ruleInputs } from './roles.js'

/**
 * Refuses, at start-up, a cluster the protocol cannot protect: F < N and f < n, the
 * replication mode's own bounds (the model median's N−F ≥ 2F+1, …), and the rule's bound on the
 * n−f gradients a server aggregates (of which up to f may be Byzantine).
 */
export function checkClusterBounds(config: ClusterConfig): void {
  const N = config.servers
  const F = config.byzantineServers
  const n = config.workers
  const f = config.byzantineWorkers
  if (F >= N) throw new ClusterBoundError('more Byzantine servers than servers', 'F < N', { N, F })
  if (f >= n) throw new ClusterBoundError('more Byzantine workers than workers', 'f < n', { n, f })
  replicationMode(config.replication).checkBounds({ N, F, n, f })
  const rule = rules[config.rule]
  const inputs = n - f
  const seen = ruleInputs(config, inputs)
  if (!rule.bound(seen, f)) {
    throw new ClusterBoundError(
      `rule ${config.rule} cannot tolerate f Byzantine among the n−f gradients a server aggregates`,
      `${rule.boundText} with n := n−f${seen !== inputs ? ' buckets' : ''}`,
      { n, f, 'n−f': inputs },
    )
  }
}
