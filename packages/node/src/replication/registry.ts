/**
 * The replication modes, by the name the config's `replication` field takes (`names.ts`): what
 * each mode does. The node process looks its mode up here and knows none by name.
 */
import { median } from './median.js'
import type { ReplicationMode } from './mode.js'
import type { ReplicationModeName } from './names.js'
import { noAntiDrift } from './no-anti-drift.js'
import { smr } from './smr.js'
import { vanilla } from './vanilla.js'

export const replicationModeRegistry: Readonly<Record<ReplicationModeName, ReplicationMode>> = {
  median,
  'no-anti-drift': noAntiDrift,
  vanilla,
  smr,
}

export function replicationMode(name: ReplicationModeName): ReplicationMode {
  return replicationModeRegistry[name]
}
