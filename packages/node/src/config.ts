/**
 * The one configuration schema of a Phalanx cluster and its nodes. The same schema reads a
 * YAML file, `PHALANX_*` environment variables and command-line flags (in that order of
 * precedence, flags last), so a container, a test and a person at a terminal all go through
 * one validation that names the field, the value and what is allowed.
 */
import { readFileSync } from 'node:fs'
import { preAggregatorNames, ruleNames } from '@phalanx/aggregation'
import { workerAttackDefaults } from '@phalanx/attacks'
import { backendNames, datasetNames, modelNames } from '@phalanx/model'
import {
  encrypterDescriptions,
  encrypterNames,
  netDefaults,
  payloadPlaneDescriptions,
  payloadPlaneNames,
} from '@phalanx/net'
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml'
import { z } from 'zod'
import { hiddenShiftSigns, serverBehaviourNames, workerBehaviourNames } from './byzantine.js'
import {
  allowedText,
  closestName,
  didYouMean,
  type FieldShape,
  fieldShape,
  issueWords,
} from './config-words.js'
import { ConfigError } from './errors.js'
import { replicationModeNames } from './replication/names.js'

/*
 * The choices of the named fields come from the registries that define them (rules and
 * pre-aggregators in @phalanx/aggregation, models, datasets and backends in @phalanx/model,
 * Byzantine behaviours in byzantine.ts, replication modes in replication/names.ts, connection
 * encrypters in @phalanx/net), so a name
 * added there is a config value, an environment value and a `--help` choice at once.
 */

/** TensorFlow.js backends: auto = tfjs-node when installed, else WASM, else pure JS. */
export const backendChoices = ['auto', ...backendNames] as const

/** The choices of `workerAttack` and `serverAttack`: the behaviours of byzantine.ts. */
export const workerAttackNames = workerBehaviourNames
export const serverAttackNames = serverBehaviourNames

/** The most rounds a run may have; fields counted in rounds (every k rounds) share it. */
const maxRounds = 1_000_000_000
/** The most servers a cluster may have; F is bounded through it. */
const maxServers = 64
const maxWorkers = 1024

/**
 * Upper bound of every numeric field, with the reason for it (the error of a value past it
 * quotes the reason, and the tests walk this table). A bound is where a larger value stops
 * meaning anything or starts costing unbounded memory or time, not a tuning hint.
 */
