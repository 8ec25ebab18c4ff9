/**
 * A small kustomize renderer: exactly the features the manifests in `k8s/` use (resources,
 * namespace, labels, strategic-merge patches by kind and name, configMap/secret generators with
 * literals, files and labels, images), so that `npm test` renders the overlays on a machine without kubectl. Any
 * other kustomization field is refused with `UnsupportedKustomizeFieldError` rather than
 * silently ignored; the tests compare the output with `kubectl kustomize` where kubectl exists.
 */

import { existsSync, readFileSync, statSync } from 'node:fs'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { PhalanxError } from '@phalanx/errors'
import { parseAllDocuments } from 'yaml'

export interface K8sObject {
  apiVersion: string
  kind: string
  metadata: {
    name: string
    namespace?: string
    labels?: Record<string, string>
    annotations?: Record<string, string>
  }
  [field: string]: unknown
}

export class UnsupportedKustomizeFieldError extends PhalanxError<
  'unsupported_kustomize_field',
  { field: string; path: string }
> {
  override readonly name = 'UnsupportedKustomizeFieldError'
  declare readonly field: string
  declare readonly path: string
  constructor(message: string, values: { field: string; path: string }) {
    super('unsupported_kustomize_field', values, { message })
  }
}

export class ManifestParseError extends PhalanxError<'manifest_parse', { path: string }> {
  override readonly name = 'ManifestParseError'
  declare readonly path: string
  constructor(message: string, values: { path: string }, options?: { cause?: unknown }) {
    super('manifest_parse', values, { message, ...options })
  }
}

export class PatchTargetNotFoundError extends PhalanxError<
  'patch_target_not_found',
  { kind: string; objectName: string }
> {
  override readonly name = 'PatchTargetNotFoundError'
  declare readonly kind: string
  declare readonly objectName: string
  constructor(message: string, values: { kind: string; name: string }) {
    super('patch_target_not_found', { kind: values.kind, objectName: values.name }, { message })
  }
}

const SUPPORTED_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'labels',
  'resources',
  'patches',
  'configMapGenerator',
  'secretGenerator',
  'generatorOptions',
  'images',
])

/** Kinds the namespace transformer leaves alone (cluster-scoped). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'PersistentVolume',
  'StorageClass',
  'CustomResourceDefinition',
  'PriorityClass',
])

const POD_TEMPLATE_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'])

/** Parses YAML the way Kubernetes does (YAML 1.1: `0440` is octal, `yes` is a boolean). */
export function parseManifests(text: string, path: string): unknown[] {
  const documents = parseAllDocuments(text, { version: '1.1' })
  const values: unknown[] = []
  for (const document of documents) {
    if (document.errors.length > 0) {
      throw new ManifestParseError(`${path}: ${document.errors[0]!.message}`, { path })
    }
    const value: unknown = document.toJS()
    if (value !== null && value !== undefined) values.push(value)
  }
  return values
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function asObject(value: unknown, path: string): K8sObject {
  const metadata = isRecord(value) ? value.metadata : undefined
  if (
    !isRecord(value) ||
    typeof value.kind !== 'string' ||
    typeof value.apiVersion !== 'string' ||
    !isRecord(metadata) ||
    typeof metadata.name !== 'string'
  ) {
    throw new ManifestParseError(`${path}: a manifest needs apiVersion, kind and metadata.name`, { path })
  }
  return value as K8sObject
}

/** `kind/name` (and namespace when set), the identity kustomize matches patches and generators by. */
export function objectId(object: K8sObject): string {
  const namespace = object.metadata.namespace
  return `${object.kind}/${namespace === undefined ? '' : `${namespace}/`}${object.metadata.name}`
}

function findTarget(objects: K8sObject[], kind: string, name: string, namespace?: string): number {
  return objects.findIndex(
    (object) =>
      object.kind === kind &&
      object.metadata.name === name &&
      (namespace === undefined || object.metadata.namespace === namespace),
  )
}

/** The key strategic merge uses to merge list items, for the lists our manifests patch. */
function mergeKey(field: string, items: unknown[]): string | undefined {
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
    case 'volumeClaimTemplates':
      return field === 'volumeClaimTemplates' ? undefined : 'name'
    case 'volumeMounts':
      return 'mountPath'
    case 'ports':
      return items.some((item) => isRecord(item) && 'containerPort' in item) ? 'containerPort' : 'port'
    default:
      return undefined
  }
}

