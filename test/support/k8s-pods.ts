/**
 * The pods a rendered set of manifests would create, each container with the argv and the
 * environment the kubelet would give it (downward API, ConfigMap and Secret references, `$(VAR)`
 * expansion with envFrom applied first). The manifest checks use it, and so can anything that
 * runs the manifests' containers outside Kubernetes: it is the one reading of the manifests.
 */

import { createHash } from 'node:crypto'
import { PhalanxError } from '@phalanx/errors'
import { type K8sObject, podSpecOf } from './k8s-render.js'

export class EnvReferenceError extends PhalanxError<
  'env_reference',
  { pod: string; container: string; variable: string }
> {
  override readonly name = 'EnvReferenceError'
  declare readonly pod: string
  declare readonly container: string
  declare readonly variable: string
  constructor(message: string, values: { pod: string; container: string; variable: string }) {
    super('env_reference', values, { message })
  }
}

export interface ContainerPort {
  name?: string
  containerPort: number
  protocol?: string
}

export interface ContainerSpec {
  name: string
  image: string
  command?: string[]
  args?: string[]
  env?: Record<string, unknown>[]
  envFrom?: Record<string, unknown>[]
  ports?: ContainerPort[]
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean; subPath?: string }[]
  readinessProbe?: Record<string, unknown>
  livenessProbe?: Record<string, unknown>
  startupProbe?: Record<string, unknown>
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> }
  securityContext?: Record<string, unknown>
}

export interface PlannedContainer {
  /** `init` containers run to completion, in order, before the `main` ones start. */
  phase: 'init' | 'main'
  spec: ContainerSpec
  /** `command` + `args`, or the image's entrypoint + `args` when the container sets no command. */
  argv: string[]
  env: Record<string, string>
}

export interface PlannedPod {
  name: string
  namespace: string
  workload: K8sObject
  labels: Record<string, string>
  /** StatefulSet pods: `<name>.<serviceName>.<namespace>.svc.cluster.local`. */
  hostname?: string
  podSpec: Record<string, unknown>
  containers: PlannedContainer[]
}

export interface PlanOptions {
  /** The image's ENTRYPOINT by image (repository:tag), for containers that set no command. */
  entrypoints?: Record<string, string[]>
  podIP?: (podName: string) => string
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'

/** Deterministic stand-in for the random part of a Deployment pod name (same alphabet, same shape). */
function nameChars(seed: string, length: number): string {
  const digest = createHash('sha256').update(seed).digest()
  return Array.from(digest.subarray(0, length), (byte) => NAME_ALPHABET[byte % NAME_ALPHABET.length]).join('')
}

function podNames(workload: K8sObject): string[] {
  const spec = workload.spec as { replicas?: number; template?: unknown }
  const replicas = spec.replicas ?? 1
  const name = workload.metadata.name
  if (workload.kind === 'StatefulSet') return Array.from({ length: replicas }, (_, i) => `${name}-${i}`)
  const templateHash = nameChars(JSON.stringify(spec.template), 10)
  return Array.from({ length: replicas }, (_, i) => `${name}-${templateHash}-${nameChars(`${name}/${i}`, 5)}`)
}

function fieldRef(path: string, pod: PlannedPod, options: PlanOptions): string | undefined {
  if (path === 'metadata.name') return pod.name
  if (path === 'metadata.namespace') return pod.namespace
  if (path === 'status.podIP') return options.podIP?.(pod.name)
  const label = /^metadata\.labels\['(.+)'\]$/.exec(path)
  return label ? pod.labels[label[1]!] : undefined
}

/** kubelet's `$(VAR)` expansion: defined names expand, `$$` escapes, anything else stays as written. */
export function expandVariables(value: string, defined: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (match, name: string | undefined) => {
    if (name === undefined) return '$'
    return defined[name] ?? match
  })
}

/**
 * A ConfigMap's or Secret's entries as bytes: a Secret's `data` is base64 of any bytes (a peer key
 * is binary), so nothing is decoded as text before a consumer asks for text.
 */
function bytesOf(
  objects: K8sObject[],
  kind: 'ConfigMap' | 'Secret',
  name: string,
  namespace: string,
): Record<string, Buffer> | undefined {
  const object = objects.find(
    (candidate) =>
      candidate.kind === kind &&
      candidate.metadata.name === name &&
      candidate.metadata.namespace === namespace,
  )
  if (object === undefined) return undefined
  const data = (object.data ?? {}) as Record<string, string>
  if (kind === 'ConfigMap') {
    return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'utf8')]))
  }
  // As the API server does: `stringData` entries are written over `data`, in plain text.
  const stringData = (object.stringData ?? {}) as Record<string, string>
  return {
    ...Object.fromEntries(Object.entries(data).map(([key, value]) => [key, Buffer.from(value, 'base64')])),
    ...Object.fromEntries(
      Object.entries(stringData).map(([key, value]) => [key, Buffer.from(value, 'utf8')]),
    ),
  }
}