export const configBounds = {
  servers: {
    max: maxServers,
    why: 'every server sends its model to every other each round (N² model transfers); 64 is 16 times the default cluster',
  },
  byzantineServers: {
    max: Math.floor((maxServers - 1) / 3),
    why: `N−F ≥ 2F+1 with at most ${maxServers} servers`,
  },
  workers: {
    max: maxWorkers,
    why: 'every server holds every worker’s gradient of a round and per-peer state for each: 1,024 MNIST-MLP gradients are about 400 MB',
  },
  byzantineWorkers: { max: maxWorkers - 1, why: `f < n with at most ${maxWorkers} workers` },
  signFlipScale: {
    max: 1e6,
    why: 'a larger scale is no stronger against a robust rule, only closer to float32 overflow (3.4e38)',
  },
  gaussianSigma: {
    max: 1e6,
    why: 'a larger σ is no stronger against a robust rule, only closer to float32 overflow (3.4e38)',
  },
  ipmEpsilon: {
    max: 1e6,
    why: 'a larger ε is no stronger against a robust rule, only closer to float32 overflow (3.4e38)',
  },
  alieZ: {
    min: -100,
    max: 100,
    why: 'Φ⁻¹ of any probability a double holds is within ±38.5: past |z| = 100 the vectors no longer hide in the honest spread',
  },
  hiddenShiftScale: {
    max: 1e6,
    why: 'a larger shift is no longer hidden, only closer to float32 overflow (3.4e38)',
  },
  exchangeEvery: { max: maxRounds, why: 'more rounds than a run may have means never exchanging' },
  dimension: {
    max: 16 * 1024 * 1024 - 1,
    why: 'the linear model has d+1 float32 parameters and a vector travels as one payload of at most the data plane’s maxPayloadBytes (64 MiB)',
  },
  rounds: {
    max: maxRounds,
    why: 'round numbers are signed into every message and padded to 12 digits in checkpoint names; 10⁹ one-second rounds are 31 years',
  },
  seed: {
    max: 0xffff_ffff,
    why: 'the seeded generators keep 32 bits (seed >>> 0): a larger seed would silently repeat a smaller one',
  },
  learningRate: {
    max: 100,
    why: 'two orders of magnitude above the tuned default (1): a larger η is a typo, not a schedule',
  },
  batchSize: {
    max: 65_536,
    why: 'a batch is one tensor: 65,536 MNIST images are 206 MB of float32 inputs, the most a worker’s memory request leaves room for',
  },
  momentum: { max: 0.999, why: 'momentum 1 never forgets a gradient, so the model never settles' },
  evalEvery: { max: maxRounds, why: 'more rounds than a run may have means never evaluating' },
  quorumTimeoutMs: {
    max: 3_600_000,
    why: 'Node fires a timer past 2³¹−1 ms (24.8 days) at once, and the health probes wait a multiple of this (health.ts): an hour keeps a stalled node visible within hours',
  },
  roundWindow: {
    max: 16,
    why: 'a node buffers up to W+2 rounds of vectors per member: 16 bounds that at 18 per peer, while the protocol needs 1 or 2',
  },
  epoch: { max: Number.MAX_SAFE_INTEGER, why: 'signed as an integer: past 2⁵³ two epochs read alike' },
  checkpointEvery: { max: maxRounds, why: 'more rounds than a run may have means never checkpointing' },
  smrReplicas: { max: 5, why: 'JetStream replicates a stream on at most 5 servers' },
  natsReplicas: { max: 5, why: 'JetStream replicates a stream on at most 5 servers' },
  opsPort: { max: 65_535, why: 'a TCP port' },
  payloadPort: { max: 65_535, why: 'a TCP port' },
} as const satisfies Record<string, { min?: number; max: number; why: string }>

type BoundedField = keyof typeof configBounds

/** "at most 64 (why)": the message a value past the bound fails with. */
const atMost = (field: BoundedField) => {
  const bound = configBounds[field]
  return `at most ${bound.max} (${bound.why})`
}

/** An integer in [min, its field's bound]; the bound is checked first, so its reason is what an
 * over-large value (even one past 2⁵³, which `int` refuses too) is told. */
const int = (min: number, field: BoundedField) =>
  z.coerce
    .number()
    .max(configBounds[field].max, atMost(field))
    .int()
    .min(min)
    .describe(configBounds[field].why)
/** A finite number, where an empty string (a `PHALANX_X=` left blank) is an error, not 0. */
const finiteNumber = () =>
  z
    .union([z.number(), z.string().trim().min(1, 'a finite number, not empty')], { error: 'a finite number' })
    .pipe(z.coerce.number())
/** A finite number at most its field's bound (`inner` adds the lower bound). */
const bounded = (field: BoundedField, inner: z.ZodNumber) =>
  finiteNumber()
    .pipe(inner.max(configBounds[field].max, atMost(field)))
    .describe(configBounds[field].why)

