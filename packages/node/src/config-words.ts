/**
 * Config errors and `--help` in plain words, read from the config schema: what a field takes
 * ("a whole number from 1 to 64"), why a value was refused ("not a number"), and the nearest
 * name to a misspelt one. zod's own wording ("expected number, received NaN", "Invalid input")
 * never reaches a person: every issue is turned into words here from the field's schema and the
 * value, and a message written in the schema itself (a bound's reason, a pattern's description)
 * is quoted as it is.
 */
import type { z } from 'zod'

/** What values a field takes, as far as a person needs to know to write one. */
export interface FieldShape {
  readonly kind: 'integer' | 'number' | 'text' | 'boolean' | 'choice'
  /** Comma-separated in flags and the environment, a YAML list in a file. */
  readonly list: boolean
  /** The allowed values of a choice (of each element, for a list). */
  readonly choices?: readonly string[]
  readonly min?: { readonly value: number; readonly inclusive: boolean }
  readonly max?: { readonly value: number; readonly inclusive: boolean }
}

type Check = { _zod: { def: { check: string; value?: number; inclusive?: boolean; format?: string } } }
type Def = {
  type: string
  innerType?: z.ZodType
  element?: z.ZodType
  in?: z.ZodType
  out?: z.ZodType
  options?: readonly z.ZodType[]
  entries?: Record<string, string>
  checks?: readonly Check[]
}

const defOf = (schema: z.ZodType) => schema.def as unknown as Def

function numberShape(def: Def): FieldShape {
  let shape: { -readonly [K in keyof FieldShape]: FieldShape[K] } = { kind: 'number', list: false }
  for (const { _zod } of def.checks ?? []) {
    const { check, value, inclusive = true, format } = _zod.def
    if (check === 'number_format' && format?.includes('int')) shape = { ...shape, kind: 'integer' }
    else if (check === 'greater_than' && value !== undefined) shape = { ...shape, min: { value, inclusive } }
    else if (check === 'less_than' && value !== undefined) shape = { ...shape, max: { value, inclusive } }
  }
  return shape
}

/** Looks through defaults, optionals, pipes (to what they produce) and arrays. */
export function fieldShape(schema: z.ZodType): FieldShape {
  const def = defOf(schema)
  switch (def.type) {
    case 'default':
    case 'optional':
      return fieldShape(def.innerType!)
    case 'array':
      return { ...fieldShape(def.element!), list: true }
    case 'enum':
      return { kind: 'choice', list: false, choices: Object.values(def.entries ?? {}) }
    case 'boolean':
      return { kind: 'boolean', list: false }
    case 'number':
      return numberShape(def)
    case 'pipe':
      // A transform's output says nothing of what may be written: its input does.
      return defOf(def.out!).type === 'transform' ? fieldShape(def.in!) : fieldShape(def.out!)
    case 'union':
      return def.options!.some((option) => defOf(option).type === 'boolean')
        ? { kind: 'boolean', list: false }
        : fieldShape(def.options![0]!)
    default:
      return { kind: 'text', list: false }
  }
}

function range(shape: FieldShape): string {
  const { min, max } = shape
  if (min !== undefined && max !== undefined && min.inclusive && max.inclusive)
    return ` from ${min.value} to ${max.value}`
  const parts = [
    ...(min === undefined ? [] : [min.inclusive ? `at least ${min.value}` : `above ${min.value}`]),
    ...(max === undefined ? [] : [max.inclusive ? `at most ${max.value}` : `below ${max.value}`]),
  ]
  return parts.length === 0 ? '' : ` ${parts.join(' and ')}`
}

/** "a whole number from 1 to 64", "one of average, median, …", "a comma-separated list of nnm, clip". */
export function allowedText(shape: FieldShape): string {
  const one = (() => {
    switch (shape.kind) {
      case 'choice':
        return shape.list ? shape.choices!.join(', ') : `one of ${shape.choices!.join(', ')}`
      case 'boolean':
        return 'true or false'
      case 'integer':
        return `a whole number${range(shape)}`
      case 'number':
        return `a number${range(shape)}`
      case 'text':
        return 'text'
    }
  })()
  if (!shape.list) return one
  return shape.kind === 'choice' ? `a comma-separated list of ${one}` : 'a comma-separated list'
}

