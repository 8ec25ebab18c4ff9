/**
 * Offline checks of rendered manifests: the Kubernetes schemas (`kubernetes-models`) and the
 * things a schema cannot know — that every PHALANX_* variable is a field of the config schema
 * with a valid value, that Services, probes and Prometheus annotations point at ports and
 * endpoints the containers really serve, that the image, its entrypoint and the commands agree
 * with deploy/Dockerfile and the CLI, that the PodDisruptionBudget keeps the N−F quorum, and that
 * every DNS name a node dials names a pod that exists, that the nodes' trust settings let
 * them accept each other (k8s-trust.ts), that every object carries the recommended labels, that
 * each node is scraped once (annotations or a PodMonitor, never both) and that every alert rule
 * queries metrics the nodes export. Each finding names its rule, the object
 * and the problem; a clean set of manifests yields none.
 */

import { PodMonitor, PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1'
import { nkeys } from '@nats-io/transport-node'
import {
  type ClusterConfig,
  checkClusterBounds,
  clusterConfigSchema,
  configFromEnv,
  envName,
  isByzantine,
  resolveConfig,
} from '@phalanx/node'
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1'
import { unknownFields } from './k8s-fields.js'
import type { IssueRule, ManifestIssue } from './k8s-issues.js'
import {
  type ContainerSpec,
  type PlannedContainer,
  type PlannedPod,
  plannedMounts,
  planPods,
} from './k8s-pods.js'
import { imageName, type K8sObject, objectId, podSpecOf } from './k8s-render.js'
import { checkTrust } from './k8s-trust.js'
import { exportedMetrics, unexported } from './promql.js'

export type { IssueRule, ManifestIssue } from './k8s-issues.js'

export interface DockerfileFacts {
  /** Base image of each stage, in order; the last one is the runtime. */
  stages: string[]
  entrypoint: string[]
  /** The last stage's WORKDIR: where the image's files are, relative paths of ENTRYPOINT included. */
  workdir: string
  exposed: number[]
  user: { uid: number; gid: number } | undefined
  env: Record<string, string>
  labels: Record<string, string>
  healthcheck: string
  /** Sources of the COPY instructions of every stage that copy from the build context. */
  contextCopies: string[]
}

export interface CheckContext {
  dockerfile: DockerfileFacts
  /** The image the Phalanx containers must run (repository:tag). */
  image: string
  /** Subcommands of the `phalanx` CLI; a container's first arg must be one. */
  cliCommands: readonly string[]
}

/** Dockerfile instructions with their line continuations joined (`# comments` dropped). */
function instructions(text: string): [string, string][] {
  const joined = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const space = line.search(/\s/)
      return [line.slice(0, space).toUpperCase(), line.slice(space + 1).trim()] as [string, string]
    })
}

/** `KEY=value KEY2="quoted value"` pairs (ENV and LABEL). */
function keyValues(text: string): Record<string, string> {
  const pairs: Record<string, string> = {}
  for (const match of text.matchAll(/([A-Za-z0-9_.-]+)=("([^"]*)"|\S+)/g)) {
    pairs[match[1]!] = match[3] ?? match[2]!
  }
  return pairs
}

export function parseDockerfile(text: string): DockerfileFacts {
  const args: Record<string, string> = {}
  const facts: DockerfileFacts = {
    stages: [],
    entrypoint: [],
    workdir: '/',
    exposed: [],
    user: undefined,
    env: {},
    labels: {},
    healthcheck: '',
    contextCopies: [],
  }
  for (const [instruction, rest] of instructions(text)) {
    switch (instruction) {
      case 'ARG':
        Object.assign(args, keyValues(rest))
        break
      case 'FROM': {
        const image = rest.split(/\s+/)[0]!.replace(/\$\{(\w+)\}/g, (_, name: string) => args[name] ?? '')
        facts.stages.push(image)
        // Each stage starts afresh: only the last stage's settings describe the image.
        facts.entrypoint = []
        facts.workdir = '/'
        facts.exposed = []
        facts.user = undefined
        facts.env = {}
        facts.labels = {}
        facts.healthcheck = ''
        break
      }
      case 'ENTRYPOINT':
        facts.entrypoint = JSON.parse(rest) as string[]
        break
      case 'WORKDIR':
        facts.workdir = rest
        break
      case 'EXPOSE':
        facts.exposed.push(...rest.split(/\s+/).map((port) => Number.parseInt(port, 10)))
        break
      case 'USER': {
        const [uid, gid] = rest.split(':').map((part) => Number.parseInt(part, 10))
        facts.user = uid === undefined || Number.isNaN(uid) ? undefined : { uid, gid: gid ?? uid }
        break
      }
      case 'ENV':
        Object.assign(facts.env, keyValues(rest))
        break
      case 'LABEL':
        Object.assign(facts.labels, keyValues(rest))
        break
      case 'HEALTHCHECK':
        facts.healthcheck = rest
        break
      case 'COPY': {
        const words = rest.split(/\s+/)
        if (words.some((word) => word.startsWith('--from='))) break
        facts.contextCopies.push(...words.filter((word) => !word.startsWith('--')).slice(0, -1))
        break
      }
    }
  }
  return facts
}

const SCHEMAS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
}

const configFields = Object.keys(clusterConfigSchema.shape)
const knownEnv = new Map(configFields.map((field) => [envName(field), field]))

/** The repository part of an image is `phalanx` (any registry): the containers of this project. */
export function isPhalanxImage(image: string): boolean {
  const name = imageName(image)
  return name === 'phalanx' || name.endsWith('/phalanx')
}