/** The entries as text: what an environment variable holds. */
function dataOf(objects: K8sObject[], kind: 'ConfigMap' | 'Secret', name: string, namespace: string) {
  const bytes = bytesOf(objects, kind, name, namespace)
  if (bytes === undefined) return undefined
  return Object.fromEntries(Object.entries(bytes).map(([key, value]) => [key, value.toString('utf8')]))
}

function resolveEnv(
  container: ContainerSpec,
  pod: PlannedPod,
  objects: K8sObject[],
  options: PlanOptions,
): Record<string, string> {
  const env: Record<string, string> = {}
  const where = { pod: pod.name, container: container.name }
  for (const source of container.envFrom ?? []) {
    const ref = (source.configMapRef ?? source.secretRef) as { name: string; optional?: boolean }
    const kind = source.configMapRef !== undefined ? 'ConfigMap' : 'Secret'
    const data = dataOf(objects, kind, ref.name, pod.namespace)
    if (data === undefined) {
      if (ref.optional === true) continue
      throw new EnvReferenceError(
        `${pod.name}/${container.name}: envFrom ${kind} ${ref.name} does not exist`,
        {
          ...where,
          variable: `envFrom:${ref.name}`,
        },
      )
    }
    const prefix = typeof source.prefix === 'string' ? source.prefix : ''
    for (const [key, value] of Object.entries(data)) env[`${prefix}${key}`] = value
  }
  for (const entry of container.env ?? []) {
    const name = entry.name as string
    if (typeof entry.value === 'string') {
      env[name] = expandVariables(entry.value, env)
      continue
    }
    const from = (entry.valueFrom ?? {}) as Record<string, Record<string, unknown>>
    let value: string | undefined
    if (from.fieldRef !== undefined) {
      value = fieldRef(from.fieldRef.fieldPath as string, pod, options)
    } else if (from.configMapKeyRef !== undefined || from.secretKeyRef !== undefined) {
      const ref = (from.configMapKeyRef ?? from.secretKeyRef)!
      const kind = from.configMapKeyRef !== undefined ? 'ConfigMap' : 'Secret'
      value = dataOf(objects, kind, ref.name as string, pod.namespace)?.[ref.key as string]
      if (value === undefined && ref.optional === true) continue
    } else if (entry.value === undefined && entry.valueFrom === undefined) {
      value = ''
    }
    if (value === undefined) {
      throw new EnvReferenceError(
        `${pod.name}/${container.name}: env ${name} refers to ${JSON.stringify(entry.valueFrom)}, which does not resolve`,
        { ...where, variable: name },
      )
    }
    env[name] = value
  }
  return env
}

/** Every pod of every workload in `objects`, in the order the manifests list them. */
export function planPods(objects: K8sObject[], options: PlanOptions = {}): PlannedPod[] {
  const pods: PlannedPod[] = []
  for (const workload of objects) {
    const podSpec = podSpecOf(workload)
    if (podSpec === undefined) continue
    const template = (workload.spec as { template: { metadata?: { labels?: Record<string, string> } } })
      .template
    const serviceName = (workload.spec as { serviceName?: string }).serviceName
    const namespace = workload.metadata.namespace ?? 'default'
    for (const name of podNames(workload)) {
      const pod: PlannedPod = {
        name,
        namespace,
        workload,
        labels: { ...(template.metadata?.labels ?? {}) },
        podSpec,
        containers: [],
      }
      if (workload.kind === 'StatefulSet' && serviceName !== undefined) {
        pod.hostname = `${name}.${serviceName}.${namespace}.svc.cluster.local`
      }
      for (const [phase, list] of [
        ['init', 'initContainers'],
        ['main', 'containers'],
      ] as const) {
        for (const spec of (podSpec[list] as ContainerSpec[] | undefined) ?? []) {
          const env = resolveEnv(spec, pod, objects, options)
          const entrypoint = options.entrypoints?.[spec.image] ?? []
          const argv = [...(spec.command ?? entrypoint), ...(spec.args ?? [])].map((arg) =>
            expandVariables(arg, env),
          )
          pod.containers.push({ phase, spec, argv, env })
        }
      }
      pods.push(pod)
    }
  }
  return pods
}

