/**
 * The one error base of Phalanx, after Lodestar's `LodestarError`: an error is a `code` (what
 * went wrong, a stable string a caller branches on) and `details` (the values that explain it,
 * plain JSON so that they can be logged, sent over NATS or written to a report unchanged). A
 * caller matches an error by its code (`isPhalanxError(e, 'quorum_timeout')`), never by its
 * `name` or message: names and messages are for people.
 *
 * Each package keeps the codes it throws in its own `errors.ts`, with one subclass per condition
 * whose details have a type of their own (and the class name people and tests know it by).
 */

/** A value `JSON.parse(JSON.stringify(value))` gives back unchanged (up to absent keys). */
export type Json =
  | null
  | boolean
  | number
  | string
  | readonly Json[]
  | { readonly [key: string]: Json | undefined }

/** Details of an error: a JSON object; a key whose value is `undefined` is left out when serialised. */
export type ErrorDetails = { readonly [key: string]: Json | undefined }

export interface PhalanxErrorOptions {
  /** The text for people; without it the message is built from the code and the details. */
  readonly message?: string
  readonly cause?: unknown
}

/** What `toJSON` gives: enough to log an error, or to rebuild it on the other side of a wire. */
export interface PhalanxErrorJson<Code extends string = string, Details extends ErrorDetails = ErrorDetails> {
  readonly name: string
  readonly code: Code
  readonly message: string
  readonly details: Details
  readonly cause?: Json
}

/**
 * Marks every Phalanx error, and is what `isPhalanxError` checks rather than `instanceof`: a
 * process can hold two copies of this module (a package's built `dist` beside the test's source,
 * a worker thread's own), and an error of one copy must still be recognised by the other. A
 * registered symbol is the same in every copy; a plain error that only copies a name or a code
 * does not carry it.
 */
const brand = Symbol.for('@phalanx/errors.PhalanxError')

/** Keys of `Error` itself: a detail of that name would shadow it, so it stays in `details` only. */
const reserved = new Set(['name', 'message', 'stack', 'cause', 'code', 'details', 'toJSON'])

/**
 * The base of every error Phalanx throws. The details are also set as the error's own properties
 * (`error.round` as well as `error.details.round`), which is how callers and tests have read them
 * since before this base existed; subclasses declare them with `declare readonly` (a class field
 * without `declare` would be re-initialised to `undefined` after `super()` under ES2022 fields).
 */
export class PhalanxError<
  Code extends string = string,
  Details extends ErrorDetails = ErrorDetails,
> extends Error {
  readonly code: Code
  readonly details: Details

  constructor(code: Code, details: Details, options: PhalanxErrorOptions = {}) {
    super(
      options.message ?? describe(code, details),
      options.cause === undefined ? undefined : { cause: options.cause },
    )
    // Subclasses set their own `name`; this is the name of errors rebuilt by `fromJSON`.
    this.name = 'PhalanxError'
    this.code = code
    // −0 is a number JSON writes as 0: stored as 0, so that the details survive JSON exactly.
    this.details = withoutNegativeZero(details) as Details
    Object.defineProperty(this, brand, { value: true })
    for (const [key, value] of Object.entries(this.details)) {
      if (!reserved.has(key)) Object.defineProperty(this, key, { value, enumerable: true })
    }
  }

  toJSON(): PhalanxErrorJson<Code, Details> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      details: this.details,
      ...(this.cause === undefined ? {} : { cause: serialiseCause(this.cause) }),
    }
  }
}

/**
 * An error as `toJSON` wrote it, rebuilt on the receiving side (a worker thread's reply, a remote
 * node's answer): same name, code, details and message; the class is not known there, the code is.
 */
export function fromJSON(json: PhalanxErrorJson): PhalanxError {
  const error = new PhalanxError(json.code, json.details, {
    message: json.message,
    ...(json.cause === undefined ? {} : { cause: json.cause }),
  })
  error.name = json.name
  return error
}

/** Whether `error` is a Phalanx error, and (given `code`, one or several) one of that code. */
export function isPhalanxError<Code extends string>(
  error: unknown,
  code: Code | readonly Code[],
): error is PhalanxError<Code>
export function isPhalanxError(error: unknown): error is PhalanxError
export function isPhalanxError(error: unknown, code?: string | readonly string[]): error is PhalanxError {
  if (typeof error !== 'object' || error === null || (error as { [brand]?: unknown })[brand] !== true)
    return false
  const own = (error as PhalanxError).code
  if (code === undefined) return true
  return typeof code === 'string' ? own === code : code.includes(own)
}

/**
 * `value` as JSON, for details that hold what a caller passed (a config value of any type): a
 * non-finite number or a bigint becomes its text, `undefined` null, an object or array is
 * converted member by member, and anything else (a function, a symbol) its text.
 */
export function toJson(value: unknown): Json {
  if (value === null || value === undefined) return null
  if (typeof value === 'number')
    return Number.isFinite(value) ? (Object.is(value, -0) ? 0 : value) : String(value)
  if (typeof value === 'string' || typeof value === 'boolean') return value
  // `Array.from`, not `map`: a hole must become null, as JSON writes it, not stay a hole.
  if (Array.isArray(value)) return Array.from(value, toJson)
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}(${value.byteLength} bytes)`
  if (value instanceof Error) return serialiseCause(value)
  if (typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, member]) => [key, toJson(member)]))
  }
  return String(value)
}

function withoutNegativeZero(value: Json | undefined): Json | undefined {
  if (typeof value === 'number') return Object.is(value, -0) ? 0 : value
  if (Array.isArray(value)) return Array.from(value, (member) => withoutNegativeZero(member) ?? null)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value).map(([key, member]) => [key, withoutNegativeZero(member)]),
    )
  }
  return value
}

/**
 * `String(value)` for a message, except that it never throws: an object whose `toString` is not
 * a function (anything a caller may pass as an option) is written as its JSON instead.
 */
export function textOf(value: unknown): string {
  try {
    return String(value)
  } catch {
    return JSON.stringify(toJson(value))
  }
}

function serialiseCause(cause: unknown): Json {
  if (isPhalanxError(cause)) return cause.toJSON() as unknown as Json
  if (cause instanceof Error) return { name: cause.name, message: cause.message }
  return toJson(cause)
}

function describe(code: string, details: ErrorDetails): string {
  const entries = Object.entries(details).filter(([, value]) => value !== undefined)
  if (entries.length === 0) return code
  return `${code} (${entries.map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`).join(', ')})`
}

/**
 * A vector whose length is not the one it must have. One class for the three places that check
 * it (a rule's inputs, an attack's honest vectors, a vector a node is asked to publish), so a
 * caller that handles it handles it everywhere.
 */
export class DimensionMismatchError extends PhalanxError<
  'dimension_mismatch',
  {
    /** What refused the vector: the rule, the attack, or the operation (`publish`). */
    source: string
    /** Which input, when there are several (−1: a reference vector given as an option). */
    index?: number
    expected: number
    actual: number
  }
> {
  override readonly name = 'DimensionMismatchError'
  declare readonly source: string
  declare readonly index: number | undefined
  declare readonly expected: number
  declare readonly actual: number

  constructor(
    details: { source: string; index?: number; expected: number; actual: number },
    options: PhalanxErrorOptions = {},
  ) {
    const which = details.index === undefined ? 'vector' : `input ${details.index}`
    super('dimension_mismatch', details, {
      message: `${details.source}: ${which} has dimension ${details.actual}, expected ${details.expected}`,
      ...options,
    })
  }
}