/** Edit distance with adjacent transpositions (optimal string alignment). */
function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) rows[0]![j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, rows[i - 2]![j - 2]! + 1)
      rows[i]![j] = best
    }
  }
  return rows[a.length]![b.length]!
}

/** Case, `-` and `_` do not count: `byzantine-servers` and `BYZANTINE_SERVERS` are `byzantineServers`. */
const normalised = (word: string) => word.toLowerCase().replace(/[-_]/g, '')

/**
 * The candidate nearest to `word`, when it is near enough to be what was meant: at most one edit
 * in three letters (two for short words), ignoring case, `-` and `_`. Ties go to the first.
 */
export function closestName(word: string, candidates: readonly string[]): string | undefined {
  const target = normalised(word)
  const limit = Math.max(2, Math.floor(target.length / 3))
  let best: { name: string; distance: number } | undefined
  for (const name of candidates) {
    const distance = editDistance(target, normalised(name))
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name, distance }
  }
  return best?.name
}

/** `; did you mean "rule"?`, or nothing when no candidate is near. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const near = closestName(word, candidates)
  if (near === undefined) return ''
  return `; did you mean ${JSON.stringify(near)}?`
}

/** The part of a zod issue this module reads. */
export interface SchemaIssue {
  readonly code: string
  readonly message: string
  readonly origin?: string
  readonly minimum?: number | bigint
  readonly maximum?: number | bigint
  readonly inclusive?: boolean
}

/** Whether `message` was written in the schema (a bound's reason, a pattern) rather than by zod. */
const schemaWritten = (message: string) => !/^(Invalid|Too (big|small)|Expected)\b/i.test(message)

/** Why a number-like value is not one, or undefined when it is a finite number. */
function notANumber(value: unknown, shape: FieldShape): string | undefined {
  if (typeof value === 'boolean' || value === null || typeof value === 'object') return 'not a number'
  if (typeof value === 'string' && value.trim() === '') return 'empty'
  const number = Number(value)
  if (Number.isNaN(number)) return 'not a number'
  if (!Number.isFinite(number)) return `not a finite number (it reads as ${number})`
  if (shape.kind === 'integer' && !Number.isInteger(number)) return 'not a whole number'
  return undefined
}

/**
 * The refusal in words: what is wrong with `value` (the element at fault, for a list) and what
 * the field allows, from its shape, or the schema's own text when the field has a pattern.
 */
export function issueWords(
  issue: SchemaIssue,
  value: unknown,
  shape: FieldShape,
): { problem: string; allowed: string } {
  const allowed = allowedText(shape)
  switch (issue.code) {
    case 'too_big':
      return {
        problem: schemaWritten(issue.message)
          ? issue.message
          : `more than ${issue.maximum}${issue.origin === 'number' ? '' : ' long'}`,
        allowed,
      }
    case 'too_small':
      if (issue.origin === 'string' || issue.origin === 'array') return { problem: 'empty', allowed }
      return {
        problem: schemaWritten(issue.message)
          ? issue.message
          : issue.inclusive === false
            ? `not above ${issue.minimum}`
            : `less than ${issue.minimum}`,
        allowed,
      }
    case 'invalid_value':
      return {
        problem: `not one of the choices${shape.choices === undefined ? '' : didYouMean(String(value), shape.choices)}`,
        allowed,
      }
    case 'invalid_format':
    case 'custom':
      // A pattern or check of the schema, whose message says what it wants.
      return { problem: 'not in the allowed form', allowed: issue.message }
    default:
      break
  }
  if (shape.kind === 'integer' || shape.kind === 'number') {
    return { problem: notANumber(value, shape) ?? 'not allowed', allowed }
  }
  if (shape.list && !Array.isArray(value)) {
    return { problem: 'not a list (in YAML: [a, b], or one "- item" per line)', allowed }
  }
  if (shape.kind === 'boolean') return { problem: 'neither true nor false', allowed }
  if (shape.kind === 'text' && typeof value !== 'string') {
    return { problem: 'not text (in YAML, put it in quotes)', allowed }
  }
  return { problem: 'not allowed', allowed }
}
