/**
 * One named NATS connection per node. It connects in the background and reconnects forever with
 * jitter; nothing here ever makes the caller wait for NATS: `publish` is fire-and-forget and
 * reports whether the bytes were handed to the client, and the components above buffer or drop.
 */
import type { Msg, NatsConnection, Status } from '@nats-io/transport-node'
import type { Logger } from 'pino'
import { InvalidPayloadError, NotConnectedError, PayloadTooLargeError } from './errors.js'
import type { NatsAuthFiles } from './nats-auth.js'
import { loadNatsAuth } from './nats-auth.js'
import { natsCore } from './nats-modules.js'
import type { ClusterSubjects, PayloadInput, PayloadKind, PayloadOf } from './subjects.js'
import { clusterSubjects, decode, encode } from './subjects.js'

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed'
export type PublishOutcome = 'sent' | 'not-connected' | 'invalid' | 'too-large' | 'failed'

/** Where the control plane reports what it drops; `createMetrics(...).sink` implements it. */
export interface ControlMetricsSink {
  invalidPayload(kind: string, direction: 'incoming' | 'outgoing'): void
  telemetryDropped(count: number): void
  natsDisconnected(): void
  /** A control record refused by a node's verifier (`phalanx_control_rejected_total`). */
  controlRejected?(kind: string, reason: string): void
}

export interface ControlConnection {
  readonly cluster: string
  readonly name: string
  readonly subjects: ClusterSubjects
  /**
   * Child logger of this connection (its name and cluster, no `component`); components derive
   * their own child from it, with their `component`.
   */
  readonly log: Logger
  readonly metrics: ControlMetricsSink | undefined
  state(): ConnectionState
  /** Resolves with the NATS connection once it is first established (rejects if closed first). */
  connected(): Promise<NatsConnection>
  /** The NATS connection once established (it may be reconnecting), else undefined. */
  nats(): NatsConnection | undefined
  /** Like `nats()` but throws `NotConnectedError` naming the operation when there is none. */
  requireNats(operation: string): NatsConnection
  /**
   * Validates, encodes and publishes without waiting; never throws. Anything but 'sent' means the
   * bytes were not handed to the client (invalid and too-large payloads are also counted, logged once).
   */
  publish<K extends PayloadKind>(kind: K, subject: string, payload: PayloadInput<K>): PublishOutcome
  /** Validates incoming bytes; invalid ones are counted, logged once per kind, and yield undefined. */
  decode<K extends PayloadKind>(kind: K, data: Uint8Array): PayloadOf<K> | undefined
  /** Request/reply with a validated request; the reply is returned raw for the caller to decode. */
  request<K extends PayloadKind>(
    kind: K,
    subject: string,
    payload: PayloadInput<K>,
    timeoutMs: number,
  ): Promise<Msg>
  /** Count of invalid payloads seen, by kind and direction. */
  invalidPayloadCounts(): Readonly<Record<string, number>>
  onStateChange(listener: (state: ConnectionState) => void): () => void
  close(): Promise<void>
}

export interface ControlConnectionInit {
  /** `nats://host:port` URLs; credentials in them (`nats://user:pass@…`, `nats://token@…`) are used and never logged. */
  servers: string | readonly string[]
  cluster: string
  /** Connection name shown by the server's monitoring (use the node id). */
  name: string
  /** The caller's logger; it must not bind `component` (each component of the connection binds its own). */
  log: Logger
  metrics?: ControlMetricsSink
  /** Explicit credentials win over those found in the URLs. */
  user?: string
  pass?: string
  token?: string
  /** A creds file (user JWT + nkey seed); read at once, so a bad path throws `NatsCredentialsError`. */
  credsFile?: NatsAuthFiles['credsFile']
  /** A user nkey seed file; read at once like `credsFile`. */
  nkeySeedFile?: NatsAuthFiles['nkeySeedFile']
  /** TLS: the CA to check the server against, and a client certificate and key; read at once. */
  tls?: NatsAuthFiles['tls']
  /** The names the caller knows the file options by (config fields, flags), for error messages. */
  authOptionNames?: Parameters<typeof loadNatsAuth>[1]
  reconnectTimeWaitMs?: number
  reconnectJitterMs?: number
  pingIntervalMs?: number
  maxPingOut?: number
  handshakeTimeoutMs?: number
}

