/**
 * Which run command honours which config field: the one place that says it. `--help` lists a
 * command's fields from here, and a command refuses a field it does not honour (from a flag, the
 * environment or a file) instead of ignoring it. A field is in one scope, and a scope names the
 * commands that use it; a field the table does not name is a cluster field (every process of a
 * cluster reads it, `simulate` has no cluster), so a new field of the schema needs no change here
 * unless it belongs to the single-process run or to one node alone.
 */
import { attackStrengthFields, type ClusterConfig, type ClusterConfigInput } from '@phalanx/node'

export const runCommandNames = ['local', 'simulate', 'server', 'worker'] as const
export type RunCommand = (typeof runCommandNames)[number]

/**
 * The scopes: the commands that honour their fields, the `--help` heading they are listed under,
 * and what a command that does not honour one says when it refuses it.
 */
export const scopes = {
  training: {
    commands: ['local', 'simulate', 'server', 'worker'],
    heading: 'Training (model, data, rule, workers and their attack)',
    // The single-process reference trains with exactly these: they are what it shares with a cluster.
    refusal: 'every run command honours it',
  },
  servers: {
    commands: ['local', 'simulate', 'server', 'worker'],
    heading: 'Servers (how many, their attack, replication and model exchange)',
    // simulate runs the N servers too (lab/src/server-replicas.ts), and refuses itself the one
    // replication mode it has no single-process form of.
    refusal: 'every run command honours it',
  },
  cluster: {
    commands: ['local', 'server', 'worker'],
    heading: 'Cluster (network, protocol timing, control plane)',
    refusal: 'simulate runs every node in one process, with no network or control plane',
  },
  node: {
    commands: ['server', 'worker'],
    heading: 'This node (identity, addresses, ops endpoint)',
    refusal:
      'local gives every node it starts its own id, key, addresses and member set, and turns the ops endpoint off (each node would bind the same port)',
  },
  serverState: {
    commands: ['server'],
    heading: 'Server state',
    refusal:
      'only a server keeps state on disk (a worker restarts from the round its servers announce), and local starts every server afresh with new keys',
  },
  output: {
    // A lone server or worker writes its own summary and report (lab/src/node-run.ts).
    commands: ['local', 'simulate', 'server', 'worker'],
    heading: 'Output',
    refusal: 'every run command honours it',
  },
} as const satisfies Record<string, { commands: readonly RunCommand[]; heading: string; refusal: string }>
export type Scope = keyof typeof scopes

/** The worker attacks' strengths, from the attack registry: the simulation runs the attacks too. */
const strengthScopes = Object.fromEntries(
  Object.values(attackStrengthFields).map((field) => [field, 'training' as const]),
)

/** Every field that is not a cluster field; the rest are (see the module comment). */
const fieldScopes: Partial<Record<keyof ClusterConfig, Scope>> = {
  ...strengthScopes,
  workers: 'training',
  byzantineWorkers: 'training',
  workerAttack: 'training',
  hiddenShiftSign: 'training',
  rule: 'training',
  preAggregation: 'training',
  model: 'training',
  dataset: 'training',
  backend: 'training',
  datasetPath: 'training',
  dimension: 'training',
  rounds: 'training',
  seed: 'training',
  learningRate: 'training',
  batchSize: 'training',
  momentum: 'training',
  evalEvery: 'training',
  servers: 'servers',
  byzantineServers: 'servers',
  serverAttack: 'servers',
  replication: 'servers',
  exchangeEvery: 'servers',
  nodeId: 'node',
  members: 'node',
  listen: 'node',
  bootstrap: 'node',
  keyFile: 'node',
  opsPort: 'node',
  opsHost: 'node',
  stateDir: 'serverState',
  out: 'output',
}

export function scopeOf(field: string): Scope {
  return fieldScopes[field as keyof ClusterConfig] ?? 'cluster'
}

export function honours(command: RunCommand, field: string): boolean {
  return (scopes[scopeOf(field)].commands as readonly RunCommand[]).includes(command)
}

/** The commands that honour `field`, for a refusal to say where it belongs. */
export function commandsHonouring(field: string): readonly RunCommand[] {
  return scopes[scopeOf(field)].commands
}

/**
 * Defaults of a command that differ from the schema's. A lone `server` or `worker` is what a
 * deployment runs: one started without a word about attacks must not attack, even when it is one
 * of the first F (or f) node ids that the default cluster makes Byzantine. F and f keep their
 * defaults: they are the tolerance the quorums are sized for, not an attack. `local` and
 * `simulate` keep the demonstration cluster's attacks, so the two stay comparable.
 */
export const commandDefaults: Record<RunCommand, Partial<ClusterConfigInput>> = {
  local: {},
  simulate: {},
  server: { serverAttack: 'none', workerAttack: 'none' },
  worker: { serverAttack: 'none', workerAttack: 'none' },
}
