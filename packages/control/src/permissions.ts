/**
 * The one definition of what each kind of NATS client of a cluster may publish and subscribe to,
 * derived from `clusterSubjects` (subjects.ts spells every subject), and the nats-server config
 * that enforces it. The Kubernetes manifests (k8s/, rendered by `scripts/nats-config.ts`) and the
 * system tests both use `renderNatsServerConfig`, so what is deployed is what was tested.
 *
 * Roles:
 * - `worker`: publishes its own telemetry and equivocation evidence, reads the member set (both KV buckets) and the
 *   checkpoints, writes only the joins bucket (its own signed join; the records are verified
 *   by every reader, the permission only keeps it off the other buckets) and answers chaos
 *   commands addressed to it.
 * - `server`: a worker's read rights and its own telemetry and chaos subjects (no join: servers
 *   are admitted by the operator), plus writing the checkpoints object store and the checkpoint
 *   announcement, and creating the cluster's buckets (so a fresh cluster starts without an
 *   operator step; creating an empty bucket grants no write to it). Workers only read buckets,
 *   so they need them to exist: `kvm.create` asks for the stream's info first and creates only
 *   a missing one.
 * - `operator`: writes the members bucket and the chaos subjects, administers JetStream, reads
 *   everything. What it writes still has to carry the operator key's signature to be applied.
 * - `observer`: reads telemetry and evidence, nothing else (`phalanx watch` from a dashboard host).
 *
 * JetStream is reached through its API subjects: the minimal set below was found against
 * nats-server 2.9 by `test/control-permissions.test.ts` (each role doing its job succeeds, each
 * write outside it is a permissions violation).
 */
import type { ClusterSubjects } from './subjects.js'
import { assertToken, clusterSubjects } from './subjects.js'

export const natsRoles = ['worker', 'server', 'operator', 'observer'] as const
export type NatsRole = (typeof natsRoles)[number]

export interface NatsPermissions {
  publish: { allow?: string[]; deny?: string[] }
  subscribe: { allow?: string[]; deny?: string[] }
  /** Lets the client answer requests it received (chaos acknowledgements) without publishing to `_INBOX.>`. */
  allowResponses: boolean
}

export interface NatsPrincipal {
  cluster: string
  role: NatsRole
  /**
   * The one node these credentials belong to: its telemetry and chaos subjects only. Absent for
   * credentials shared by every pod of a role (a Kubernetes Deployment, whose pod names are
   * random): then any node id of the role, and the telemetry signature is what tells nodes apart.
   */
  nodeId?: string
  /**
   * The node's peer id, when known for these credentials: its join may then be written under that
   * key only. Without it any key of the joins bucket (every join is signed by the joining key
   * anyway, so a forged one is refused by its readers; what the key restriction adds is that a
   * worker cannot overwrite or purge another worker's join).
   */
  peerId?: string
}

/** Where JetStream replies come back: every client needs it to read its own request replies. */
const INBOX = '_INBOX.>'
const JS_INFO = '$JS.API.INFO'

/**
 * Read access to one stream, as the KV and object-store clients use it on nats-server 2.9+: stream
 * info, message gets (object metadata) and ephemeral ordered consumers (KV history and watch,
 * object list and get) with their flow-control answers. Found by tracing every API request the
 * control plane makes (`nats-server -V` under test/control-permissions.test.ts); the bare
 * `CONSUMER.CREATE.<stream>` form (servers before 2.9), direct gets, consumer info/delete and pull
 * requests are not used and so not allowed.
 */
function streamRead(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.MSG.GET.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    // A push consumer with flow control stalls until its client answers (large checkpoint reads).
    `$JS.FC.${stream}.>`,
  ]
}

function kvStream(bucket: string): string {
  return `KV_${bucket}`
}

function objStream(bucket: string): string {
  return `OBJ_${bucket}`
}

/** Subjects of the node-owned telemetry and chaos subscriptions for one node, or for every node. */
function nodeSubjects(subjects: ClusterSubjects, nodeId: string | undefined) {
  return nodeId === undefined
    ? {
        telemetry: subjects.telemetryAll,
        chaos: `${subjects.prefix}.chaos.*`,
        evidence: subjects.evidenceAll,
      }
    : {
        telemetry: subjects.telemetry(nodeId),
        chaos: subjects.chaos(nodeId),
        evidence: subjects.evidence(nodeId),
      }
}