function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined || Object.keys(selector).length === 0) return false
  return Object.entries(selector).every(([key, value]) => labels[key] === value)
}

/** A probe's or a Service's port (number or container port name) → the container port number. */
function resolvePort(port: unknown, containers: readonly ContainerSpec[]): number | undefined {
  for (const container of containers) {
    for (const candidate of container.ports ?? []) {
      if (typeof port === 'number' && candidate.containerPort === port) return port
      if (typeof port === 'string' && candidate.name === port) return candidate.containerPort
    }
  }
  return undefined
}

function tcpPort(multiaddr: string): number | undefined {
  const match = /\/tcp\/(\d+)/.exec(multiaddr)
  return match ? Number(match[1]) : undefined
}

interface PhalanxContainer {
  pod: PlannedPod
  container: PlannedContainer
  /** The config the node would resolve from its environment, when that succeeds. */
  config: ClusterConfig | undefined
}

class Findings {
  readonly issues: ManifestIssue[] = []
  add(rule: IssueRule, object: string, message: string): void {
    this.issues.push({ rule, object, message })
  }
}

function where(pod: PlannedPod, container: PlannedContainer): string {
  return `${pod.name}/${container.spec.name}`
}

function checkSchemas(objects: K8sObject[], findings: Findings): void {
  for (const object of objects) {
    const Model = SCHEMAS[`${object.apiVersion}/${object.kind}`]
    if (Model === undefined) {
      findings.add('unknown-kind', objectId(object), `no schema for ${object.apiVersion} ${object.kind}`)
      continue
    }
    try {
      new Model(structuredClone(object) as never).validate()
    } catch (error) {
      findings.add('schema', objectId(object), (error as Error).message)
    }
    for (const path of unknownFields(object)) {
      findings.add(
        'unknown-field',
        objectId(object),
        `${path} is not a field of ${object.apiVersion} ${object.kind}`,
      )
    }
  }
}

function checkEnvironment(pods: PlannedPod[], findings: Findings, context: CheckContext): PhalanxContainer[] {
  const phalanx: PhalanxContainer[] = []
  for (const pod of pods) {
    for (const container of pod.containers) {
      const at = where(pod, container)
      for (const [name, value] of Object.entries(container.env)) {
        const unresolved = /\$\(([A-Za-z_][A-Za-z0-9_]*)\)/.exec(value)
        if (unresolved) {
          findings.add(
            'env-reference',
            at,
            `${name} refers to $(${unresolved[1]}), which is not defined before it`,
          )
        }
      }
      const unknown = Object.keys(container.env).filter(
        (name) => name.startsWith('PHALANX_') && !knownEnv.has(name),
      )
      for (const name of unknown) {
        findings.add(
          'unknown-env-var',
          at,
          `${name} is not a field of the config schema (packages/node/src/config.ts)`,
        )
      }
      if (!isPhalanxImage(container.spec.image)) continue
      let config: ClusterConfig | undefined
      if (unknown.length === 0) {
        try {
          config = resolveConfig(configFromEnv(container.env))
          if (container.phase === 'main') checkClusterBounds(config)
        } catch (error) {
          findings.add('invalid-config', at, `${(error as Error).name}: ${(error as Error).message}`)
          config = undefined
        }
      }
      if (container.phase === 'main') {
        for (const [name, value] of Object.entries(context.dockerfile.env)) {
          if (name.startsWith('PHALANX_') && container.env[name] === undefined) {
            findings.add('image-env', at, `relies on the image's ${name}=${value}: set it in the manifests`)
          }
        }
      }
      phalanx.push({ pod, container, config })
    }
  }
  return phalanx
}

function checkCommands(
  phalanx: PhalanxContainer[],
  pods: PlannedPod[],
  findings: Findings,
  context: CheckContext,
) {
  for (const { pod, container } of phalanx) {
    const at = where(pod, container)
    if (container.spec.image !== context.image) {
      findings.add('image', at, `runs ${container.spec.image}, expected ${context.image}`)
    }
    if (container.phase === 'init') {
      // Init containers may use a shell of the base image; the nodes must go through the CLI.
      if (container.spec.command?.[0] !== 'sh') {
        findings.add('cli-command', at, `init command ${JSON.stringify(container.spec.command)} is not sh`)
      }
      continue
    }
    if (container.spec.command !== undefined) {
      findings.add(
        'cli-command',
        at,
        `overrides the image's ENTRYPOINT with ${JSON.stringify(container.spec.command)}`,
      )
    }
    const subcommand = container.spec.args?.[0]
    if (subcommand === undefined || !context.cliCommands.includes(subcommand)) {
      findings.add(
        'cli-command',
        at,
        `args ${JSON.stringify(container.spec.args)}: "${subcommand}" is not a phalanx command (${context.cliCommands.join(', ')})`,
      )
    }
    const nodeId = container.env.PHALANX_NODE_ID
    if (nodeId !== pod.name) {
      findings.add(
        'node-id',
        at,
        `PHALANX_NODE_ID is ${JSON.stringify(nodeId)}, not the pod name ${pod.name}`,
      )
    } else if (subcommand !== undefined && !nodeId.startsWith(`${subcommand}-`)) {
      findings.add('node-id', at, `runs "${subcommand}" but its node id ${nodeId} is not ${subcommand}-…`)
    }
  }
  for (const pod of pods) {
    for (const container of pod.containers) {
      if (isPhalanxImage(container.spec.image)) continue
      if (!/:[\w][\w.-]*$/.test(container.spec.image) || container.spec.image.endsWith(':latest')) {
        findings.add('image', where(pod, container), `${container.spec.image} is not pinned to a version tag`)
      }
    }
  }
}

