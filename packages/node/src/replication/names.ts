/**
 * The replication modes' names and one-line descriptions, with no imports: the config schema's
 * enum and `--help` read them here, while the modes themselves (`registry.ts`) import the config
 * type, so the config cannot import them without a cycle. `registry.ts` holds one mode per name
 * here, checked by the compiler.
 */
export const replicationModeDescriptions = {
  median: 'the default protocol, each server takes the median of N−F server models (anti-drift)',
  'no-anti-drift': 'N servers, each applies its own aggregate to its own model, no median',
  vanilla: 'one server, no median exchange (the non-robust baseline)',
  smr: 'the state-machine-replication baseline: workers append gradients to a JetStream stream replicated `smrReplicas` times (Raft) at `smrNatsUrl`; every server replica applies the same n−f first gradients of each round in stream order, so replicas never exchange models',
} as const

export type ReplicationModeName = keyof typeof replicationModeDescriptions

/** The modes' names, the default (`median`) first. */
export const replicationModeNames = Object.keys(replicationModeDescriptions) as [
  ReplicationModeName,
  ...ReplicationModeName[],
]