export const clusterConfigSchema = z.object({
  /** Cluster id: scopes topics, subjects and checkpoints so two clusters never mix. */
  cluster: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and -')
    .default('phalanx')
    .describe('cluster id (scopes topics and checkpoints)'),
  servers: int(1, 'servers').default(4).describe('number of parameter servers N'),
  byzantineServers: int(0, 'byzantineServers')
    .default(1)
    .describe('Byzantine servers F (N−F ≥ 2F+1 is required)'),
  serverAttack: z.enum(serverAttackNames).default('shift').describe('what the Byzantine servers do'),
  workers: int(1, 'workers').default(12).describe('number of workers n'),
  byzantineWorkers: int(0, 'byzantineWorkers')
    .default(2)
    .describe('Byzantine workers f (the rule bound applies to n−f inputs)'),
  workerAttack: z.enum(workerAttackNames).default('alie').describe('what the Byzantine workers do'),
  /** Sign flip sends −scale·mean(honest). 1 is the brief's −g: with f of n Byzantine it only
   * shrinks the mean to (n−2f)/n of the honest one, so plain averaging needs scale > (n−f)/f to
   * go the wrong way. */
  signFlipScale: bounded('signFlipScale', z.number().positive())
    .default(workerAttackDefaults.signFlipScale)
    .describe('sign-flip: Byzantine workers send −scale·mean(honest)'),
  /** σ of the Gaussian attack per coordinate (default and its reason: `workerAttackDefaults`). */
  gaussianSigma: bounded('gaussianSigma', z.number().min(0))
    .default(workerAttackDefaults.gaussianSigma)
    .describe('gaussian: σ of the noise per coordinate'),
  /** IPM's ε (−ε·mean(honest); default and its reason: `workerAttackDefaults`): the mean of n−f
   * honest and f such vectors is ((n−f)−fε)/n of the honest mean, reversed only for ε > (n−f)/f. */
  ipmEpsilon: bounded('ipmEpsilon', z.number().positive())
    .default(workerAttackDefaults.ipmEpsilon)
    .describe('ipm: Byzantine workers send −ε·mean(honest)'),
  /** ALIE's z (mean − z·std per coordinate); absent = the paper's z = Φ⁻¹((n−s)/n),
   * s = ⌊n/2+1⌋−f, the largest shift the Byzantine vectors can hide in. */
  alieZ: bounded('alieZ', z.number().min(configBounds.alieZ.min))
    .optional()
    .describe('alie: z of mean − z·std (unset: the paper formula)'),
  /** Hidden shift moves one coordinate by scale·√(Σ_j Var_j). 1: one typical honest vector's
   * distance from the mean, the largest shift that still looks honest in ℓ2. */
  hiddenShiftScale: bounded('hiddenShiftScale', z.number().min(0))
    .default(1)
    .describe('hidden-shift: one coordinate moved by scale·√(Σ Var)'),
  /** Which way the hidden shift moves its coordinate of the gradient. against-mean (the
   * attack's own default): opposite the honest mean, i.e. SGD climbs the loss along it. On a
   * softmax classifier that only silences a class whenever the class is under-predicted (its
   * parameter is pushed down), so accuracy can stall at 60–70% for many rounds. negative moves
   * the gradient coordinate down, so SGD raises the parameter and its class wins every input
   * that touches it: the choice of an attacker who knows the model. positive is the mirror. */
  hiddenShiftSign: z
    .enum(hiddenShiftSigns)
    .default('against-mean')
    .describe(
      'hidden-shift: which way the coordinate moves (negative: SGD raises the parameter, its class wins)',
    ),
  rule: z.enum(ruleNames).default('multiKrum').describe('gradient aggregation rule of the servers'),
  preAggregation: z
    .array(z.enum(preAggregatorNames))
    .default([])
    .describe('comma-separated pre-aggregators applied before the rule, in order'),
  replication: z
    .enum(replicationModeNames)
    .default('median')
    .describe('how the servers are replicated (smr: the state-machine-replication baseline)'),
  /** Servers exchange models every T rounds (ByzSGD's scatter/gather); 1 = every round. */
  exchangeEvery: int(1, 'exchangeEvery').default(1).describe('median model exchange every T rounds'),
  model: z.enum(modelNames).default('mlp').describe('model to train'),
  dataset: z.enum(datasetNames).default('mnist').describe('dataset to train on'),
  /** TensorFlow.js backend: auto = tfjs-node when installed, else WASM, else pure JS. */
  backend: z
    .enum(backendChoices)
    .default('auto')
    .describe('TensorFlow.js backend (auto: tfjs-node when installed, else WASM, else pure JS)'),
  datasetPath: z.string().optional().describe('directory of the Fashion-MNIST IDX files'),
  /** Input dimension d of the synthetic dataset and of the linear model (d + 1 parameters). */
  dimension: int(1, 'dimension')
    .default(100)
    .describe('input dimension d of the synthetic dataset and the linear model'),
  rounds: int(1, 'rounds').default(100).describe('training rounds'),
  seed: int(0, 'seed').default(1).describe('seed of every random choice'),
  /** η = 1 with worker momentum 0.9: measured with `phalanx simulate` on the default cluster
   * (2026-11-27): 92.7% after 100 rounds, against 90.4% for η = 0.5 and 88.8% for η = 0.1 after 150. */
  learningRate: bounded('learningRate', z.number().positive()).default(1).describe('server learning rate η'),
  batchSize: int(1, 'batchSize').default(32).describe('worker batch size'),
  /** Worker momentum (0 disables): averaging momentum at the workers shrinks the honest
   * variance that ALIE-style attacks hide in (Karimireddy et al., ICLR 2022). */
  momentum: bounded('momentum', z.number().min(0)).default(0.9).describe('worker momentum (0 disables)'),
  /** Evaluate honest servers' test accuracy every k rounds (evaluation costs a forward pass
   * over the test split, so not every round by default). */
  evalEvery: int(1, 'evalEvery').default(5).describe('evaluate honest accuracy every k rounds'),
  /** How long a node waits for a quorum before it stalls and says so. */
  quorumTimeoutMs: int(100, 'quorumTimeoutMs')
    .default(30_000)
    .describe('how long to wait for a quorum before logging a stall'),
  /** Rounds ahead of the current one a message may be for (W in [r−1, r+W]). */
  roundWindow: int(0, 'roundWindow').default(2).describe('accept messages up to W rounds ahead'),
  /**
   * The cluster's incarnation, signed into every vector and announcement; messages of another
   * epoch are refused. The operator bumps it when the whole cluster restarts, so the last run's
   * signed messages for rounds run again cannot frame honest servers as equivocators. Not a
   * training field: a restart with a new epoch still resumes from the same checkpoints.
   */
  epoch: int(0, 'epoch')
    .default(0)
    .describe(
      "cluster incarnation signed into every data-plane message; bump it when the whole cluster restarts so last run's messages are refused",
    ),
  out: z.string().optional().describe('directory for summary.json, rounds.csv and report.html'),
  /**
   * Honest servers store their model in the NATS object store every k rounds (0 = never; needs
   * `natsUrl`), and a cluster restarted with the same config resumes from the newest checkpoint
   * N−F servers agree on. 10: a whole-cluster restart repeats at most 10 rounds, while the store
   * takes one write per server per 10 rounds (0.4 MB each for the MNIST MLP).
   */
  checkpointEvery: int(0, 'checkpointEvery')
    .default(10)
    .describe('store a checkpoint every k rounds (0: never; needs natsUrl)'),

  // Per-node settings: what one `phalanx server` / `phalanx worker` process (a container) needs.
  /**
   * This node's id: `server-<i>` (a StatefulSet pod's ordinal is its index) or `worker-<suffix>`
   * (a Deployment pod name; a worker whose suffix is not a number takes its shard from a hash).
   */
  nodeId: z
    .string()
    .regex(
      /^(server|worker)-[a-z0-9-]+$/,
      'server-<suffix> or worker-<suffix> (lowercase letters, digits, -)',
    )
    .optional()
    .describe('this node id (server-<i> or worker-<i>)'),
  /**
   * Node ids that behave Byzantine. Empty = the first F servers and the first f workers
   * (`server-0`…, `worker-0`…), which is what `phalanx local` uses.
   */
  byzantineNodeIds: z
    .array(z.string())
    .default([])
    .describe('comma-separated node ids that behave Byzantine (default: the first F servers and f workers)'),
  /**
   * The member set when there is no control plane: `<nodeId>:<peerId>` entries (role from the
   * node id). Empty with NATS: membership then comes from the control plane's KV bucket.
   */
  members: z
    .array(z.string().regex(/^(server|worker)-[a-z0-9-]+:[1-9A-HJ-NP-Za-km-z]{20,}$/, '<nodeId>:<peerId>'))
    .default([])
    .describe('comma-separated <nodeId>:<peerId> member set (without NATS)'),
  /**
   * The operator's Ed25519 public key (raw 32 bytes, base64url, 43 characters: what `phalanx keygen`
   * prints). Pins who may sign admit, evict and chaos records; without it every such record is
   * refused (and counted), so only the config's `members` ever hold a role.
   */
  operatorPublicKey: z
    .string()
    .refine(
      (value) =>
        /^[A-Za-z0-9_-]{43}$/.test(value) && Buffer.from(value, 'base64url').toString('base64url') === value,
      'a raw Ed25519 public key, base64url (43 characters), as `phalanx keygen` prints it',
    )
    .optional()
    .describe(
      "the operator's Ed25519 public key (phalanx keygen prints it); without it every admit, evict and chaos record is refused",
    ),
  /**
   * Whether a worker may register itself (a `join` record signed by its own peer key, as a worker
   * only). closed: only the config and the operator's admits make members, so a stolen NATS
   * credential alone cannot add workers; open suits a Deployment whose pods come and go.
   */
  workerAdmission: z
    .enum(['closed', 'open'])
    .default('closed')
    .describe('whether workers may register themselves (as workers, signed by their peer key)'),
  /** libp2p listen multiaddrs. */
  listen: z
    .array(z.string())
    .default(['/ip4/127.0.0.1/tcp/0'])
    .describe('comma-separated libp2p listen multiaddrs'),
  /**
   * The connection encrypter this node prefers; the other stays accepted, so nodes of either
   * setting connect (a connection uses its dialer's preference). Default and figures: the data
   * plane's netDefaults.encrypter.
   */
  encrypter: z
    .enum(encrypterNames)
    .default(netDefaults.encrypter)
    .describe(
      `libp2p connection encrypter this node prefers, the other still accepted: ${encrypterNames.map((name) => `${name}, ${encrypterDescriptions[name]}`).join('; ')}`,
    ),
  /**
   * Where payload bytes travel (`@phalanx/net`'s `payloadPlane`): tls, a `node:tls` socket beside
   * libp2p on `payloadPort`; libp2p, the libp2p payload stream. Peers without a TLS port, or whose
   * TLS dial fails, are fetched from over the libp2p stream either way.
   */
  payloadPlane: z
    .enum(payloadPlaneNames)
    .default(netDefaults.payloadPlane)
    .describe(
      `where payload bytes travel: ${payloadPlaneNames.map((name) => `${name}, ${payloadPlaneDescriptions[name]}`).join('; ')}`,
    ),
  /** The TLS payload plane's port, on the host of the first listen address; 0 = any free port. */
  payloadPort: int(0, 'payloadPort')
    .default(0)
    .describe('TCP port of the TLS payload plane (0: any free port; open it beside the libp2p port)'),
  /** Multiaddrs to dial at start (`/dns4/phalanx-server-0.phalanx-servers/tcp/9000/p2p/…` in Kubernetes). */
  bootstrap: z
    .array(z.string())
    .default([])
    .describe('comma-separated multiaddrs to dial at start (DNS names work)'),
  /** Peer key file: loaded when present, generated and written (0600) when not, so a restarted node keeps its peer id. */
  keyFile: z.string().optional().describe('peer key file (created when missing)'),
  /**
   * Directory where a server keeps its own last models (written every round, before it publishes),
   * so a restarted server process resumes where it stopped. Unset = amnesic restarts, which join
   * from the median of N−F other servers' models: enough while at most F servers are down at once,
   * never when more than F restart together (see server-state.ts). Off by default because it
   * writes two models per round (0.8 MB for the MNIST MLP); the Kubernetes servers set it.
   */
  stateDir: z
    .string()
    .min(1)
    .optional()
    .describe('directory where a server keeps its last models, to resume after a restart'),
  /** NATS URL of the control plane; absent = local mode (membership from config, no telemetry). */
  natsUrl: z.string().optional().describe('NATS URL of the control plane (absent: local mode)'),
  /**
   * NATS creds file (user JWT + nkey seed) for a server in operator/JWT mode. One identity only:
   * this, `natsNkeySeedFile`, or a user:password in `natsUrl`. Read at start (an unreadable file
   * fails the start naming this field) and again at each reconnect, so a rotated Secret is used.
   */
  natsCredsFile: z
    .string()
    .min(1)
    .optional()
    .describe('NATS creds file (user JWT + nkey seed); instead of a password in the URL'),
  /** File holding this node's NATS user nkey seed (`SU…`), for a server with nkey users. */
  natsNkeySeedFile: z
    .string()
    .min(1)
    .optional()
    .describe('file holding the NATS user nkey seed (SU…); instead of a password in the URL'),
  /** CA certificate (PEM) the NATS server's certificate must chain to; turns TLS on. */
  natsTlsCaFile: z
    .string()
    .min(1)
    .optional()
    .describe('CA certificate (PEM) to verify the NATS server with; turns TLS on'),
  /** Client certificate (PEM) for a NATS server that verifies clients; needs `natsTlsKeyFile`. */
  natsTlsCertFile: z
    .string()
    .min(1)
    .optional()
    .describe('client certificate (PEM) for a NATS server that verifies clients'),
  /** Private key (PEM) of `natsTlsCertFile`. */
  natsTlsKeyFile: z.string().min(1).optional().describe('private key (PEM) of the NATS client certificate'),
  /**
   * NATS URLs (comma-separated) of the JetStream cluster holding the SMR gradient log; required by
   * `replication: smr`. Separate from `natsUrl`: the log needs a replicated JetStream cluster,
   * while the control plane (telemetry, chaos) stays optional and may live elsewhere.
   */
  smrNatsUrl: z
    .string()
    .min(1)
    .optional()
    .describe('comma-separated NATS URLs of the JetStream cluster holding the SMR gradient log'),
  /** Replicas of the SMR gradient stream: three is the smallest Raft group that survives one
   * crashed NATS server; 1 only for a single-node NATS. */
  smrReplicas: int(1, 'smrReplicas')
    .default(3)
    .describe('replicas of the SMR gradient stream (Raft; 3 survives one crashed NATS server)'),
  /**
   * Replicas of every JetStream bucket of the control plane at `natsUrl` (members, joins,
   * checkpoints) when a node creates it. 1 by default and in `phalanx local`: one NATS server
   * cannot place more. 3 in the Kubernetes manifests, which run three NATS pods: the members and
   * the checkpoints then survive the loss of one of them. A bucket that already exists keeps its
   * replicas (the node logs a warning when they are fewer); `smrReplicas` is the SMR log's own.
   */
  natsReplicas: int(1, 'natsReplicas')
    .default(1)
    .describe('replicas of every JetStream bucket a node creates (3 with three NATS servers; 1 locally)'),
  /** Port of `/metrics`, `/healthz` and `/readyz`; 0 = disabled. */
  opsPort: int(0, 'opsPort').default(0).describe('port of /metrics /healthz /readyz (0: off)'),
  /**
   * Address the ops endpoints bind to. All interfaces: the endpoints are off unless `opsPort` is
   * set, and whoever sets it wants them scraped and probed from outside the process's host (the
   * kubelet probes the pod IP); they expose no secrets and accept only GET.
   */
  opsHost: z
    .string()
    .min(1)
    .default('0.0.0.0')
    .describe('address the ops endpoints bind to (0.0.0.0: all interfaces)'),
  /** Whether this node obeys chaos commands (kill, pause, corrupt, partition); off unless asked for. */
  chaos: z
    .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
    .transform((value) => value === true || value === 'true' || value === '1')
    .default(false)
    .describe('obey chaos commands'),
})

