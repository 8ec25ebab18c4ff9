/**
 * Unknown-field detection for manifests. The Kubernetes OpenAPI schemas that `kubernetes-models`
 * validates against allow extra properties, so a misspelt field (`readinesProbe`) passes its
 * `validate()` and is then silently dropped by a lenient client. The API server's strict field
 * validation would refuse it; this does the same offline, reading the field names and types from
 * the type declarations `kubernetes-models` generates from the same OpenAPI document.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'

type FieldType =
  | { kind: 'ref'; file: string; array: boolean }
  | { kind: 'inline'; fields: Fields; array: boolean }
  | { kind: 'leaf' }

type Fields = Map<string, FieldType>

const require = createRequire(import.meta.url)
const modelsDir = dirname(require.resolve('kubernetes-models/package.json'))
const nodeModules = resolve(modelsDir, '..')
/** API groups whose models are a package of their own (custom resources), by group. */
const groupModels: Record<string, string> = {
  'monitoring.coreos.com': dirname(require.resolve('@kubernetes-models/prometheus-operator/package.json')),
}
const cache = new Map<string, Fields>()

/** `import { IIoK8sApiCoreV1Probe } from "./Probe";` → declaration file per imported name. */
function imports(text: string, file: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const match of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm)) {
    const specifier = match[2]!
    const base = specifier.startsWith('.') ? resolve(dirname(file), specifier) : join(nodeModules, specifier)
    map.set(match[1]!, `${base}.d.ts`)
  }
  return map
}

const PROPERTY = /^\s*"([^"]+)"\??: (.*)$/

function parseBlock(
  lines: string[],
  start: number,
  refs: Map<string, string>,
): { fields: Fields; end: number } {
  const fields: Fields = new Map()
  let i = start
  while (i < lines.length) {
    const line = lines[i]!
    const trimmed = line.trim()
    if (trimmed.startsWith('}')) return { fields, end: i }
    const property = PROPERTY.exec(line)
    if (property === null) {
      i++
      continue
    }
    const [, name, rawType] = property as unknown as [string, string, string]
    const type = rawType.replace(/;$/, '')
    const array = type.startsWith('Array<')
    const inner = array ? type.slice('Array<'.length) : type
    if (inner === '{') {
      const isMap = (lines[i + 1] ?? '').trim().startsWith('[key: string]')
      const block = parseBlock(lines, i + 1, refs)
      fields.set(name, isMap ? { kind: 'leaf' } : { kind: 'inline', fields: block.fields, array })
      // Nested blocks consume their own closing lines, so `end` is this block's `}` or `}>`.
      i = block.end + 1
      continue
    }
    const refName = inner.replace(/>$/, '')
    const file = refs.get(refName)
    fields.set(name, file !== undefined && existsSync(file) ? { kind: 'ref', file, array } : { kind: 'leaf' })
    i++
  }
  return { fields, end: i }
}

/** The fields of the first interface a declaration file exports (empty for a type alias). */
function fieldsOf(file: string): Fields {
  const cached = cache.get(file)
  if (cached !== undefined) return cached
  const text = readFileSync(file, 'utf8')
  const lines = text.split('\n')
  const start = lines.findIndex((line) => /^export interface I\w+ (extends [\w, ]+ )?\{$/.test(line))
  const fields = start < 0 ? new Map() : parseBlock(lines, start + 1, imports(text, file)).fields
  // TypeMeta's two fields are inherited by every top-level kind.
  if (start >= 0 && /extends TypeMeta/.test(lines[start]!)) {
    fields.set('apiVersion', { kind: 'leaf' })
    fields.set('kind', { kind: 'leaf' })
  }
  cache.set(file, fields)
  return fields
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function walk(value: unknown, fields: Fields, path: string, found: string[]): void {
  if (!isRecord(value) || fields.size === 0) return
  for (const [key, child] of Object.entries(value)) {
    const type = fields.get(key)
    if (type === undefined) {
      found.push(`${path}.${key}`)
      continue
    }
    if (type.kind === 'leaf') continue
    const childFields = type.kind === 'ref' ? fieldsOf(type.file) : type.fields
    if (type.array && Array.isArray(child)) {
      for (const [index, item] of child.entries()) walk(item, childFields, `${path}.${key}[${index}]`, found)
    } else {
      walk(child, childFields, `${path}.${key}`, found)
    }
  }
}

/** Paths (`spec.template.spec.containers[0].readinesProbe`) of fields the kind does not have. */
export function unknownFields(object: { apiVersion: string; kind: string }): string[] {
  const group = object.apiVersion.includes('/') ? object.apiVersion : `v1`
  const dir = groupModels[group.split('/')[0]!] ?? modelsDir
  const file = join(dir, group === 'v1' ? 'v1' : group, `${object.kind}.d.ts`)
  if (!existsSync(file)) return []
  const found: string[] = []
  walk(object, fieldsOf(file), '', found)
  return found.map((path) => path.slice(1))
}