function checkPorts(
  phalanx: PhalanxContainer[],
  pods: PlannedPod[],
  objects: K8sObject[],
  findings: Findings,
  context: CheckContext,
) {
  for (const { pod, container, config } of phalanx) {
    if (container.phase !== 'main' || config === undefined) continue
    const at = where(pod, container)
    const ports = container.spec.ports ?? []
    const expected: [string, number | undefined][] = [
      ['p2p', tcpPort(config.listen[0] ?? '')],
      ['ops', config.opsPort],
    ]
    for (const [name, port] of expected) {
      const declared = ports.find((candidate) => candidate.name === name)
      if (declared === undefined || declared.containerPort !== port) {
        findings.add(
          'container-port',
          at,
          `port "${name}" is ${declared?.containerPort ?? 'missing'}, but the node listens on ${port} (PHALANX_${name === 'ops' ? 'OPS_PORT' : 'LISTEN'})`,
        )
      }
    }
    for (const port of ports) {
      if (!context.dockerfile.exposed.includes(port.containerPort)) {
        findings.add('container-port', at, `port ${port.containerPort} is not EXPOSEd by deploy/Dockerfile`)
      }
    }
  }
  for (const service of objects.filter((object) => object.kind === 'Service')) {
    const spec = service.spec as {
      selector?: Record<string, string>
      ports?: Record<string, unknown>[]
      clusterIP?: string
    }
    const selected = pods.filter(
      (pod) => pod.namespace === service.metadata.namespace && selects(spec.selector, pod.labels),
    )
    if (
      selected.length === 0 &&
      !objects.some(
        (object) =>
          object.kind === 'Deployment' &&
          selects(
            spec.selector,
            (object.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata
              .labels,
          ),
      )
    ) {
      findings.add(
        'service-port',
        objectId(service),
        `selector ${JSON.stringify(spec.selector)} matches no pod`,
      )
      continue
    }
    for (const port of spec.ports ?? []) {
      const target = port.targetPort ?? port.port
      for (const pod of selected) {
        const main = pod.containers.filter((c) => c.phase === 'main').map((c) => c.spec)
        if (resolvePort(target, main) === undefined) {
          findings.add(
            'service-port',
            objectId(service),
            `port ${String(port.name ?? port.port)} targets ${JSON.stringify(target)}, which pod ${pod.name} does not expose`,
          )
        }
      }
    }
    checkPrometheus(service.metadata.annotations, selected, objectId(service), findings)
  }
  for (const workload of objects.filter((object) => object.kind === 'StatefulSet')) {
    const serviceName = (workload.spec as { serviceName?: string }).serviceName
    const service = objects.find(
      (object) =>
        object.kind === 'Service' &&
        object.metadata.name === serviceName &&
        object.metadata.namespace === workload.metadata.namespace,
    )
    const podLabels = (workload.spec as { template: { metadata: { labels: Record<string, string> } } })
      .template.metadata.labels
    const spec = service?.spec as { clusterIP?: string; selector?: Record<string, string> } | undefined
    if (spec === undefined || spec.clusterIP !== 'None' || !selects(spec.selector, podLabels)) {
      findings.add(
        'stable-dns',
        objectId(workload),
        `serviceName ${serviceName} is not a headless Service selecting its pods`,
      )
    }
  }
}

function checkPrometheus(
  annotations: Record<string, string> | undefined,
  pods: PlannedPod[],
  object: string,
  findings: Findings,
) {
  if (annotations?.['prometheus.io/scrape'] !== 'true') return
  const port = Number(annotations['prometheus.io/port'])
  if (annotations['prometheus.io/path'] !== '/metrics') {
    findings.add(
      'prometheus',
      object,
      `prometheus.io/path is ${annotations['prometheus.io/path']}, the nodes serve /metrics`,
    )
  }
  for (const pod of pods) {
    const main = pod.containers.filter((c) => c.phase === 'main')
    const ops = main.map((c) => c.env.PHALANX_OPS_PORT).find((value) => value !== undefined)
    if (ops === undefined || Number(ops) !== port) {
      findings.add('prometheus', object, `prometheus.io/port ${port} is not ${pod.name}'s ops port ${ops}`)
    }
  }
}

const PHALANX_PROBES = {
  readinessProbe: '/readyz',
  livenessProbe: '/healthz',
  startupProbe: '/healthz',
} as const

function checkProbes(pods: PlannedPod[], findings: Findings) {
  for (const pod of pods) {
    checkPrometheus(
      (pod.workload.spec as { template: { metadata?: { annotations?: Record<string, string> } } }).template
        .metadata?.annotations,
      [pod],
      objectId(pod.workload),
      findings,
    )
    for (const container of pod.containers) {
      if (container.phase !== 'main') continue
      const at = where(pod, container)
      const phalanx = isPhalanxImage(container.spec.image)
      for (const [probe, path] of Object.entries(PHALANX_PROBES) as [keyof typeof PHALANX_PROBES, string][]) {
        const spec = container.spec[probe]
        if (spec === undefined) {
          if (probe !== 'startupProbe') findings.add('probe-endpoint', at, `has no ${probe}`)
          continue
        }
        const get = spec.httpGet as { path?: string; port?: unknown } | undefined
        const tcp = spec.tcpSocket as { port?: unknown } | undefined
        // NATS has no HTTP endpoint without its monitoring port: a TCP probe of a port it serves.
        if (get === undefined && tcp !== undefined && !phalanx) {
          if (resolvePort(tcp.port, [container.spec]) === undefined) {
            findings.add(
              'probe-endpoint',
              at,
              `${probe} port ${JSON.stringify(tcp.port)} is not a port of the container`,
            )
          }
          continue
        }
        if (get === undefined) {
          findings.add('probe-endpoint', at, `${probe} is not an HTTP GET`)
          continue
        }
        const port = resolvePort(get.port, [container.spec])
        if (port === undefined) {
          findings.add(
            'probe-endpoint',
            at,
            `${probe} port ${JSON.stringify(get.port)} is not a port of the container`,
          )
        }
        if (phalanx) {
          if (get.path !== path)
            findings.add('probe-endpoint', at, `${probe} path ${get.path} is not ${path}`)
          if (port !== undefined && port !== Number(container.env.PHALANX_OPS_PORT)) {
            findings.add(
              'probe-endpoint',
              at,
              `${probe} port ${port} is not the ops port ${container.env.PHALANX_OPS_PORT}`,
            )
          }
        } else if (!get.path?.startsWith('/healthz')) {
          findings.add('probe-endpoint', at, `${probe} path ${get.path} is not a /healthz endpoint`)
        }
      }
    }
  }
}

function checkQuorum(
  phalanx: PhalanxContainer[],
  objects: K8sObject[],
  pods: PlannedPod[],
  findings: Findings,
) {
  const main = phalanx.filter((entry) => entry.container.phase === 'main' && entry.config !== undefined)
  const servers = main.filter((entry) => entry.container.spec.args?.[0] === 'server')
  const workers = main.filter((entry) => entry.container.spec.args?.[0] === 'worker')
  const config = servers[0]?.config ?? workers[0]?.config
  if (config === undefined) return
  for (const entry of main) {
    const differs = (
      ['servers', 'byzantineServers', 'workers', 'byzantineWorkers', 'cluster'] as const
    ).filter((field) => entry.config![field] !== config[field])
    if (differs.length > 0) {
      findings.add(
        'invalid-config',
        where(entry.pod, entry.container),
        `disagrees with the other nodes on ${differs.join(', ')}`,
      )
    }
  }
  const quorum = config.servers - config.byzantineServers
  const serverWorkloads = new Set(servers.map((entry) => entry.pod.workload))
  for (const workload of serverWorkloads) {
    const replicas = (workload.spec as { replicas?: number }).replicas ?? 1
    if (replicas !== config.servers) {
      findings.add(
        'replicas',
        objectId(workload),
        `${replicas} server replicas but PHALANX_SERVERS=${config.servers}`,
      )
    }
  }
  const workerDeployments = objects.filter(
    (object) =>
      object.kind === 'Deployment' &&
      (
        (object.spec as { template: { spec: { containers: ContainerSpec[] } } }).template.spec.containers ??
        []
      ).some((container) => container.args?.[0] === 'worker'),
  )
  const declaredWorkers = workerDeployments.reduce(
    (sum, d) => sum + ((d.spec as { replicas?: number }).replicas ?? 1),
    0,
  )
  if (declaredWorkers !== config.workers) {
    findings.add(
      'replicas',
      'workers',
      `${declaredWorkers} worker replicas in all but PHALANX_WORKERS=${config.workers}`,
    )
  }
  const serverPods = pods.filter((pod) => servers.some((entry) => entry.pod === pod))
  const budgets = objects.filter(
    (object) =>
      object.kind === 'PodDisruptionBudget' &&
      serverPods.some((pod) =>
        selects(
          (object.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels,
          pod.labels,
        ),
      ),
  )
  if (budgets.length === 0)
    findings.add('pdb-quorum', 'servers', 'no PodDisruptionBudget protects the servers')
  for (const budget of budgets) {
    const minAvailable = (budget.spec as { minAvailable?: unknown }).minAvailable
    if (minAvailable !== quorum) {
      findings.add(
        'pdb-quorum',
        objectId(budget),
        `minAvailable is ${JSON.stringify(minAvailable)}, but the servers' quorum N−F is ${config.servers}−${config.byzantineServers} = ${quorum}`,
      )
    }
  }
  // Byzantine roles: each node decides from its own environment whether it is Byzantine.
  const nodeIds = new Set(main.map((entry) => entry.pod.name))
  let byzantineServers = 0
  let byzantineWorkers = 0
  for (const entry of main) {
    for (const id of entry.config!.byzantineNodeIds) {
      if (!nodeIds.has(id)) {
        findings.add(
          'byzantine-ids',
          where(entry.pod, entry.container),
          `PHALANX_BYZANTINE_NODE_IDS names ${id}, which no pod is`,
        )
      }
    }
    if (!isByzantine(entry.config!, entry.pod.name)) continue
    if (entry.container.spec.args?.[0] === 'server') byzantineServers++
    else byzantineWorkers++
  }
  if (byzantineServers > config.byzantineServers || byzantineWorkers > config.byzantineWorkers) {
    findings.add(
      'byzantine-ids',
      'cluster',
      `${byzantineServers} Byzantine servers and ${byzantineWorkers} Byzantine workers exceed F=${config.byzantineServers}, f=${config.byzantineWorkers}`,
    )
  }
}

/** `<service>.<namespace>.svc.cluster.local` */
const SERVICE_DNS_NAME = /^([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local$/

function checkAddresses(
  phalanx: PhalanxContainer[],
  pods: PlannedPod[],
  objects: K8sObject[],
  findings: Findings,
) {
  for (const { pod, container, config } of phalanx) {
    if (container.phase !== 'main' || config === undefined) continue
    const at = where(pod, container)
    if (config.bootstrap.length === 0) findings.add('bootstrap-target', at, 'PHALANX_BOOTSTRAP is empty')
    for (const address of config.bootstrap) {
      const match = /^\/dns4\/([^/]+)\/tcp\/(\d+)$/.exec(address)
      const target = match ? pods.find((candidate) => candidate.hostname === match[1]) : undefined
      const p2p = target?.containers
        .filter((c) => c.phase === 'main')
        .flatMap((c) => c.spec.ports ?? [])
        .find((port) => port.name === 'p2p')?.containerPort
      if (target === undefined || p2p !== Number(match?.[2])) {
        findings.add(
          'bootstrap-target',
          at,
          `bootstrap ${address} names no StatefulSet pod listening there (pods: ${pods.flatMap((p) => p.hostname ?? []).join(', ')})`,
        )
      }
    }
    if (config.natsUrl === undefined) continue
    let url: URL
    try {
      url = new URL(config.natsUrl)
    } catch {
      findings.add('nats-url', at, `PHALANX_NATS_URL ${config.natsUrl} is not a URL`)
      continue
    }
    const host = SERVICE_DNS_NAME.exec(url.hostname)
    const service = host
      ? objects.find(
          (object) =>
            object.kind === 'Service' &&
            object.metadata.name === host[1] &&
            object.metadata.namespace === host[2],
        )
      : undefined
    const servicePort = (service?.spec as { ports?: { port: number }[] } | undefined)?.ports?.find(
      (port) => port.port === Number(url.port || 4222),
    )
    if (service === undefined || servicePort === undefined) {
      findings.add('nats-url', at, `PHALANX_NATS_URL host ${url.host} is not a Service port of the manifests`)
      continue
    }
    const selector = (service.spec as { selector?: Record<string, string> }).selector
    const nats = pods.find((candidate) => selects(selector, candidate.labels))
    if (url.username !== '' || url.password !== '') {
      findings.add('nats-url', at, 'PHALANX_NATS_URL carries credentials: use a per-role nkey seed file')
    }
    // The node's NATS identity: a seed file from a mounted Secret, whose public key is a user of
    // the config the NATS pods run.
    const seedPath = container.env.PHALANX_NATS_NKEY_SEED_FILE
    const seedMount =
      seedPath === undefined
        ? undefined
        : plannedMounts(pod, container, objects).find((m) => seedPath.startsWith(`${m.mountPath}/`))
    const seed = seedMount?.files[seedPath!.slice(seedMount.mountPath.length + 1)]?.toString('utf8').trim()
    if (seed === undefined || seedMount?.source !== 'secret') {
      findings.add('nats-url', at, 'PHALANX_NATS_NKEY_SEED_FILE is not a file of a mounted Secret')
      continue
    }
    let publicKey = ''
    try {
      publicKey = nkeys.fromSeed(new TextEncoder().encode(seed)).getPublicKey()
    } catch {
      findings.add('nats-url', at, 'PHALANX_NATS_NKEY_SEED_FILE holds no nkey seed')
      continue
    }
    const natsConfig = nats === undefined ? undefined : natsConfigOf(nats, objects)
    if (natsConfig === undefined || !natsConfig.includes(`nkey: "${publicKey}"`)) {
      findings.add(
        'nats-url',
        at,
        `the nkey ${publicKey} of PHALANX_NATS_NKEY_SEED_FILE is no user of the NATS config`,
      )
    }
  }
}

/** The `nats.conf` a NATS pod mounts, with the checks of its routes and ports. */
function checkNats(pods: PlannedPod[], objects: K8sObject[], findings: Findings) {
  for (const pod of pods) {
    const container = pod.containers.find((c) => c.phase === 'main' && c.argv[0] === 'nats-server')
    if (container === undefined) continue
    const at = where(pod, container)
    const configPath = container.argv[container.argv.indexOf('--config') + 1] ?? ''
    const text = natsConfigOf(pod, objects)
    if (text === undefined) {
      findings.add('nats-routes', at, `--config ${configPath} is not a file of a mounted ConfigMap or Secret`)
      continue
    }
    // The monitoring port lists every connection and subscription: it must not be served.
    if (/^\s*(http|https|http_port|monitor_port):/m.test(text)) {
      findings.add('nats-routes', at, 'nats.conf serves the http monitoring port')
    }
    const ports: [RegExp, string][] = [[/^\s*listen:\s*[\d.]*:(\d+)/m, 'client']]
    for (const [pattern, name] of ports) {
      const port = Number(pattern.exec(text)?.[1])
      if (resolvePort(name, [container.spec]) !== port) {
        findings.add(
          'nats-routes',
          at,
          `nats.conf serves ${name} on ${port}, the container port "${name}" differs`,
        )
      }
    }
    const replicas = (pod.workload.spec as { replicas?: number }).replicas ?? 1
    const routes = [...text.matchAll(/nats:\/\/(?:[^@\s"]+@)?([a-z0-9.-]+):(\d+)/g)]
    if (replicas > 1 && !/cluster\s*\{[^}]*authorization\s*\{/s.test(text)) {
      findings.add(
        'nats-routes',
        at,
        'the cluster block has no authorization: anyone could connect as a route',
      )
    }
    if (replicas > 1 && !/^\s*cluster\s*\{/m.test(text)) {
      findings.add(
        'nats-routes',
        at,
        `${replicas} NATS pods but no cluster block: they would not form one JetStream cluster`,
      )
    }
    for (const [, host, port] of routes) {
      const target = pods.find((candidate) => candidate.hostname === host)
      if (target === undefined || resolvePort('cluster', [container.spec]) !== Number(port)) {
        findings.add('nats-routes', at, `route ${host}:${port} is not a NATS pod's cluster port`)
      }
    }
    const storeDir = /store_dir:\s*"?([^"\s]+)"?/.exec(text)?.[1]
    if (storeDir !== undefined) checkWritable(pod, container, storeDir, 'JetStream store_dir', findings)
  }
}

/** The config file a NATS pod's `--config` names, from its mounted ConfigMap or Secret. */
function natsConfigOf(pod: PlannedPod, objects: K8sObject[]): string | undefined {
  const container = pod.containers.find((c) => c.phase === 'main' && c.argv[0] === 'nats-server')
  if (container === undefined) return undefined
  const configPath = container.argv[container.argv.indexOf('--config') + 1] ?? ''
  const mount = plannedMounts(pod, container, objects).find((m) => configPath.startsWith(`${m.mountPath}/`))
  if (mount === undefined || (mount.source !== 'configMap' && mount.source !== 'secret')) return undefined
  return mount.files[configPath.slice(mount.mountPath.length + 1)]?.toString('utf8')
}

function checkWritable(
  pod: PlannedPod,
  container: PlannedContainer,
  path: string,
  what: string,
  findings: Findings,
) {
  const mount = (container.spec.volumeMounts ?? [])
    .filter((m) => path === m.mountPath || path.startsWith(`${m.mountPath}/`))
    .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
  const volumes = (pod.podSpec.volumes as Record<string, unknown>[] | undefined) ?? []
  const claims = (
    (pod.workload.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ??
    []
  ).map((claim) => claim.metadata.name)
  const volume = volumes.find((v) => v.name === mount?.name)
  const writable =
    mount !== undefined &&
    mount.readOnly !== true &&
    (claims.includes(mount.name) ||
      volume?.emptyDir !== undefined ||
      volume?.persistentVolumeClaim !== undefined)
  if (!writable) {
    findings.add(
      'writable-path',
      where(pod, container),
      `${what} ${path} is not on a writable volume (the root filesystem is read-only)`,
    )
  }
}

function checkSecurity(
  phalanx: PhalanxContainer[],
  pods: PlannedPod[],
  findings: Findings,
  context: CheckContext,
) {
  for (const pod of pods) {
    const podContext = (pod.podSpec.securityContext ?? {}) as Record<string, unknown>
    const object = objectId(pod.workload)
    if (podContext.runAsNonRoot !== true)
      findings.add('security', object, 'pod securityContext.runAsNonRoot is not true')
    if ((podContext.seccompProfile as { type?: string } | undefined)?.type !== 'RuntimeDefault') {
      findings.add('security', object, 'pod seccompProfile is not RuntimeDefault')
    }
    const runsPhalanx = pod.containers.some((c) => isPhalanxImage(c.spec.image))
    if (runsPhalanx && pod.podSpec.enableServiceLinks !== false) {
      findings.add(
        'security',
        object,
        'enableServiceLinks is not false: service links inject variables into the node env',
      )
    }
    if (
      runsPhalanx &&
      context.dockerfile.user !== undefined &&
      podContext.runAsUser !== context.dockerfile.user.uid
    ) {
      findings.add(
        'security',
        object,
        `runAsUser ${podContext.runAsUser} is not the image's USER ${context.dockerfile.user.uid}`,
      )
    }
    for (const container of pod.containers) {
      const at = where(pod, container)
      const sc = (container.spec.securityContext ?? {}) as Record<string, unknown>
      if (sc.allowPrivilegeEscalation !== false)
        findings.add('security', at, 'allowPrivilegeEscalation is not false')
      if (sc.readOnlyRootFilesystem !== true)
        findings.add('security', at, 'readOnlyRootFilesystem is not true')
      if (!((sc.capabilities as { drop?: string[] } | undefined)?.drop ?? []).includes('ALL')) {
        findings.add('security', at, 'capabilities.drop does not include ALL')
      }
      for (const kind of ['requests', 'limits'] as const) {
        for (const resource of ['cpu', 'memory']) {
          if (container.spec.resources?.[kind]?.[resource] === undefined) {
            findings.add('resources', at, `resources.${kind}.${resource} is not set`)
          }
        }
      }
    }
  }
  for (const { pod, container, config } of phalanx) {
    if (config === undefined) continue
    for (const [what, path] of [
      ['PHALANX_KEY_FILE', config.keyFile],
      ['PHALANX_OUT', config.out],
    ] as const) {
      if (path !== undefined) checkWritable(pod, container, path, what, findings)
    }
  }
}

/** https://kubernetes.io/docs/concepts/overview/working-with-objects/common-labels/ */
export const RECOMMENDED_LABELS = [
  'app.kubernetes.io/name',
  'app.kubernetes.io/instance',
  'app.kubernetes.io/version',
  'app.kubernetes.io/component',
  'app.kubernetes.io/part-of',
  'app.kubernetes.io/managed-by',
] as const

/**
 * Every object, pod template and volume claim template carries the recommended labels; the
 * version is the image's (the Dockerfile's, which is the CLI's), the instance the cluster's name.
 */
function checkLabels(
  objects: K8sObject[],
  phalanx: PhalanxContainer[],
  findings: Findings,
  context: CheckContext,
) {
  const version = context.dockerfile.labels['org.opencontainers.image.version']
  const cluster = phalanx.find((entry) => entry.config !== undefined)?.config?.cluster
  const expected: Partial<Record<(typeof RECOMMENDED_LABELS)[number], string | undefined>> = {
    'app.kubernetes.io/version': version,
    'app.kubernetes.io/instance': cluster,
    'app.kubernetes.io/part-of': 'phalanx',
  }
  const check = (labels: Record<string, string> | undefined, where: string) => {
    for (const label of RECOMMENDED_LABELS) {
      const value = labels?.[label]
      if (value === undefined || value === '') findings.add('labels', where, `has no ${label} label`)
      else if (expected[label] !== undefined && value !== expected[label]) {
        findings.add('labels', where, `${label} is ${value}, expected ${expected[label]}`)
      }
    }
  }
  for (const object of objects) {
    const id = objectId(object)
    check(object.metadata.labels, id)
    if (podSpecOf(object) === undefined) continue
    const spec = object.spec as {
      template: { metadata?: { labels?: Record<string, string> } }
      volumeClaimTemplates?: { metadata: { name: string; labels?: Record<string, string> } }[]
    }
    check(spec.template.metadata?.labels, `${id} pod template`)
    for (const claim of spec.volumeClaimTemplates ?? [])
      check(claim.metadata.labels, `${id} claim ${claim.metadata.name}`)
  }
}

interface PodMonitorSpec {
  selector?: { matchLabels?: Record<string, string> }
  namespaceSelector?: { any?: boolean; matchNames?: string[] }
  podMetricsEndpoints?: { port?: string; path?: string }[]
}

/**
 * Each node is scraped exactly once: through its pod's prometheus.io annotations, a Service's or a
 * PodMonitor, never two of them; a PodMonitor's endpoint is the nodes' ops port and `/metrics`.
 */
function checkScrapes(pods: PlannedPod[], objects: K8sObject[], findings: Findings) {
  const scrapedBy = new Map<PlannedPod, string[]>()
  const add = (pod: PlannedPod, by: string) => scrapedBy.set(pod, [...(scrapedBy.get(pod) ?? []), by])
  for (const pod of pods) {
    const annotations = (
      pod.workload.spec as { template: { metadata?: { annotations?: Record<string, string> } } }
    ).template.metadata?.annotations
    if (annotations?.['prometheus.io/scrape'] === 'true') add(pod, 'its pod annotations')
  }
  for (const service of objects.filter((object) => object.kind === 'Service')) {
    if (service.metadata.annotations?.['prometheus.io/scrape'] !== 'true') continue
    const selector = (service.spec as { selector?: Record<string, string> }).selector
    for (const pod of pods) {
      if (pod.namespace === service.metadata.namespace && selects(selector, pod.labels))
        add(pod, objectId(service))
    }
  }
  for (const monitor of objects.filter((object) => object.kind === 'PodMonitor')) {
    const id = objectId(monitor)
    const spec = monitor.spec as PodMonitorSpec
    const namespaces = spec.namespaceSelector
    const selected = pods.filter(
      (pod) =>
        (namespaces?.any === true ||
          (namespaces?.matchNames ?? [monitor.metadata.namespace]).includes(pod.namespace)) &&
        selects(spec.selector?.matchLabels, pod.labels),
    )
    if (!selected.some((pod) => pod.containers.some((c) => isPhalanxImage(c.spec.image)))) {
      findings.add('pod-monitor', id, `selector ${JSON.stringify(spec.selector)} selects no Phalanx pod`)
    }
    for (const pod of selected) {
      add(pod, id)
      const main = pod.containers.filter((c) => c.phase === 'main')
      const ops = main.map((c) => c.env.PHALANX_OPS_PORT).find((value) => value !== undefined)
      for (const endpoint of spec.podMetricsEndpoints ?? []) {
        const port = resolvePort(
          endpoint.port,
          main.map((c) => c.spec),
        )
        if (port === undefined || String(port) !== ops) {
          findings.add(
            'pod-monitor',
            id,
            `port ${JSON.stringify(endpoint.port)} is not ${pod.name}'s ops port ${ops}`,
          )
        }
        if (endpoint.path !== '/metrics')
          findings.add('pod-monitor', id, `path ${endpoint.path} is not /metrics`)
      }
    }
  }
  for (const [pod, by] of scrapedBy) {
    if (by.length > 1)
      findings.add('prometheus', pod.name, `scraped ${by.length} times: by ${by.join(' and by ')}`)
  }
}

let exported: ReturnType<typeof exportedMetrics> | undefined

/** Every alert and recording rule is PromQL naming only what the nodes export. */
function checkRules(objects: K8sObject[], findings: Findings) {
  for (const rule of objects.filter((object) => object.kind === 'PrometheusRule')) {
    const groups = (
      rule.spec as {
        groups?: { name: string; rules?: { alert?: string; record?: string; expr: unknown }[] }[]
      }
    ).groups
    for (const group of groups ?? []) {
      for (const entry of group.rules ?? []) {
        const where = `${objectId(rule)} ${group.name}/${entry.alert ?? entry.record}`
        exported ??= exportedMetrics()
        try {
          for (const name of unexported(String(entry.expr), exported))
            findings.add('alert-rule', where, `${name} is not exported by the nodes`)
        } catch (error) {
          findings.add('alert-rule', where, (error as Error).message)
        }
      }
    }
  }
}

/** A server's state directory survives the pod: on a claim of the StatefulSet, not an emptyDir. */
function checkServerState(phalanx: PhalanxContainer[], findings: Findings) {
  for (const { pod, container, config } of phalanx) {
    if (container.phase !== 'main' || container.spec.args?.[0] !== 'server' || config === undefined) continue
    const at = where(pod, container)
    if (config.stateDir === undefined) {
      findings.add('server-state', at, 'PHALANX_STATE_DIR is not set: a restarted server forgets its models')
      continue
    }
    const mount = (container.spec.volumeMounts ?? [])
      .filter((m) => config.stateDir === m.mountPath || config.stateDir!.startsWith(`${m.mountPath}/`))
      .sort((a, b) => b.mountPath.length - a.mountPath.length)[0]
    const claims = (
      (pod.workload.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] })
        .volumeClaimTemplates ?? []
    ).map((claim) => claim.metadata.name)
    const volume = ((pod.podSpec.volumes as Record<string, unknown>[] | undefined) ?? []).find(
      (v) => v.name === mount?.name,
    )
    if (
      mount === undefined ||
      (!claims.includes(mount.name) && volume?.persistentVolumeClaim === undefined)
    ) {
      findings.add(
        'server-state',
        at,
        `PHALANX_STATE_DIR ${config.stateDir} is not on a PersistentVolumeClaim (volume ${mount?.name ?? 'none'}): it would not outlive the pod`,
      )
    }
  }
}

/** Every finding over a rendered set of manifests; none for a good one. */
export function checkManifests(objects: K8sObject[], context: CheckContext): ManifestIssue[] {
  const findings = new Findings()
  checkSchemas(objects, findings)
  let pods: PlannedPod[]
  try {
    pods = planPods(objects, { entrypoints: { [context.image]: context.dockerfile.entrypoint } })
  } catch (error) {
    findings.add('env-reference', 'pods', `${(error as Error).name}: ${(error as Error).message}`)
    return findings.issues
  }
  const phalanx = checkEnvironment(pods, findings, context)
  checkCommands(phalanx, pods, findings, context)
  checkPorts(phalanx, pods, objects, findings, context)
  checkProbes(pods, findings)
  checkQuorum(phalanx, objects, pods, findings)
  checkAddresses(phalanx, pods, objects, findings)
  checkNats(pods, objects, findings)
  checkSecurity(phalanx, pods, findings, context)
  checkLabels(objects, phalanx, findings, context)
  checkScrapes(pods, objects, findings)
  checkRules(objects, findings)
  checkServerState(phalanx, findings)
  const trusted = phalanx.flatMap(({ pod, container, config }) =>
    config === undefined ? [] : [{ pod, container, config }],
  )
  for (const issue of checkTrust(trusted, objects)) findings.add(issue.rule, issue.object, issue.message)
  return findings.issues
}

/** The Dockerfile against the CLI package it packages. */
export function checkDockerfile(
  facts: DockerfileFacts,
  cli: { version: string; bin: Record<string, string> },
  workspaces: readonly string[] = [],
): ManifestIssue[] {
  const findings = new Findings()
  // npm ci needs every workspace's package.json before the sources are copied.
  for (const workspace of workspaces) {
    if (!facts.contextCopies.includes(`${workspace}/package.json`)) {
      findings.add('dockerfile', 'COPY', `${workspace}/package.json is not copied before npm ci`)
    }
  }
  const runtime = facts.stages.at(-1) ?? ''
  if (!/^node:20[.\w-]*slim$/.test(runtime))
    findings.add('dockerfile', 'FROM', `runtime stage ${runtime} is not node:20 slim`)
  // The CLI's linked bin (`bin/phalanx.js`) only finds and runs the built command, dist/bin.js,
  // which is also the path every node process is started with: the image runs that directly.
  const binPath = cli.bin.phalanx === undefined ? undefined : '/app/packages/cli/dist/bin.js'
  if (facts.entrypoint[0] !== 'node' || binPath === undefined || facts.entrypoint[1] !== binPath) {
    findings.add(
      'dockerfile',
      'ENTRYPOINT',
      `${JSON.stringify(facts.entrypoint)} does not run the CLI's built command ${binPath ?? '(the CLI has no bin)'}`,
    )
  }
  if (facts.user === undefined || facts.user.uid === 0)
    findings.add('dockerfile', 'USER', 'the image runs as root (or a non-numeric user)')
  if (facts.labels['org.opencontainers.image.version'] !== cli.version) {
    findings.add(
      'dockerfile',
      'LABEL',
      `image version ${facts.labels['org.opencontainers.image.version']} is not the CLI's ${cli.version}`,
    )
  }
  if (!facts.healthcheck.includes('/healthz') || !facts.healthcheck.includes('PHALANX_OPS_PORT')) {
    findings.add('dockerfile', 'HEALTHCHECK', 'does not query /healthz on PHALANX_OPS_PORT')
  }
  const opsPort = Number(facts.env.PHALANX_OPS_PORT)
  const p2pPort = tcpPort(facts.env.PHALANX_LISTEN ?? '')
  for (const port of [opsPort, p2pPort]) {
    if (port === undefined || !facts.exposed.includes(port)) {
      findings.add('dockerfile', 'EXPOSE', `port ${port} (PHALANX_OPS_PORT / PHALANX_LISTEN) is not exposed`)
    }
  }
  for (const name of Object.keys(facts.env)) {
    if (name.startsWith('PHALANX_') && !knownEnv.has(name)) {
      findings.add('dockerfile', 'ENV', `${name} is not a field of the config schema`)
    }
  }
  return findings.issues
}