/** The publish/subscribe allow lists of one principal. */
export function natsPermissions(principal: NatsPrincipal): NatsPermissions {
  const subjects = clusterSubjects(principal.cluster)
  if (principal.nodeId !== undefined) assertToken(principal.nodeId, 'nodeId')
  const joinKeys =
    principal.peerId === undefined
      ? `$KV.${subjects.joinsBucket}.>`
      : `$KV.${subjects.joinsBucket}.${assertToken(principal.peerId, 'peerId')}`
  const own = nodeSubjects(subjects, principal.nodeId)
  const members = kvStream(subjects.membersBucket)
  const joins = kvStream(subjects.joinsBucket)
  const checkpoints = objStream(subjects.checkpointsBucket)
  const readMembership = [...streamRead(members), ...streamRead(joins)]
  const readCheckpoints = streamRead(checkpoints)
  switch (principal.role) {
    case 'observer':
      return {
        publish: { deny: ['>'] },
        subscribe: { allow: [subjects.telemetryAll, subjects.evidenceAll] },
        allowResponses: false,
      }
    case 'worker':
      return {
        publish: {
          allow: [own.telemetry, own.evidence, JS_INFO, ...readMembership, ...readCheckpoints, joinKeys],
        },
        subscribe: { allow: [own.chaos, INBOX] },
        allowResponses: true,
      }
    case 'server':
      return {
        publish: {
          allow: [
            own.telemetry,
            own.evidence,
            JS_INFO,
            ...readMembership,
            ...readCheckpoints,
            subjects.checkpoints,
            `$O.${subjects.checkpointsBucket}.>`,
            // Replacing or pruning an object purges its old chunks.
            `$JS.API.STREAM.PURGE.${checkpoints}`,
            `$JS.API.STREAM.CREATE.${members}`,
            `$JS.API.STREAM.CREATE.${joins}`,
            `$JS.API.STREAM.CREATE.${checkpoints}`,
          ],
        },
        subscribe: { allow: [own.chaos, INBOX] },
        allowResponses: true,
      }
    case 'operator':
      return {
        publish: {
          allow: [
            // Stream administration (creating buckets, deleting a throw-away cluster's streams).
            '$JS.API.>',
            `$JS.FC.>`,
            `$KV.${subjects.membersBucket}.>`,
            // Withdrawing a worker's join is an operator's call too.
            `$KV.${subjects.joinsBucket}.>`,
            subjects.membership,
            `${subjects.prefix}.chaos.*`,
          ],
        },
        subscribe: { allow: ['>'] },
        allowResponses: false,
      }
  }
}

export interface NatsUser {
  role: NatsRole
  nodeId?: string
  peerId?: string
  /** Either an nkey (public key, `U…`) … */
  nkey?: string
  /** … or a user name and password. */
  user?: string
  password?: string
}

export interface NatsServerConfigInit {
  cluster: string
  users: readonly NatsUser[]
  /** `server_name`; `$POD_NAME` in Kubernetes (expanded by nats-server from the env). */
  serverName?: string
  /** Client listen address (`0.0.0.0:4222`); absent when given on the command line. */
  listen?: string
  maxPayload?: string
  lameDuckDuration?: string
  pidFile?: string
  jetstream?: { storeDir: string; maxMemoryStore: string; maxFileStore: string }
  /** Routes between NATS servers; only clients holding these credentials may connect as a route. */
  routes?: { name: string; listen: string; user: string; password: string; urls: readonly string[] }
  /** TLS for client connections; `verify` asks every client for a certificate signed by the CA. */
  tls?: { certFile: string; keyFile: string; caFile?: string; verify?: boolean }
}

/** The name a user is known by in the config, for messages only (nkeys have none). */
function userLabel(user: NatsUser): string {
  return user.nodeId === undefined ? user.role : `${user.role}/${user.nodeId}`
}

function quoted(value: string): string {
  return JSON.stringify(value)
}

function list(values: readonly string[]): string {
  return `[${values.map(quoted).join(', ')}]`
}