export type ClusterConfig = z.infer<typeof clusterConfigSchema>

export type ClusterConfigInput = z.input<typeof clusterConfigSchema>

/** `byzantineServers` → `PHALANX_BYZANTINE_SERVERS`. */
export function envName(field: string): string {
  return `PHALANX_${field.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`
}

/** `byzantineServers` → `byzantine-servers` (the flag is `--byzantine-servers`). */
export function flagName(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}

const fieldNames = Object.keys(clusterConfigSchema.shape) as (keyof ClusterConfig)[]

/** Fields that hold a list: comma-separated in the environment and in flags. */
export const listFields: ReadonlySet<string> = new Set([
  'preAggregation',
  'byzantineNodeIds',
  'members',
  'listen',
  'bootstrap',
])

/** What `--help` says of a field, read from the schema: nothing here is written twice. */
export interface FieldHelp {
  readonly field: keyof ClusterConfig
  /** The field's `.describe()` text. */
  readonly description: string
  /** The allowed values of an enum field (of each element, for a list field). */
  readonly choices?: readonly string[]
  /** The default, as text; absent when the field has none. */
  readonly default?: string
  /** Comma-separated in flags and the environment. */
  readonly list: boolean
  /** `PHALANX_…` */
  readonly env: string
  /** What values it takes: kind, range, choices. */
  readonly shape: FieldShape
  /** The same in words: "a whole number from 1 to 64". */
  readonly allowed: string
}

