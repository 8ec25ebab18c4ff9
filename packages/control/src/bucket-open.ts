/**
 * Opening a JetStream bucket (KV or object store) that another role may have to create.
 *
 * `Kvm.create` and `Objm.create` ask for the stream's info first and create the stream only when
 * it is missing, so a role without STREAM.CREATE (a worker, see permissions.ts) opens a bucket once
 * a server or the operator created it. A worker that starts first is refused the create (a
 * permissions violation on `$JS.API.STREAM.CREATE.<stream>`): that only means the bucket is not
 * there yet, and it appears as soon as a server starts, so such a refusal is waited out (with
 * withRetries' backoff, logged once) for at most `waitMs`, then surfaces as BucketNotCreatedError.
 * Every other failure is withRetries' business, as for any JetStream operation.
 *
 * Every role tries `create`, rather than read-only roles opening without it: the roles are the
 * NATS server's to enforce, and a cluster whose workers start first needs the wait either way.
 */
import type { ControlConnection } from './connection.js'
import { retryDelayMs, withRetries } from './connection.js'
import { BucketNotCreatedError } from './errors.js'

export interface OpenBucketOptions {
  /** How long to wait for another role to create the bucket; past it, BucketNotCreatedError. */
  waitMs?: number
}

/**
 * Replicas of a bucket or stream a store creates when its caller does not say: 1, because the
 * default control plane is one NATS server (127.0.0.1:4222, `phalanx local`), where a stream of
 * more replicas than servers cannot be placed at all. A JetStream cluster passes its own count
 * (the node config's `natsReplicas`: 3 in the Kubernetes manifests, which run three NATS pods).
 */
export const DEFAULT_REPLICAS = 1

/**
 * Logs (once per open) a bucket that exists with fewer replicas than asked: JetStream's create
 * keeps an existing stream as it is, and no Phalanx role may update one, so an operator who
 * raised `natsReplicas` on a running cluster must scale it (`nats stream edit --replicas`).
 */
export function warnIfFewerReplicas(
  conn: ControlConnection,
  bucket: string,
  asked: number,
  actual: number,
): void {
  if (actual >= asked) return
  conn.log
    .child({ component: 'buckets', bucket })
    .warn(
      { asked, actual },
      'bucket exists with fewer replicas than asked: it keeps them until an operator scales its stream',
    )
}

export const BUCKET_OPEN_DEFAULTS = {
  /**
   * Longer than a server's start on a cold node (its startup probe allows 2 minutes) plus a
   * CrashLoopBackOff at its 5-minute cap: the workers of a cluster that starts at once outwait
   * the servers, while a cluster without any server still fails visibly.
   */
  waitMs: 600_000,
} as const

/** JetStream's "stream not found" API error code. */
const STREAM_NOT_FOUND = 10_059

/**
 * Whether `error` (or one of its causes) says the bucket is not there and this connection may not
 * make it: a permissions violation on a stream create, or a stream that is not found.
 */
export function isBucketNotCreated(error: unknown): boolean {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; depth++) {
    const fields = current as Error & { subject?: unknown; code?: unknown }
    if (
      current.name === 'PermissionViolationError' &&
      typeof fields.subject === 'string' &&
      fields.subject.startsWith('$JS.API.STREAM.CREATE.')
    ) {
      return true
    }
    if (fields.code === STREAM_NOT_FOUND || /^(stream|object store) not found$/.test(current.message)) {
      return true
    }
    current = current.cause
  }
  return false
}

/** Runs `open` (a bucket's create-or-open) until it succeeds, waiting out a bucket not created yet. */
export async function openCreatedBucket<T>(
  conn: ControlConnection,
  bucket: string,
  open: () => Promise<T>,
  options: OpenBucketOptions = {},
): Promise<T> {
  const waitMs = options.waitMs ?? BUCKET_OPEN_DEFAULTS.waitMs
  const log = conn.log.child({ component: 'buckets', bucket })
  const started = Date.now()
  // A missing bucket comes back as a value, so withRetries spends its attempts on real failures.
  const attempt = () =>
    open().then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => {
        if (isBucketNotCreated(error)) return { ok: false as const, error }
        throw error
      },
    )
  for (let waits = 1; ; waits += 1) {
    const outcome = await withRetries(conn, `open ${bucket}`, attempt)
    const waitedMs = Date.now() - started
    if (outcome.ok) {
      if (waits > 1) log.info({ waitedMs }, 'bucket created by another role: opened')
      return outcome.value
    }
    if (waitedMs >= waitMs) {
      throw new BucketNotCreatedError(
        `${bucket} does not exist and this NATS user may not create it: no server or operator created it within ${waitMs} ms`,
        { bucket, waitedMs },
        { cause: outcome.error },
      )
    }
    if (waits === 1) {
      log.warn(
        { err: outcome.error, waitMs },
        'bucket does not exist yet and this role may not create it: waiting for a server or the operator to (logged once)',
      )
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(retryDelayMs(waits), waitMs - waitedMs)))
  }
}