const CONNECTION_DEFAULTS = {
  reconnectTimeWaitMs: 1_000,
  // Up to half a second of jitter so that a whole cluster does not reconnect in lock-step after an outage.
  reconnectJitterMs: 500,
  // The client default (2 min) would leave a silently dead server (no TCP reset) undetected for minutes;
  // 10 s × 2 missed pings bounds that at ~20 s at negligible cost.
  pingIntervalMs: 10_000,
  maxPingOut: 2,
  handshakeTimeoutMs: 5_000,
} as const

export interface ParsedServers {
  /** The URLs without credentials: safe to log. */
  servers: string[]
  user?: string
  pass?: string
  token?: string
}

/**
 * Splits credentials out of NATS URLs: the client ignores `user:pass@` in a URL, and a URL with a
 * password must never reach a log line. `nats://user:pass@h:4222` gives user/pass, `nats://tok@h` a token.
 */
export function parseNatsServers(servers: string | readonly string[]): ParsedServers {
  const list = (typeof servers === 'string' ? servers.split(',') : [...servers])
    .map((s) => s.trim())
    .filter(Boolean)
  const result: ParsedServers = { servers: [] }
  for (const entry of list) {
    const url = new URL(entry.includes('://') ? entry : `nats://${entry}`)
    const user = decodeURIComponent(url.username)
    const pass = decodeURIComponent(url.password)
    if (user !== '' && result.user === undefined && result.token === undefined) {
      if (pass !== '') {
        result.user = user
        result.pass = pass
      } else {
        result.token = user
      }
    }
    result.servers.push(`${url.protocol}//${url.host}`)
  }
  return result
}

/** Logs a message the first time a key is seen only, so a flood of the same fault is one line. */
export function createLogOnce(
  log: Logger,
): (key: string, fields: Record<string, unknown>, msg: string) => void {
  const seen = new Set<string>()
  return (key, fields, msg) => {
    if (seen.has(key)) return
    seen.add(key)
    log.warn(fields, msg)
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer)
      resolve()
    }
    // Removed when the timer fires, or a long outage would pile listeners onto the signal.
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