const shapeOf = (field: string): FieldShape => {
  const schema = clusterConfigSchema.shape[field as keyof ClusterConfig] as z.ZodType
  return { ...fieldShape(schema), list: listFields.has(field) }
}

/** The field's default; undefined for an optional field. */
function defaultOf(schema: z.ZodType): unknown {
  const def = schema.def as unknown as { type: string; defaultValue?: unknown }
  return def.type === 'default' ? def.defaultValue : undefined
}

/** `--help` material of every config field, in schema order. */
export function configFieldHelp(): FieldHelp[] {
  return fieldNames.map((field) => {
    const schema = clusterConfigSchema.shape[field] as z.ZodType
    const shape = shapeOf(field)
    const value = defaultOf(schema)
    const shown = Array.isArray(value) ? value.join(',') : value
    return {
      field,
      description: schema.description ?? '',
      ...(shape.choices === undefined ? {} : { choices: shape.choices }),
      ...(shown === undefined || shown === '' ? {} : { default: String(shown) }),
      list: shape.list,
      env: envName(field),
      shape,
      allowed: allowedText(shape),
    }
  })
}

/**
 * `PHALANX_*` variables read outside the schema: the CLI's logger level, and the test-only crash
 * points of failpoints.ts (kept out of the schema so no config file or flag can set them).
 */
