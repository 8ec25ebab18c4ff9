/**
 * The baseline a run is compared with in its report: the same config and seed without what is
 * being measured. `no-attack` drops every Byzantine node (F = f = 0), `vanilla` keeps the
 * workers and their attack but has one honest server and no model exchange (the non-robust
 * replication), `simulate` is the very config in one process (a cluster run against its
 * reference). A baseline always runs as a simulation: deterministic for its seed, and cheap
 * beside the cluster it is compared with.
 */
import type { ClusterConfig } from '@phalanx/node'
import type { Logger } from 'pino'
import type { BaselineRun } from './report-html.js'
import { runSimulation } from './simulate.js'

export const baselineKinds = ['no-attack', 'vanilla', 'simulate'] as const
export type BaselineKind = (typeof baselineKinds)[number]

/** The config of `kind`'s baseline for `config` (same seed, rule, model, data, rounds). */
export function baselineConfig(config: ClusterConfig, kind: BaselineKind): ClusterConfig {
  switch (kind) {
    case 'no-attack':
      return { ...config, byzantineServers: 0, byzantineWorkers: 0, byzantineNodeIds: [] }
    case 'vanilla':
      return {
        ...config,
        replication: 'vanilla',
        servers: 1,
        byzantineServers: 0,
        byzantineNodeIds: config.byzantineNodeIds.filter((id) => !id.startsWith('server-')),
      }
    case 'simulate':
      return { ...config }
  }
}

const labels: Record<BaselineKind, string> = {
  'no-attack': 'no attack, same seed (simulated)',
  vanilla: 'vanilla, same seed (simulated)',
  simulate: 'same config (simulated)',
}

/** Runs the baseline of `config` as a simulation, for `writeRunReport`'s `detail.baseline`. */
export async function runBaseline(
  config: ClusterConfig,
  kind: BaselineKind,
  init: { log: Logger },
): Promise<BaselineRun> {
  const { out: _out, ...rest } = baselineConfig(config, kind)
  const { rows } = await runSimulation(rest as ClusterConfig, { log: init.log.child({ baseline: kind }) })
  return { label: labels[kind], rows }
}