export function connectControl(init: ControlConnectionInit): ControlConnection {
  const options = { ...CONNECTION_DEFAULTS, ...definedOnly(init) }
  const subjects = clusterSubjects(init.cluster)
  // What every line about this connection carries; each component (this one, `nats`, included)
  // adds its own `component`, so the shared logger has none (a child's key would repeat it).
  const base = init.log.child({ connection: init.name, cluster: init.cluster })
  const log = base.child({ component: 'nats' })
  const logOnce = createLogOnce(log)
  const parsed = parseNatsServers(options.servers)
  const servers = parsed.servers
  const credentials = {
    ...definedOnly({ user: parsed.user, pass: parsed.pass, token: parsed.token }),
    ...definedOnly({ user: init.user, pass: init.pass, token: init.token }),
  }
  // Before anything dials: a credentials file that cannot be used is a start-up error.
  const auth = loadNatsAuth(
    {
      ...definedOnly({ credsFile: init.credsFile, nkeySeedFile: init.nkeySeedFile, tls: init.tls }),
      hasPassword: credentials.user !== undefined || credentials.token !== undefined,
    },
    init.authOptionNames,
  )
  const listeners = new Set<(state: ConnectionState) => void>()
  const invalidCounts: Record<string, number> = {}
  const abort = new AbortController()
  let state: ConnectionState = 'connecting'
  let nc: NatsConnection | undefined
  let resolveConnected!: (nc: NatsConnection) => void
  let rejectConnected!: (error: Error) => void
  const connectedPromise = new Promise<NatsConnection>((resolve, reject) => {
    resolveConnected = resolve
    rejectConnected = reject
  })
  // A caller that never awaits `connected()` must not see an unhandled rejection on close.
  connectedPromise.catch(() => undefined)

  const setState = (next: ConnectionState): void => {
    if (state === next || state === 'closed') return
    state = next
    for (const listener of listeners) {
      try {
        listener(next)
      } catch (error) {
        log.error({ err: error }, 'connection state listener threw')
      }
    }
  }

  const countInvalid = (error: InvalidPayloadError, direction: 'incoming' | 'outgoing'): void => {
    const key = `${error.kind}/${direction}`
    invalidCounts[key] = (invalidCounts[key] ?? 0) + 1
    init.metrics?.invalidPayload(error.kind, direction)
    logOnce(
      `invalid:${key}`,
      { kind: error.kind, direction, issues: error.issues.slice(0, 5) },
      `dropping invalid ${direction} ${error.kind} payloads (logged once, counted)`,
    )
  }

  const watchStatus = async (conn: NatsConnection): Promise<void> => {
    for await (const status of conn.status() as AsyncIterable<Status>) {
      if (status.type === 'disconnect') {
        init.metrics?.natsDisconnected()
        log.warn({ server: status.server }, 'NATS disconnected; reconnecting in the background')
        setState('disconnected')
      } else if (status.type === 'reconnect') {
        log.info({ server: status.server }, 'NATS reconnected')
        setState('connected')
      } else if (status.type === 'error') {
        const error = status.error as Error & { operation?: string; subject?: string }
        // A permissions violation is a misconfigured user or a node doing what its role may not.
        logOnce(
          `error:${error.name}:${error.subject ?? ''}`,
          { err: error, operation: error.operation, subject: error.subject },
          'NATS refused an operation (logged once per subject)',
        )
      }
    }
  }

  const dial = async (): Promise<void> => {
    // Outside the retries: a client that cannot be loaded is no outage to wait out.
    const core = await natsCore()
    const authenticator = auth.authenticator?.(core)
    let attempts = 0
    while (!abort.signal.aborted) {
      attempts += 1
      try {
        const conn = await core.connect({
          servers,
          ...credentials,
          ...(auth.tls === undefined ? {} : { tls: auth.tls }),
          ...(authenticator === undefined ? {} : { authenticator }),
          name: init.name,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: options.reconnectTimeWaitMs,
          reconnectJitter: options.reconnectJitterMs,
          pingInterval: options.pingIntervalMs,
          maxPingOut: options.maxPingOut,
          timeout: options.handshakeTimeoutMs,
        })
        if (abort.signal.aborted) {
          await conn.close()
          return
        }
        nc = conn
        log.info({ servers, attempts }, 'NATS connected')
        setState('connected')
        resolveConnected(conn)
        void watchStatus(conn).catch((error: unknown) => log.error({ err: error }, 'NATS status loop failed'))
        void conn.closed().then(() => setState('closed'))
        return
      } catch (error) {
        logOnce(
          'first-connect',
          { servers, err: error },
          'NATS unreachable; retrying in the background (logged once)',
        )
        await delay(options.reconnectTimeWaitMs + Math.random() * options.reconnectJitterMs, abort.signal)
      }
    }
  }
  // Left unhandled on purpose: a NATS client that cannot be loaded (a broken install) ends the
  // process at start-up, as a static import of it would have, instead of retrying forever.
  void dial()

  const requireNats = (operation: string): NatsConnection => {
    if (nc === undefined || state === 'closed') {
      throw new NotConnectedError(`${operation} needs a NATS connection (state: ${state})`, {
        operation,
        state,
      })
    }
    return nc
  }

  return {
    cluster: init.cluster,
    name: init.name,
    subjects,
    log: base,
    metrics: init.metrics,
    state: () => state,
    connected: () => connectedPromise,
    nats: () => nc,
    requireNats,
    publish(kind, subject, payload) {
      if (state !== 'connected' || nc === undefined) return 'not-connected'
      let bytes: Uint8Array
      try {
        bytes = encode(kind, payload)
      } catch (error) {
        if (error instanceof InvalidPayloadError) {
          countInvalid(error, 'outgoing')
          return 'invalid'
        }
        throw error
      }
      const maxBytes = nc.info?.max_payload ?? 1024 * 1024
      if (bytes.length > maxBytes) {
        const error = new PayloadTooLargeError(`${kind} payload of ${bytes.length} B exceeds ${maxBytes} B`, {
          kind,
          bytes: bytes.length,
          maxBytes,
        })
        logOnce(`too-large:${kind}`, { kind, bytes: bytes.length, maxBytes }, error.message)
        return 'too-large'
      }
      try {
        nc.publish(subject, bytes)
        return 'sent'
      } catch (error) {
        logOnce(`publish-failed:${kind}`, { kind, err: error }, 'NATS publish failed (logged once)')
        return 'failed'
      }
    },
    decode(kind, data) {
      const result = decode(kind, data)
      if (result.ok) return result.value
      countInvalid(result.error, 'incoming')
      return undefined
    },
    async request(kind, subject, payload, timeoutMs) {
      const conn = requireNats(`request on ${subject}`)
      return conn.request(subject, encode(kind, payload), { timeout: timeoutMs })
    },
    invalidPayloadCounts: () => ({ ...invalidCounts }),
    onStateChange(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    async close() {
      abort.abort()
      const conn = nc
      if (state !== 'closed') {
        // Notify listeners before flipping the state, so they can stop their own work cleanly.
        setState('closed')
      }
      rejectConnected(
        new NotConnectedError('connection closed before it was established', {
          operation: 'connect',
          state: 'closed',
        }),
      )
      // close(), not drain(): drain waits for the server, and close must not hang during an outage.
      if (conn !== undefined && !conn.isClosed()) await conn.close()
    },
  }
}

/**
 * The NATS connection, waiting at most `timeoutMs` for it: for one-shot callers (the CLI) that must
 * fail with a clear error rather than wait forever for a NATS that is not there.
 */
export async function connectedWithin(
  conn: ControlConnection,
  timeoutMs: number,
  operation: string,
): Promise<NatsConnection> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new NotConnectedError(`${operation}: NATS not reachable within ${timeoutMs} ms`, {
            operation,
            state: conn.state(),
          }),
        ),
      timeoutMs,
    )
  })
  try {
    return await Promise.race([conn.connected(), timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Resolves when the connection is (again) up; rejects with `NotConnectedError` after `timeoutMs`. */
export function untilConnected(conn: ControlConnection, timeoutMs: number, operation: string): Promise<void> {
  if (conn.state() === 'connected') return Promise.resolve()
  return new Promise((resolve, reject) => {
    const fail = () =>
      reject(
        new NotConnectedError(`${operation}: NATS not reachable within ${timeoutMs} ms`, {
          operation,
          state: conn.state(),
        }),
      )
    const timer = setTimeout(() => {
      off()
      fail()
    }, timeoutMs)
    const off = conn.onStateChange((state) => {
      if (state === 'connected' || state === 'closed') {
        clearTimeout(timer)
        off()
        if (state === 'connected') resolve()
        else fail()
      }
    })
  })
}

export interface RetryOptions {
  attempts?: number
  connectTimeoutMs?: number
}

const RETRY_DEFAULTS = {
  // A request written while the socket dies is lost without a reply (core NATS is at-most-once), and
  // a JetStream leader election took up to ~20 s on a loaded 2-core host: six tries of up to 5 s each,
  // with backoff between them, span both.
  attempts: 6,
  // Long enough for a NATS restart, short enough that an operator's command fails visibly.
  connectTimeoutMs: 30_000,
} as const

/** The wait after failed attempt `attempt` (1-based): doubling from 250 ms, at most 2 s. */
export function retryDelayMs(attempt: number): number {
  return Math.min(2_000, 125 * 2 ** attempt)
}

/**
 * Runs an idempotent JetStream operation (KV put, object put, reads) once the connection is up,
 * retrying on failure. Only for operations that may safely be repeated.
 */
export async function withRetries<T>(
  conn: ControlConnection,
  operation: string,
  run: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? RETRY_DEFAULTS.attempts
  const connectTimeoutMs = options.connectTimeoutMs ?? RETRY_DEFAULTS.connectTimeoutMs
  let lastError: unknown
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    await untilConnected(conn, connectTimeoutMs, operation)
    try {
      return await run()
    } catch (error) {
      lastError = error
      if (attempt < attempts) {
        conn.log.warn({ err: error, operation, attempt }, 'control-plane operation failed; retrying')
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs(attempt)))
      }
    }
  }
  throw lastError
}

/** Drops `undefined` fields so that spreading an init object over defaults keeps the defaults. */
export function definedOnly<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T
}