export const extraEnvNames: readonly string[] = ['PHALANX_LOG_LEVEL', 'PHALANX_FAILPOINTS']

/**
 * Where a layer's values came from (the environment, a file), named in a start-up error. A layer
 * without one is the caller's own (the CLI's flags, a test's object).
 */
const layerSource = Symbol('config layer source')
type SourcedLayer = Record<string, unknown> & { [layerSource]?: (field: string) => string }

/** Tags `layer` so errors about its fields name `source(field)` as where the value came from. */
export function withConfigSource<T extends Record<string, unknown>>(
  layer: T,
  source: (field: string) => string,
): T {
  Object.defineProperty(layer, layerSource, { value: source, enumerable: false })
  return layer
}

/** Where `layer` says its `field` came from (`config file a.yaml, line 3`), if it says. */
export function configSourceOf(layer: Record<string, unknown>, field: string): string | undefined {
  return (layer as SourcedLayer)[layerSource]?.(field)
}

/** What an unknown name is told instead of the whole list of names. */
const seeHelp = 'what `phalanx <command> --help` lists'

/** Reads the `PHALANX_*` variables the schema knows; unknown `PHALANX_*` names are an error
 * (a misspelt variable silently ignored is a misconfigured cluster). */
export function configFromEnv(
  env: NodeJS.ProcessEnv,
  known: readonly string[] = extraEnvNames,
): Record<string, unknown> {
  const byEnvName = new Map(fieldNames.map((field) => [envName(field), field]))
  const values: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('PHALANX_') || value === undefined) continue
    const field = byEnvName.get(name)
    if (field === undefined) {
      if (known.includes(name)) continue
      // Compared without the prefix every candidate shares, which would make any name look near.
      const strip = (envVar: string) => envVar.slice('PHALANX_'.length)
      const near = closestName(strip(name), [...byEnvName.keys(), ...known].map(strip))
      throw new ConfigError(
        `unknown environment variable ${name}${near === undefined ? '' : `; did you mean PHALANX_${near}?`}`,
        { field: name, value, allowed: seeHelp },
      )
    }
    values[field] = listFields.has(field) ? value.split(',').filter(Boolean) : value
  }
  return withConfigSource(values, (field) => `environment variable ${envName(field)}`)
}