/** Kubernetes strategic merge patch for maps and keyed lists; other lists are replaced. */
export function strategicMerge(target: unknown, patch: unknown, field = '', path = ''): unknown {
  if (isRecord(patch)) {
    const result: Record<string, unknown> = isRecord(target) ? { ...target } : {}
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) {
        throw new UnsupportedKustomizeFieldError(`patch directive ${key} is not supported`, {
          field: key,
          path,
        })
      }
      if (value === null) delete result[key]
      else result[key] = strategicMerge(result[key], value, key, path)
    }
    return result
  }
  if (Array.isArray(patch) && Array.isArray(target)) {
    const key = mergeKey(field, [...target, ...patch])
    if (key === undefined) return structuredClone(patch)
    const result = [...target]
    for (const item of patch) {
      const index = isRecord(item)
        ? result.findIndex((existing) => isRecord(existing) && existing[key] === item[key])
        : -1
      if (index >= 0) result[index] = strategicMerge(result[index], item, field, path)
      else result.push(structuredClone(item))
    }
    return result
  }
  return structuredClone(patch)
}

interface Generator {
  name: string
  namespace?: string
  behavior?: 'create' | 'merge' | 'replace'
  literals?: string[]
  /** `path` (the key is its file name) or `key=path`, relative to the kustomization. */
  files?: string[]
  type?: string
  /** Of kustomize's generator options, only the labels of the generated object. */
  options?: { labels?: Record<string, string> }
}

/** `KEY=value`; kustomize drops one pair of matching quotes around the value. */
function parseLiteral(literal: string, path: string): [string, string] {
  const separator = literal.indexOf('=')
  if (separator <= 0) {
    throw new ManifestParseError(`${path}: literal "${literal}" is not KEY=value`, { path })
  }
  let value = literal.slice(separator + 1)
  if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
    value = value.slice(1, -1)
  }
  return [literal.slice(0, separator), value]
}

function generate(generator: Generator, kind: 'ConfigMap' | 'Secret', path: string): K8sObject {
  const supported = new Set(['name', 'namespace', 'behavior', 'literals', 'files', 'type', 'options'])
  for (const option of Object.keys(generator.options ?? {})) {
    if (option !== 'labels') {
      throw new UnsupportedKustomizeFieldError(
        `${path}: ${kind} generator option "${option}" is not supported`,
        {
          field: `options.${option}`,
          path,
        },
      )
    }
  }
  for (const field of Object.keys(generator)) {
    if (!supported.has(field)) {
      throw new UnsupportedKustomizeFieldError(
        `${path}: ${kind} generator field "${field}" is not supported`,
        {
          field,
          path,
        },
      )
    }
  }
  const data: Record<string, string> = {}
  for (const literal of generator.literals ?? []) {
    const [key, value] = parseLiteral(literal, path)
    data[key] = kind === 'Secret' ? Buffer.from(value, 'utf8').toString('base64') : value
  }
  for (const file of generator.files ?? []) {
    const separator = file.indexOf('=')
    const source = separator < 0 ? file : file.slice(separator + 1)
    const target = resolve(dirname(path), source)
    // kustomize's load restrictor: a kustomization reads no file outside its own directory.
    if (relative(dirname(path), target).startsWith('..')) {
      throw new ManifestParseError(`${path}: ${source} is outside the kustomization's directory`, { path })
    }
    const text = readFileSync(target, 'utf8')
    data[separator < 0 ? basename(source) : file.slice(0, separator)] =
      kind === 'Secret' ? Buffer.from(text, 'utf8').toString('base64') : text
  }
  const metadata: K8sObject['metadata'] = { name: generator.name }
  if (generator.namespace !== undefined) metadata.namespace = generator.namespace
  if (generator.options?.labels !== undefined) metadata.labels = { ...generator.options.labels }
  const object: K8sObject = { apiVersion: 'v1', kind, metadata, data }
  if (kind === 'Secret') object.type = generator.type ?? 'Opaque'
  return object
}