function renderPermissions(permissions: NatsPermissions, indent: string): string[] {
  const lines: string[] = [`${indent}permissions: {`]
  for (const direction of ['publish', 'subscribe'] as const) {
    const rules = permissions[direction]
    const parts: string[] = []
    if (rules.allow !== undefined) parts.push(`allow: ${list(rules.allow)}`)
    if (rules.deny !== undefined) parts.push(`deny: ${list(rules.deny)}`)
    lines.push(`${indent}  ${direction}: { ${parts.join(', ')} }`)
  }
  if (permissions.allowResponses) lines.push(`${indent}  allow_responses: true`)
  lines.push(`${indent}}`)
  return lines
}

/**
 * A complete nats-server config: users with their role's permissions (no default user, no
 * anonymous access), route authorization when there are routes, and no `http` monitoring port
 * (its `/connz` lists every client; probes use the client port instead).
 */
export function renderNatsServerConfig(init: NatsServerConfigInit): string {
  const lines: string[] = [`# Rendered by renderNatsServerConfig (@phalanx/control, permissions.ts).`]
  if (init.serverName !== undefined) lines.push(`server_name: ${init.serverName}`)
  if (init.listen !== undefined) lines.push(`listen: ${init.listen}`)
  if (init.maxPayload !== undefined) lines.push(`max_payload: ${init.maxPayload}`)
  if (init.lameDuckDuration !== undefined) lines.push(`lame_duck_duration: ${init.lameDuckDuration}`)
  if (init.pidFile !== undefined) lines.push(`pid_file: ${quoted(init.pidFile)}`)
  if (init.jetstream !== undefined) {
    lines.push(
      'jetstream {',
      `  store_dir: ${quoted(init.jetstream.storeDir)}`,
      `  max_memory_store: ${init.jetstream.maxMemoryStore}`,
      `  max_file_store: ${init.jetstream.maxFileStore}`,
      '}',
    )
  }
  if (init.tls !== undefined) {
    lines.push(
      'tls {',
      `  cert_file: ${quoted(init.tls.certFile)}`,
      `  key_file: ${quoted(init.tls.keyFile)}`,
    )
    if (init.tls.caFile !== undefined) lines.push(`  ca_file: ${quoted(init.tls.caFile)}`)
    if (init.tls.verify === true) lines.push('  verify: true')
    lines.push('}')
  }
  if (init.users.length === 0) throw new TypeError('a NATS config needs at least one user')
  // One list for nkey and password users alike: nats-server has no anonymous user then.
  lines.push('authorization {', '  users: [')
  for (const user of init.users) {
    const permissions = natsPermissions({
      cluster: init.cluster,
      role: user.role,
      ...(user.nodeId === undefined ? {} : { nodeId: user.nodeId }),
      ...(user.peerId === undefined ? {} : { peerId: user.peerId }),
    })
    lines.push(`    # ${userLabel(user)}`, '    {')
    if (user.nkey !== undefined) {
      lines.push(`      nkey: ${quoted(user.nkey)}`)
    } else {
      if (user.user === undefined || user.password === undefined) {
        throw new TypeError(`NATS user ${userLabel(user)} needs an nkey or a user and password`)
      }
      lines.push(`      user: ${quoted(user.user)}`, `      password: ${quoted(user.password)}`)
    }
    lines.push(...renderPermissions(permissions, '      '), '    }')
  }
  lines.push('  ]')
  lines.push('}')
  if (init.routes !== undefined) {
    const { routes } = init
    lines.push(
      'cluster {',
      `  name: ${quoted(routes.name)}`,
      `  listen: ${routes.listen}`,
      '  authorization {',
      `    user: ${quoted(routes.user)}`,
      `    password: ${quoted(routes.password)}`,
      '  }',
      '  routes: [',
      ...routes.urls.map((url) => {
        const withCredentials = new URL(url)
        withCredentials.username = encodeURIComponent(routes.user)
        withCredentials.password = encodeURIComponent(routes.password)
        return `    ${quoted(withCredentials.toString().replace(/\/$/, ''))}`
      }),
      '  ]',
      '}',
    )
  }
  return `${lines.join('\n')}\n`
}
