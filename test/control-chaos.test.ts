/**
 * Chaos commands over request/reply against the shared nats-server on 127.0.0.1:4222 (each test
 * uses its own cluster name): the operator's signed commands are executed and acknowledged, and
 * anything else that reaches a node's chaos subject — unsigned, another key, another node's,
 * another cluster's, expired, replayed — is refused, counted by reason and never executed.
 */
import { randomUUID } from 'node:crypto'
import type { ChaosCommand, ControlConnection, ControlMetricsSink, ControlRecord } from '@phalanx/control'
import {
  connectControl,
  createChaosListener,
  encodeControlRecord,
  generateOperatorKey,
  sendChaosCommand,
  signControlRecord,
} from '@phalanx/control'
import { afterEach, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import { SHARED_NATS_URL } from './support/nats.js'

const OPERATOR = generateOperatorKey()
const STRANGER = generateOperatorKey()

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

/** A metrics sink that keeps the control-record refusals it is told of. */
function countingSink(): ControlMetricsSink & { refused: string[] } {
  const refused: string[] = []
  return {
    refused,
    invalidPayload: () => undefined,
    telemetryDropped: () => undefined,
    natsDisconnected: () => undefined,
    controlRejected: (kind, reason) => refused.push(`${kind}/${reason}`),
  }
}

function openConnection(name: string, cluster = `t${randomUUID().slice(0, 8)}`) {
  const captured = captureLogger()
  const metrics = countingSink()
  const conn = connectControl({ servers: SHARED_NATS_URL, cluster, name, log: captured.log, metrics })
  cleanups.push(() => conn.close())
  return { conn, captured, cluster, metrics }
}

async function listen(conn: ControlConnection, enabled: boolean, nodeId = 'w3') {
  const executed: ChaosCommand[] = []
  let markExecuted!: () => void
  const firstExecution = new Promise<void>((resolve) => {
    markExecuted = resolve
  })
  const listener = createChaosListener({
    conn,
    nodeId,
    enabled,
    operatorPublicKey: OPERATOR.publicKey,
    onCommand: (command) => {
      executed.push(command)
      markExecuted()
    },
  })
  cleanups.push(() => listener.stop())
  await listener.ready
  return { executed, firstExecution, listener }
}

/** Sends raw bytes to a node's chaos subject, as any NATS client can, and decodes the reply. */
async function sendRaw(conn: ControlConnection, nodeId: string, bytes: Uint8Array) {
  const nc = await conn.connected()
  const reply = await nc.request(conn.subjects.chaos(nodeId), bytes, { timeout: 5_000 })
  return JSON.parse(new TextDecoder().decode(reply.data)) as { ok: boolean; error?: { name: string } }
}

const commands: ChaosCommand[] = [
  { kind: 'kill' },
  { kind: 'pause' },
  { kind: 'resume' },
  { kind: 'corrupt', attack: 'sign-flip', options: { scale: 4 } },
  { kind: 'partition', durationMs: 1500 },
  { kind: 'heal' },
]

describe('chaos commands', () => {
  it.each(commands)('$kind signed by the operator is executed and acknowledged', async (command) => {
    const { conn: node, cluster } = openConnection('w3')
    const { conn: operator } = openConnection('operator', cluster)
    const { executed, firstExecution } = await listen(node, true)
    await expect(
      sendChaosCommand({ conn: operator, nodeId: 'w3', command, operatorKey: OPERATOR }),
    ).resolves.toEqual({
      nodeId: 'w3',
      kind: command.kind,
    })
    // `kill` is acknowledged before it runs (the process is not expected to answer afterwards).
    if (command.kind === 'kill') await firstExecution
    expect(executed).toEqual([command])
  })

  it.each(commands)('$kind is refused, logged and not executed when chaos is disabled', async (command) => {
    const { conn: node, cluster, captured } = openConnection('w3')
    const { conn: operator } = openConnection('operator', cluster)
    const { executed, listener } = await listen(node, false)
    const refusal = await sendChaosCommand({
      conn: operator,
      nodeId: 'w3',
      command,
      operatorKey: OPERATOR,
    }).catch((error: unknown) => error)
    expect(refusal).toMatchObject({
      name: 'ChaosRefusedError',
      remoteName: 'ChaosDisabledError',
      // The code is what a caller matches: it crosses the reply with the name.
      remoteCode: 'chaos_disabled',
      nodeId: 'w3',
    })
    expect(executed).toEqual([])
    expect(listener.received()).toBe(1)
    expect(captured.matching('refuses chaos command', { command: command.kind })).toHaveLength(1)
  })

  /** What an outsider (no key) and an insider (a key that is not the operator's) can put on the subject. */
  const forgeries: { name: string; reason: string; bytes: (cluster: string) => Uint8Array }[] = [
    {
      name: 'a bare command (the old, unsigned format)',
      reason: 'unknown/malformed',
      bytes: () => new TextEncoder().encode(JSON.stringify({ kind: 'kill' })),
    },
    {
      name: 'a command signed by another key',
      reason: 'chaos/bad_signature',
      bytes: (cluster) =>
        encodeControlRecord(
          signControlRecord(STRANGER, {
            cluster,
            action: { kind: 'chaos', nodeId: 'w3', command: { kind: 'kill' } },
          }),
        ),
    },
    {
      name: "the operator's command for another cluster",
      reason: 'chaos/wrong_cluster',
      bytes: () =>
        encodeControlRecord(
          signControlRecord(OPERATOR, {
            cluster: 'elsewhere',
            action: { kind: 'chaos', nodeId: 'w3', command: { kind: 'kill' } },
          }),
        ),
    },
    {
      name: "the operator's command for another node, relayed here",
      reason: 'chaos/not_allowed',
      bytes: (cluster) =>
        encodeControlRecord(
          signControlRecord(OPERATOR, {
            cluster,
            action: { kind: 'chaos', nodeId: 'w9', command: { kind: 'kill' } },
          }),
        ),
    },
    {
      name: 'an expired command',
      reason: 'chaos/expired',
      bytes: (cluster) =>
        encodeControlRecord(
          signControlRecord(OPERATOR, {
            cluster,
            issuedAtMs: Date.now() - 120_000,
            lifetimeMs: 60_000,
            action: { kind: 'chaos', nodeId: 'w3', command: { kind: 'kill' } },
          }),
        ),
    },
    {
      name: 'a command issued before the node started (a replay against a new incarnation)',
      reason: 'chaos/replayed',
      bytes: (cluster) =>
        encodeControlRecord(
          signControlRecord(OPERATOR, {
            cluster,
            issuedAtMs: Date.now() - 20_000,
            action: { kind: 'chaos', nodeId: 'w3', command: { kind: 'kill' } },
          }),
        ),
    },
  ]

  it.each(forgeries)('$name is refused as $reason, counted and not executed', async ({ bytes, reason }) => {
    const { conn: node, cluster, metrics } = openConnection('w3')
    const { conn: attacker } = openConnection('attacker', cluster)
    const { executed } = await listen(node, true)
    const answer = await sendRaw(attacker, 'w3', bytes(cluster))
    expect(answer).toMatchObject({ ok: false, error: { name: 'ControlRecordRejectedError' } })
    expect(metrics.refused).toEqual([reason])
    expect(executed).toEqual([])
  })

  it('executes a signed command once: its replay is acknowledged, an older one refused', async () => {
    const { conn: node, cluster, metrics } = openConnection('w3')
    const { conn: other } = openConnection('replayer', cluster)
    const { executed } = await listen(node, true)
    const older: ControlRecord = signControlRecord(OPERATOR, {
      cluster,
      action: { kind: 'chaos', nodeId: 'w3', command: { kind: 'pause' } },
    })
    const newer = signControlRecord(OPERATOR, {
      cluster,
      action: { kind: 'chaos', nodeId: 'w3', command: { kind: 'resume' } },
    })
    expect(await sendRaw(other, 'w3', encodeControlRecord(newer))).toMatchObject({ ok: true })
    expect(await sendRaw(other, 'w3', encodeControlRecord(newer))).toMatchObject({ ok: true })
    expect(await sendRaw(other, 'w3', encodeControlRecord(older))).toMatchObject({ ok: false })
    expect(executed).toEqual([{ kind: 'resume' }])
    expect(metrics.refused).toEqual(['chaos/replayed'])
  })

  it('refuses every command when the node has no operator key pinned', async () => {
    const { conn: node, cluster, metrics } = openConnection('w6')
    const { conn: operator } = openConnection('operator', cluster)
    const executed: ChaosCommand[] = []
    const listener = createChaosListener({
      conn: node,
      nodeId: 'w6',
      enabled: true,
      onCommand: (c) => void executed.push(c),
    })
    cleanups.push(() => listener.stop())
    await listener.ready
    await expect(
      sendChaosCommand({ conn: operator, nodeId: 'w6', command: { kind: 'kill' }, operatorKey: OPERATOR }),
    ).rejects.toMatchObject({
      name: 'ChaosRefusedError',
      remoteName: 'ControlRecordRejectedError',
      remoteCode: 'no_operator_key',
    })
    expect(executed).toEqual([])
    expect(metrics.refused).toEqual(['chaos/no_operator_key'])
  })

  it('reports a handler failure as a refusal naming the failure', async () => {
    const { conn: node, cluster } = openConnection('w4')
    const { conn: operator } = openConnection('operator', cluster)
    const listener = createChaosListener({
      conn: node,
      nodeId: 'w4',
      enabled: true,
      operatorPublicKey: OPERATOR.publicKey,
      onCommand: () => {
        throw new Error('attack not available')
      },
    })
    cleanups.push(() => listener.stop())
    await listener.ready
    await expect(
      sendChaosCommand({
        conn: operator,
        nodeId: 'w4',
        command: { kind: 'corrupt', attack: 'nope', options: {} },
        operatorKey: OPERATOR,
      }),
    ).rejects.toMatchObject({
      name: 'ChaosRefusedError',
      remoteName: 'ChaosCommandFailedError',
      remoteCode: 'chaos_command_failed',
    })
  })

  it('says so when no node listens under that id', async () => {
    const { conn: operator } = openConnection('operator')
    await expect(
      sendChaosCommand({ conn: operator, nodeId: 'ghost', command: { kind: 'kill' }, operatorKey: OPERATOR }),
    ).rejects.toMatchObject({ name: 'ChaosNoResponderError', nodeId: 'ghost' })
  })

  it('times out, by name, when the target never answers', async () => {
    const { conn: node, cluster } = openConnection('w5')
    const { conn: operator } = openConnection('operator', cluster)
    let release!: () => void
    const blocked = new Promise<void>((resolve) => {
      release = resolve
    })
    const listener = createChaosListener({
      conn: node,
      nodeId: 'w5',
      enabled: true,
      operatorPublicKey: OPERATOR.publicKey,
      onCommand: () => blocked,
    })
    cleanups.push(
      () => listener.stop(),
      () => release(),
    )
    await listener.ready
    await expect(
      sendChaosCommand({
        conn: operator,
        nodeId: 'w5',
        command: { kind: 'pause' },
        timeoutMs: 300,
        operatorKey: OPERATOR,
      }),
    ).rejects.toMatchObject({ name: 'ChaosTimeoutError', timeoutMs: 300 })
  })
})