export interface PlannedMount {
  /** The pod volume mounted: containers of one pod that mount the same volume share its files. */
  volume: string
  mountPath: string
  readOnly: boolean
  /** Where the files come from: a fresh directory per pod (`emptyDir`), one per pod that outlives
   * it (`claim`, a StatefulSet volume claim), or the files of a ConfigMap or Secret. */
  source: 'emptyDir' | 'claim' | 'configMap' | 'secret'
  /** The files a ConfigMap or Secret volume holds, byte for byte (Secret values base64-decoded), by file name. */
  files: Record<string, Buffer>
  /** File mode of a ConfigMap/Secret volume's files. */
  mode?: number
}

/** What each volume mount of a container is, with the files to put there. */
export function plannedMounts(
  pod: PlannedPod,
  container: PlannedContainer,
  objects: K8sObject[],
): PlannedMount[] {
  const volumes = (pod.podSpec.volumes as ({ name: string } & Record<string, unknown>)[] | undefined) ?? []
  const claims =
    (pod.workload.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ??
    []
  return (container.spec.volumeMounts ?? []).map((mount): PlannedMount => {
    const base = {
      volume: mount.name,
      mountPath: mount.mountPath,
      readOnly: mount.readOnly === true,
      files: {},
    }
    if (claims.some((claim) => claim.metadata.name === mount.name)) return { ...base, source: 'claim' }
    const volume = volumes.find((candidate) => candidate.name === mount.name)
    if (volume?.emptyDir !== undefined) return { ...base, source: 'emptyDir' }
    const source =
      volume?.configMap !== undefined ? 'configMap' : volume?.secret !== undefined ? 'secret' : undefined
    if (source === undefined) {
      throw new EnvReferenceError(`${pod.name}/${container.spec.name}: volume ${mount.name} is not planned`, {
        pod: pod.name,
        container: container.spec.name,
        variable: `volume:${mount.name}`,
      })
    }
    const ref = volume![source] as {
      name?: string
      secretName?: string
      optional?: boolean
      defaultMode?: number
    }
    const name = (source === 'configMap' ? ref.name : ref.secretName) ?? ''
    const data = bytesOf(objects, source === 'configMap' ? 'ConfigMap' : 'Secret', name, pod.namespace)
    if (data === undefined && ref.optional !== true) {
      throw new EnvReferenceError(
        `${pod.name}/${container.spec.name}: volume ${mount.name} needs ${source} ${name}`,
        {
          pod: pod.name,
          container: container.spec.name,
          variable: `volume:${mount.name}`,
        },
      )
    }
    return {
      ...base,
      source,
      files: { ...(data ?? {}) },
      ...(ref.defaultMode === undefined ? {} : { mode: ref.defaultMode }),
    }
  })
}

export interface ServiceRecord {
  /** `<service>.<namespace>.svc.cluster.local` */
  name: string
  headless: boolean
  /** The pods the selector matches, ready or not (what a headless name resolves to). */
  pods: string[]
  /** Service port → the container port it reaches. */
  ports: { name?: string; port: number; targetPort: number | undefined }[]
}

/** DNS names of the Services, with the pods behind them and the ports they map. */
export function serviceRecords(objects: K8sObject[], pods: PlannedPod[]): ServiceRecord[] {
  return objects
    .filter((object) => object.kind === 'Service')
    .map((service) => {
      const spec = service.spec as {
        clusterIP?: string
        selector?: Record<string, string>
        ports?: { name?: string; port: number; targetPort?: number | string }[]
      }
      const selected = pods.filter(
        (pod) =>
          pod.namespace === service.metadata.namespace &&
          Object.entries(spec.selector ?? {}).every(([key, value]) => pod.labels[key] === value),
      )
      const containerPorts =
        selected[0]?.containers.filter((c) => c.phase === 'main').flatMap((c) => c.spec.ports ?? []) ?? []
      return {
        name: `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`,
        headless: spec.clusterIP === 'None',
        pods: selected.map((pod) => pod.name),
        ports: (spec.ports ?? []).map((port) => {
          const target = port.targetPort ?? port.port
          const resolved =
            typeof target === 'number'
              ? target
              : containerPorts.find((candidate) => candidate.name === target)?.containerPort
          return {
            ...(port.name === undefined ? {} : { name: port.name }),
            port: port.port,
            targetPort: resolved,
          }
        }),
      }
    })
}