/** Reads a YAML config file (an object whose keys are the schema's fields); an error about one
 * of its fields names the file and the field's line. */
export function configFromFile(path: string): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${path}`, { field: 'config', value: path, cause })
  }
  const lineCounter = new LineCounter()
  const document = parseDocument(text, { lineCounter, prettyErrors: false })
  const [syntax] = document.errors
  if (syntax !== undefined) {
    const { line } = lineCounter.linePos(syntax.pos[0])
    throw new ConfigError(
      `config file ${path}, line ${line}, is not valid YAML: ${syntax.message.split('\n')[0]}`,
      { field: 'config', value: path },
    )
  }
  const parsed: unknown = document.toJS()
  if (parsed === null || parsed === undefined) return {}
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a mapping of field: value`, {
      field: 'config',
      value: path,
    })
  }
  const lines = new Map<string, number>()
  if (isMap(document.contents)) {
    for (const { key } of document.contents.items) {
      if (isScalar(key) && key.range) lines.set(String(key.value), lineCounter.linePos(key.range[0]).line)
    }
  }
  return withConfigSource(parsed as Record<string, unknown>, (field) =>
    lines.has(field) ? `config file ${path}, line ${lines.get(field)}` : `config file ${path}`,
  )
}

/**
 * Merges the layers (later wins) and validates them with the schema. A wrong value throws a
 * `ConfigError` naming the field, the value, where it was set and what is allowed, in words.
 */
