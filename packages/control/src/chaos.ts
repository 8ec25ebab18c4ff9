/**
 * Chaos commands over request/reply, so the operator learns whether the target acted. A node runs
 * the command through callbacks it passes in (this package knows nothing of training); a node
 * started without chaos enabled still listens, but only to refuse, log and say so.
 */
import type { Msg, Subscription } from '@nats-io/transport-node'
import { NoRespondersError, RequestError, TimeoutError } from '@nats-io/transport-node'
import type { ControlConnection } from './connection.js'
import { connectedWithin } from './connection.js'
import {
  ChaosCommandFailedError,
  ChaosDisabledError,
  ChaosNoResponderError,
  ChaosRefusedError,
  ChaosTimeoutError,
} from './errors.js'
import type { ChaosCommand, ChaosReply } from './subjects.js'
import { encode } from './subjects.js'

export interface ChaosListener {
  readonly nodeId: string
  readonly enabled: boolean
  /**
   * Resolves once the server has the subscription. The listener subscribes whenever NATS first
   * becomes reachable, so a node can start (and train) before NATS is up without awaiting this.
   */
  readonly ready: Promise<void>
  /** Commands received, whether executed or refused. */
  received(): number
  stop(): void
}

export interface ChaosListenerInit {
  conn: ControlConnection
  nodeId: string
  /** False unless the node was started with chaos explicitly enabled: then every command is refused. */
  enabled: boolean
  /**
   * Executes the command. The acknowledgement is sent after it resolves, except for `kill`, which is
   * acknowledged first because the process is not expected to survive it.
   */
  onCommand: (command: ChaosCommand) => void | Promise<void>
}

export interface SendChaosInit {
  conn: ControlConnection
  nodeId: string
  command: ChaosCommand
  timeoutMs?: number
}

/** Listens on `phalanx.<cluster>.chaos.<nodeId>`; returns at once (see `ready`). */
export function createChaosListener(init: ChaosListenerInit): ChaosListener {
  const { conn, nodeId } = init
  const subject = conn.subjects.chaos(nodeId)
  const log = conn.log.child({ component: 'chaos', nodeId, chaosEnabled: init.enabled })
  let received = 0
  let stopped = false
  let sub: Subscription | undefined

  const reply = (msg: Msg, body: ChaosReply): void => {
    if (msg.reply === undefined || msg.reply === '') return
    try {
      msg.respond(encode('chaosReply', body))
    } catch (error) {
      log.warn({ err: error }, 'could not reply to a chaos command')
    }
  }
  const refuse = (msg: Msg, kind: string, error: Error): void =>
    reply(msg, { ok: false, nodeId, kind, error: { name: error.name, message: error.message } })

  const handle = async (msg: Msg): Promise<void> => {
    received += 1
    const command = conn.decode('chaos', msg.data)
    if (command === undefined) {
      refuse(msg, 'invalid', new Error('invalid chaos command payload'))
      return
    }
    if (!init.enabled) {
      const error = new ChaosDisabledError(
        `node ${nodeId} refuses chaos command "${command.kind}": chaos is disabled`,
        { nodeId, command: command.kind },
      )
      log.warn({ command: command.kind }, error.message)
      refuse(msg, command.kind, error)
      return
    }
    log.warn({ command }, 'executing chaos command')
    if (command.kind === 'kill') {
      reply(msg, { ok: true, nodeId, kind: command.kind })
      // The reply must be on the wire before the node kills itself.
      await conn
        .nats()
        ?.flush()
        .catch(() => undefined)
    }
    try {
      await init.onCommand(command)
    } catch (cause) {
      const error = new ChaosCommandFailedError(
        `node ${nodeId} failed to execute "${command.kind}"`,
        { nodeId, command: command.kind },
        { cause },
      )
      log.error({ err: cause, command: command.kind }, error.message)
      if (command.kind !== 'kill') refuse(msg, command.kind, error)
      return
    }
    if (command.kind !== 'kill') reply(msg, { ok: true, nodeId, kind: command.kind })
  }

  const ready = conn.connected().then(async (nc) => {
    if (stopped) return
    sub = nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error === null) void handle(msg)
      },
    })
    await nc.flush()
    log.info({ subject }, init.enabled ? 'chaos commands enabled' : 'chaos commands will be refused')
  })
  // A connection closed before it ever connected is not an error of the listener.
  ready.catch(() => undefined)
  return {
    nodeId,
    enabled: init.enabled,
    ready,
    received: () => received,
    stop: () => {
      stopped = true
      sub?.unsubscribe()
    },
  }
}

const SEND_CHAOS_DEFAULTS = {
  // A node executes most commands instantly; pause/partition wait on the training loop's next check.
  timeoutMs: 5_000,
} as const

/**
 * Sends a command and resolves with the target's acknowledgement; rejects with `ChaosRefusedError`
 * (the target said no, e.g. chaos disabled), `ChaosNoResponderError`, `ChaosTimeoutError`, or
 * `NotConnectedError` when NATS is not reachable within the timeout.
 */
export async function sendChaosCommand(init: SendChaosInit): Promise<{ nodeId: string; kind: string }> {
  const { conn, nodeId, command } = init
  const timeoutMs = init.timeoutMs ?? SEND_CHAOS_DEFAULTS.timeoutMs
  await connectedWithin(conn, timeoutMs, `chaos ${command.kind} to ${nodeId}`)
  let msg: Msg
  try {
    msg = await conn.request('chaos', conn.subjects.chaos(nodeId), command, timeoutMs)
  } catch (cause) {
    const values = { nodeId, command: command.kind }
    if (isNoResponders(cause)) {
      throw new ChaosNoResponderError(`no node ${nodeId} listens for chaos commands`, values, { cause })
    }
    if (isTimeout(cause)) {
      throw new ChaosTimeoutError(
        `node ${nodeId} did not answer "${command.kind}" within ${timeoutMs} ms`,
        {
          ...values,
          timeoutMs,
        },
        { cause },
      )
    }
    throw cause
  }
  const answer = conn.decode('chaosReply', msg.data)
  if (answer === undefined) {
    throw new ChaosRefusedError(`node ${nodeId} sent an invalid reply to "${command.kind}"`, {
      nodeId,
      command: command.kind,
      remoteName: 'InvalidPayloadError',
    })
  }
  if (!answer.ok) {
    throw new ChaosRefusedError(`node ${nodeId} refused "${command.kind}": ${answer.error.message}`, {
      nodeId,
      command: command.kind,
      remoteName: answer.error.name,
    })
  }
  return { nodeId: answer.nodeId, kind: answer.kind }
}

function isNoResponders(error: unknown): boolean {
  if (error instanceof NoRespondersError) return true
  return (
    error instanceof RequestError && (error.isNoResponders?.() ?? error.cause instanceof NoRespondersError)
  )
}

function isTimeout(error: unknown): boolean {
  return (
    error instanceof TimeoutError || (error instanceof RequestError && error.cause instanceof TimeoutError)
  )
}
