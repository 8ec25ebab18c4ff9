/**
 * Chaos commands over request/reply, so the operator learns whether the target acted. A node runs
 * the command through callbacks it passes in (this package knows nothing of training); a node
 * started without chaos enabled still listens, but only to refuse, log and say so.
 *
 * A command travels as an operator-signed control record (operator.ts): anyone can publish on a
 * NATS subject, so the listener runs the record through the node's verifier (operator key, cluster,
 * validity window, per-node sequence, issued after this node started) and checks it names this
 * node, before it looks at the command. A refusal is counted and answered, and nothing is executed.
 */
import type { Msg, Subscription } from '@nats-io/transport-node'
import { isPhalanxError } from '@phalanx/errors'
import type { ControlConnection } from './connection.js'
import { connectedWithin } from './connection.js'
import {
  ChaosCommandFailedError,
  ChaosDisabledError,
  ChaosNoResponderError,
  ChaosRefusedError,
  ChaosTimeoutError,
  ControlRecordRejectedError,
} from './errors.js'
import { type NatsCore, natsCore } from './nats-modules.js'
import type { ControlRecordVerifier, OperatorKey } from './operator.js'
import { createControlRecordVerifier, encodeControlRecord, signControlRecord } from './operator.js'
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
   * The operator key commands must be signed with; without one every command is refused
   * (`no_operator_key`). Ignored when `verifier` is given.
   */
  operatorPublicKey?: string | undefined
  /** The node's verifier of control records (default: one pinned to `operatorPublicKey`). */
  verifier?: ControlRecordVerifier
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
  /** The operator key the command is signed with (nodes refuse unsigned commands). */
  operatorKey: OperatorKey
  timeoutMs?: number
}

/** Listens on `phalanx.<cluster>.chaos.<nodeId>`; returns at once (see `ready`). */
export function createChaosListener(init: ChaosListenerInit): ChaosListener {
  const { conn, nodeId } = init
  const subject = conn.subjects.chaos(nodeId)
  const log = conn.log.child({ component: 'chaos', chaosEnabled: init.enabled })
  let received = 0
  let stopped = false
  let sub: Subscription | undefined
  const verifier =
    init.verifier ??
    createControlRecordVerifier({
      cluster: conn.cluster,
      operatorPublicKey: init.operatorPublicKey,
      log: conn.log,
      onRejected: (kind, reason) => conn.metrics?.controlRejected?.(kind, reason),
    })

  const reply = (msg: Msg, body: ChaosReply): void => {
    if (msg.reply === undefined || msg.reply === '') return
    try {
      msg.respond(encode('chaosReply', body))
    } catch (error) {
      log.warn({ err: error }, 'could not reply to a chaos command')
    }
  }
  const refuse = (msg: Msg, kind: string, error: Error): void =>
    reply(msg, {
      ok: false,
      nodeId,
      kind,
      error: {
        name: error.name,
        message: error.message,
        ...(isPhalanxError(error) ? { code: error.code } : {}),
      },
    })

  const handle = async (msg: Msg): Promise<void> => {
    received += 1
    const verdict = await verifier.check(msg.data)
    if (!verdict.ok) {
      refuse(msg, verdict.error.kind, verdict.error)
      return
    }
    const { action } = verdict.record
    if (action.kind !== 'chaos' || action.nodeId !== nodeId) {
      // A valid record for another node (or another action) relayed here: the operator did not ask this node.
      const error = new ControlRecordRejectedError(
        `node ${nodeId} refuses a ${action.kind} record not addressed to it`,
        {
          code: 'not_allowed',
          kind: action.kind,
          seq: verdict.record.seq,
        },
      )
      conn.metrics?.controlRejected?.(action.kind, 'not_allowed')
      log.warn({ kind: action.kind, seq: verdict.record.seq }, error.message)
      refuse(msg, action.kind, error)
      return
    }
    if (verdict.repeat) {
      // The same signed command again (a NATS retry): acknowledged, not executed twice.
      reply(msg, { ok: true, nodeId, kind: action.command.kind })
      return
    }
    const command = action.command
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
  const record = signControlRecord(init.operatorKey, {
    cluster: conn.cluster,
    action: { kind: 'chaos', nodeId, command },
  })
  let msg: Msg
  try {
    msg = await conn
      .requireNats(`chaos ${command.kind} to ${nodeId}`)
      .request(conn.subjects.chaos(nodeId), encodeControlRecord(record), { timeout: timeoutMs })
  } catch (cause) {
    const values = { nodeId, command: command.kind }
    // Loaded already: the request above came from it.
    const nats = await natsCore()
    if (isNoResponders(nats, cause)) {
      throw new ChaosNoResponderError(`no node ${nodeId} listens for chaos commands`, values, { cause })
    }
    if (isTimeout(nats, cause)) {
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
      remoteCode: 'invalid_payload',
    })
  }
  if (!answer.ok) {
    throw new ChaosRefusedError(`node ${nodeId} refused "${command.kind}": ${answer.error.message}`, {
      nodeId,
      command: command.kind,
      remoteName: answer.error.name,
      ...(answer.error.code === undefined ? {} : { remoteCode: answer.error.code }),
    })
  }
  return { nodeId: answer.nodeId, kind: answer.kind }
}

function isNoResponders({ NoRespondersError, RequestError }: NatsCore, error: unknown): boolean {
  if (error instanceof NoRespondersError) return true
  return (
    error instanceof RequestError && (error.isNoResponders?.() ?? error.cause instanceof NoRespondersError)
  )
}

function isTimeout({ RequestError, TimeoutError }: NatsCore, error: unknown): boolean {
  return (
    error instanceof TimeoutError || (error instanceof RequestError && error.cause instanceof TimeoutError)
  )
}