export function resolveConfig(...layers: Record<string, unknown>[]): ClusterConfig {
  const merged: Record<string, unknown> = {}
  /** Where each field's value came from (the last layer that set it wins, as for the value). */
  const sources = new Map<string, string>()
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue
      merged[key] = value
      sources.set(key, configSourceOf(layer, key) ?? 'flags or the caller')
    }
  }
  const from = (field: string) => `, set by ${sources.get(field) ?? 'the default'}`
  const unknownField = Object.keys(merged).find((key) => !(fieldNames as string[]).includes(key))
  if (unknownField !== undefined) {
    throw new ConfigError(
      `unknown config field "${unknownField}"${from(unknownField)}${didYouMean(unknownField, fieldNames)}`,
      { field: unknownField, value: merged[unknownField], allowed: seeHelp },
    )
  }
  const result = clusterConfigSchema.safeParse(merged)
  if (!result.success) {
    const issue = result.error.issues[0]!
    const [top, ...rest] = issue.path.map(String)
    const field = top ?? ''
    const value = issue.path.reduce<unknown>(
      (at, key) => (at as Record<PropertyKey, unknown> | undefined)?.[key as PropertyKey],
      merged,
    )
    const item = rest.length === 1 && /^\d+$/.test(rest[0]!) ? ` (item ${Number(rest[0]) + 1})` : ''
    const { problem, allowed } = issueWords(issue, value, shapeOf(field))
    throw new ConfigError(
      `config field "${field}"${item} = ${JSON.stringify(value)}${from(field)}: ${problem}`,
      { field: issue.path.join('.'), value, allowed },
    )
  }
  if (result.data.replication === 'smr' && result.data.smrNatsUrl === undefined) {
    throw new ConfigError('config field "smrNatsUrl" is required by replication "smr"', {
      field: 'smrNatsUrl',
      value: undefined,
      allowed: 'nats://host:port URLs (comma-separated) of a JetStream cluster',
    })
  }
  return result.data
}
