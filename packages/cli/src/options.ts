/**
 * Flags generated from the one config schema, so a field added to the schema is a flag, an
 * environment variable and a YAML key at once, validated in one place.
 */
import {
  type ClusterConfig,
  clusterConfigSchema,
  configFromEnv,
  configFromFile,
  flagName,
  listFields,
  resolveConfig,
} from '@phalanx/node'
import type { Command } from 'commander'

const fieldNames = Object.keys(clusterConfigSchema.shape) as (keyof ClusterConfig)[]

/** Short descriptions shown by `--help`; every schema field has a flag even without one. */
const descriptions: Partial<Record<keyof ClusterConfig, string>> = {
  cluster: 'cluster id (scopes topics and checkpoints)',
  servers: 'number of parameter servers N',
  byzantineServers: 'Byzantine servers F (N−F ≥ 2F+1 is required)',
  serverAttack: 'what the Byzantine servers do',
  workers: 'number of workers n',
  byzantineWorkers: 'Byzantine workers f (the rule bound applies to n−f inputs)',
  workerAttack: 'what the Byzantine workers do',
  signFlipScale: 'sign-flip: Byzantine workers send −scale·mean(honest)',
  gaussianSigma: 'gaussian: σ of the noise per coordinate',
  ipmEpsilon: 'ipm: Byzantine workers send −ε·mean(honest)',
  alieZ: 'alie: z of mean − z·std (default: the paper formula)',
  hiddenShiftScale: 'hidden-shift: one coordinate moved by scale·√(Σ Var)',
  hiddenShiftSign: 'hidden-shift: against-mean (default) | negative (SGD raises the parameter) | positive',
  rule: 'gradient aggregation rule of the servers',
  preAggregation: 'comma-separated pre-aggregators applied before the rule (nnm,bucketing,arc,clip)',
  replication: 'median (default) | no-anti-drift | vanilla | smr (state-machine-replication baseline)',
  exchangeEvery: 'median model exchange every T rounds',
  model: 'model to train',
  dataset: 'dataset to train on',
  datasetPath: 'directory of the Fashion-MNIST IDX files',
  dimension: 'input dimension d of the synthetic dataset and the linear model',
  rounds: 'training rounds',
  seed: 'seed of every random choice',
  learningRate: 'server learning rate η',
  batchSize: 'worker batch size',
  momentum: 'worker momentum (0 disables)',
  evalEvery: 'evaluate honest accuracy every k rounds',
  quorumTimeoutMs: 'how long to wait for a quorum before logging a stall',
  roundWindow: 'accept messages up to W rounds ahead',
  epoch:
    "cluster incarnation signed into every data-plane message; bump it when the whole cluster restarts so last run's messages are refused",
  out: 'directory for summary.json, rounds.csv and report.html',
  nodeId: 'this node id (server-<i> or worker-<i>)',
  byzantineNodeIds:
    'comma-separated node ids that behave Byzantine (default: the first F servers and f workers)',
  members: 'comma-separated <nodeId>:<peerId> member set (without NATS)',
  operatorPublicKey:
    "the operator's Ed25519 public key (phalanx keygen prints it); without it every admit, evict and chaos record is refused",
  workerAdmission:
    'closed | open: whether workers may register themselves (as workers, signed by their peer key)',
  backend: 'TensorFlow.js backend: auto | tfjs-node | wasm | cpu',
  listen: 'comma-separated libp2p listen multiaddrs',
  bootstrap: 'comma-separated multiaddrs to dial at start (DNS names work)',
  keyFile: 'peer key file (created when missing)',
  natsUrl: 'NATS URL of the control plane (absent: local mode)',
  natsCredsFile: 'NATS creds file (user JWT + nkey seed); instead of a password in the URL',
  natsNkeySeedFile: 'file holding the NATS user nkey seed (SU…); instead of a password in the URL',
  natsTlsCaFile: 'CA certificate (PEM) to verify the NATS server with; turns TLS on',
  natsTlsCertFile: 'client certificate (PEM) for a NATS server that verifies clients',
  natsTlsKeyFile: 'private key (PEM) of the NATS client certificate',
  smrNatsUrl: 'comma-separated NATS URLs of the JetStream cluster holding the SMR gradient log',
  smrReplicas: 'replicas of the SMR gradient stream (Raft; 3 survives one crashed NATS server)',
  natsReplicas: 'replicas of every JetStream bucket a node creates (3 with three NATS servers; 1 locally)',
  opsPort: 'port of /metrics /healthz /readyz (0: off)',
  opsHost: 'address the ops endpoints bind to (default all interfaces)',
  chaos: 'obey chaos commands (true/false)',
}

export function addConfigOptions(command: Command): Command {
  command.option('--config <file>', 'YAML config file (flags and PHALANX_* variables override it)')
  for (const field of fieldNames) {
    command.option(`--${flagName(field)} <value>`, descriptions[field] ?? field)
  }
  return command
}

/** file < environment < flags, validated by the schema. */
export function configFromOptions(options: Record<string, unknown>, env: NodeJS.ProcessEnv): ClusterConfig {
  const fromFlags: Record<string, unknown> = {}
  for (const field of fieldNames) {
    const value = options[field]
    if (value === undefined) continue
    fromFlags[field] = listFields.has(field) ? String(value).split(',').filter(Boolean) : value
  }
  const fromFile = typeof options.config === 'string' ? configFromFile(options.config) : {}
  return resolveConfig(fromFile, configFromEnv(env), fromFlags)
}