function applyGenerators(objects: K8sObject[], generated: K8sObject[], behaviors: string[], path: string) {
  generated.forEach((object, i) => {
    const behavior = behaviors[i] ?? 'create'
    const index = findTarget(objects, object.kind, object.metadata.name, object.metadata.namespace)
    if (behavior === 'create') {
      objects.push(object)
      return
    }
    if (index < 0) {
      throw new PatchTargetNotFoundError(
        `${path}: ${behavior} of ${object.kind} ${object.metadata.name}, which no resource defines`,
        { kind: object.kind, name: object.metadata.name },
      )
    }
    const existing = objects[index]!
    const data =
      behavior === 'merge'
        ? { ...(existing.data as Record<string, string>), ...(object.data as object) }
        : object.data
    objects[index] = { ...existing, data }
  })
}

function setLabels(target: Record<string, unknown>, labels: Record<string, string>) {
  const metadata = (isRecord(target.metadata) ? target.metadata : {}) as Record<string, unknown>
  metadata.labels = { ...(isRecord(metadata.labels) ? metadata.labels : {}), ...labels }
  target.metadata = metadata
}

interface LabelEntry {
  pairs: Record<string, string>
  includeSelectors?: boolean
  includeTemplates?: boolean
}

function applyLabels(objects: K8sObject[], entries: LabelEntry[], path: string) {
  for (const entry of entries) {
    if (entry.includeSelectors === true) {
      throw new UnsupportedKustomizeFieldError(`${path}: labels.includeSelectors is not supported`, {
        field: 'labels.includeSelectors',
        path,
      })
    }
    for (const object of objects) {
      setLabels(object, entry.pairs)
      if (entry.includeTemplates !== true || !POD_TEMPLATE_KINDS.has(object.kind)) continue
      const spec = object.spec as Record<string, unknown>
      setLabels(spec.template as Record<string, unknown>, entry.pairs)
      for (const claim of (spec.volumeClaimTemplates as Record<string, unknown>[] | undefined) ?? []) {
        setLabels(claim, entry.pairs)
      }
    }
  }
}

interface ImageEntry {
  name: string
  newName?: string
  newTag?: string
}

/** `repo[:tag][@digest]` → its repository name (a registry port's colon is not a tag). */
export function imageName(image: string): string {
  const withoutDigest = image.split('@')[0]!
  const lastColon = withoutDigest.lastIndexOf(':')
  return lastColon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, lastColon) : withoutDigest
}

/** The pod spec of a workload (or undefined for other kinds). */
export function podSpecOf(object: K8sObject): Record<string, unknown> | undefined {
  if (!POD_TEMPLATE_KINDS.has(object.kind)) return undefined
  const template = (object.spec as Record<string, unknown> | undefined)?.template
  return isRecord(template) && isRecord(template.spec) ? template.spec : undefined
}

function applyImages(objects: K8sObject[], images: ImageEntry[]) {
  for (const object of objects) {
    const spec = podSpecOf(object)
    if (spec === undefined) continue
    for (const list of ['initContainers', 'containers'] as const) {
      for (const container of (spec[list] as Record<string, unknown>[] | undefined) ?? []) {
        const image = container.image as string
        const entry = images.find((candidate) => candidate.name === imageName(image))
        if (entry === undefined) continue
        const oldTag = image.slice(imageName(image).length)
        container.image = `${entry.newName ?? entry.name}${entry.newTag === undefined ? oldTag : `:${entry.newTag}`}`
      }
    }
  }
}

function readKustomization(dir: string): Record<string, unknown> {
  const path = join(dir, 'kustomization.yaml')
  const [value] = parseManifests(readFileSync(path, 'utf8'), path)
  if (!isRecord(value)) throw new ManifestParseError(`${path} is not a mapping`, { path })
  for (const field of Object.keys(value)) {
    if (!SUPPORTED_FIELDS.has(field)) {
      throw new UnsupportedKustomizeFieldError(`${path}: kustomization field "${field}" is not supported`, {
        field,
        path,
      })
    }
  }
  return value
}

