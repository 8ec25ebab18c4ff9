/**
 * How the servers are replicated: the one table of the modes' names and what each does. The
 * config schema and `--help` take their choices from it.
 */
export const replicationModes = {
  median: 'the default protocol: each server takes the median of N−F server models',
  'no-anti-drift': 'N servers, each applies its own aggregate to its own model, no median',
  vanilla: 'one server, plain averaging, no median exchange (the non-robust baseline)',
  smr: 'the state-machine-replication baseline: workers append gradients to a JetStream stream replicated smrReplicas times (Raft) at smrNatsUrl; every server replica applies the same n−f first gradients of each round in stream order, so replicas never exchange models',
} as const satisfies Record<string, string>

export type ReplicationMode = keyof typeof replicationModes
export const replicationModeNames = Object.keys(replicationModes) as readonly ReplicationMode[]