/** Renders a kustomization directory (the equivalent of `kubectl kustomize <dir>`). */
export function renderKustomization(dir: string): K8sObject[] {
  const root = resolve(dir)
  const kustomization = readKustomization(root)
  const path = join(root, 'kustomization.yaml')
  const objects: K8sObject[] = []

  for (const resource of (kustomization.resources as string[] | undefined) ?? []) {
    const target = resolve(root, resource)
    if (!existsSync(target))
      throw new ManifestParseError(`${path}: resource ${resource} does not exist`, { path })
    if (statSync(target).isDirectory()) objects.push(...renderKustomization(target))
    else objects.push(...parseManifests(readFileSync(target, 'utf8'), target).map((v) => asObject(v, target)))
  }

  const generators = {
    ConfigMap: (kustomization.configMapGenerator as Generator[] | undefined) ?? [],
    Secret: (kustomization.secretGenerator as Generator[] | undefined) ?? [],
  }
  const generated = {
    ConfigMap: generators.ConfigMap.map((generator) => generate(generator, 'ConfigMap', path)),
    Secret: generators.Secret.map((generator) => generate(generator, 'Secret', path)),
  }
  const options = (kustomization.generatorOptions ?? {}) as Record<string, unknown>
  for (const option of Object.keys(options)) {
    if (option !== 'disableNameSuffixHash' || options[option] !== true) {
      // Name hashes would need kustomize's exact hash and reference rewriting; our manifests opt out.
      throw new UnsupportedKustomizeFieldError(`${path}: only generatorOptions.disableNameSuffixHash: true`, {
        field: `generatorOptions.${option}`,
        path,
      })
    }
  }
  // A merge or replace keeps the generated object's name from the base; only a create names one.
  const creates = [...generators.ConfigMap, ...generators.Secret].some(
    (generator) => (generator.behavior ?? 'create') === 'create',
  )
  if (creates && options.disableNameSuffixHash !== true) {
    throw new UnsupportedKustomizeFieldError(`${path}: generators need disableNameSuffixHash: true here`, {
      field: 'generatorOptions',
      path,
    })
  }
  for (const kind of ['ConfigMap', 'Secret'] as const) {
    applyGenerators(
      objects,
      generated[kind],
      generators[kind].map((generator) => generator.behavior ?? 'create'),
      path,
    )
  }

  for (const entry of (kustomization.patches as Record<string, unknown>[] | undefined) ?? []) {
    const extra = Object.keys(entry).filter((key) => key !== 'path')
    if (extra.length > 0 || typeof entry.path !== 'string') {
      throw new UnsupportedKustomizeFieldError(
        `${path}: only patches with a path (found ${extra.join(', ')})`,
        {
          field: `patches.${extra[0] ?? 'path'}`,
          path,
        },
      )
    }
    const patchPath = resolve(root, entry.path)
    for (const value of parseManifests(readFileSync(patchPath, 'utf8'), patchPath)) {
      const patch = asObject(value, patchPath)
      const index = findTarget(objects, patch.kind, patch.metadata.name, patch.metadata.namespace)
      if (index < 0) {
        throw new PatchTargetNotFoundError(`${patchPath}: no ${patch.kind} named ${patch.metadata.name}`, {
          kind: patch.kind,
          name: patch.metadata.name,
        })
      }
      objects[index] = strategicMerge(objects[index], patch, '', patchPath) as K8sObject
    }
  }

  const namespace = kustomization.namespace
  if (typeof namespace === 'string') {
    for (const object of objects) if (!CLUSTER_SCOPED.has(object.kind)) object.metadata.namespace = namespace
  }
  applyLabels(objects, (kustomization.labels as LabelEntry[] | undefined) ?? [], path)
  applyImages(objects, (kustomization.images as ImageEntry[] | undefined) ?? [])
  return objects
}

/** The directory of the repository's `k8s/`, from this file's location. */
export const k8sDir = resolve(dirname(new URL(import.meta.url).pathname), '../../k8s')
