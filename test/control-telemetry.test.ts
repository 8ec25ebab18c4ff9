/**
 * Telemetry against real nats-server processes: events reach a watcher, and a NATS outage of several
 * seconds neither throws nor blocks the publisher; the buffered events arrive, in order, after it.
 * Signed telemetry: a verifying watcher (and `phalanx watch`) shows only events signed by the node
 * they name, so forged events — unsigned, under a throw-away key, altered, or on another node's
 * subject — neither appear nor pin a node's row at round 2⁴⁰; each is counted by reason.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import type { ControlConnection, TelemetryEvent } from '@phalanx/control'
import {
  connectControl,
  createChaosListener,
  createTelemetry,
  encode,
  generateOperatorKey,
  renderClusterTable,
  sendChaosCommand,
  telemetryStatement,
  watchTelemetry,
} from '@phalanx/control'
import { loadOrCreatePeerKey, verifyPeerSignature } from '@phalanx/net'
import { afterEach, describe, expect, it } from 'vitest'
import { runCli } from './support/cli.js'
import { captureLogger } from './support/log.js'
import type { NatsServerHandle } from './support/nats.js'
import { freePorts, SHARED_NATS_URL, startNatsServer } from './support/nats.js'

const SHARED_NATS = SHARED_NATS_URL
const uniqueCluster = () => `t${randomUUID().slice(0, 8)}`

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function untilState(conn: ControlConnection, state: string): Promise<void> {
  if (conn.state() === state) return Promise.resolve()
  return new Promise((resolve) => {
    const off = conn.onStateChange((next) => {
      if (next === state) {
        off()
        resolve()
      }
    })
  })
}

describe('telemetry over NATS', () => {
  it('reaches a watcher, and the table shows the latest round of every node', async () => {
    const { log } = captureLogger()
    const cluster = uniqueCluster()
    const publisherConn = connectControl({ servers: SHARED_NATS, cluster, name: 'pub', log })
    const watcherConn = connectControl({ servers: SHARED_NATS, cluster, name: 'watch', log })
    cleanups.push(
      () => publisherConn.close(),
      () => watcherConn.close(),
    )
    await publisherConn.connected()

    const seen: TelemetryEvent[] = []
    const watch = await watchTelemetry({ conn: watcherConn, onEvent: (event) => seen.push(event) })
    cleanups.push(async () => watch.stop())
    const s0 = createTelemetry({ conn: publisherConn, nodeId: 's0', role: 'server' })
    const w0 = createTelemetry({ conn: publisherConn, nodeId: 'w0', role: 'worker' })
    for (const round of [1, 2, 3]) {
      s0.publish({ round, drift: 0.01 * round, quorumWaitSeconds: 0.5, rejected: { dimension: round } })
      w0.publish({
        round,
        accuracy: 0.5 + round / 10,
        suspicions: [{ suspect: 's2', reason: 'equivocation', round, evidence: { digests: ['a', 'b'] } }],
      })
    }

    const received: TelemetryEvent[] = []
    for await (const event of watch) {
      received.push(event)
      if (received.length === 6) break
    }
    expect(received.map((e) => `${e.nodeId}@${e.round}`).sort()).toEqual(
      ['s0@1', 's0@2', 's0@3', 'w0@1', 'w0@2', 'w0@3'].sort(),
    )
    expect(seen).toHaveLength(6)
    const latest = watch.latest()
    expect(latest.map((e) => [e.nodeId, e.round]).sort()).toEqual([
      ['s0', 3],
      ['w0', 3],
    ])
    const table = renderClusterTable(latest).split('\n')
    expect(table[1]).toMatch(/^s0\s+server\s+3\s+-\s+-\s+0\.03\s+0\.500\s+3 \(dimension:3\)\s+-$/)
    expect(table[2]).toMatch(/^w0\s+worker\s+3\s+80\.0%.*s2:equivocation$/)
  })

  describe('when NATS is not there when the node starts', () => {
    let server: NatsServerHandle | undefined
    afterEach(async () => {
      await server?.dispose()
    })

    it('the node starts without waiting, buffers telemetry, and joins the control plane when NATS appears', async () => {
      const captured = captureLogger()
      const [port] = await freePorts(1)
      const url = `nats://127.0.0.1:${port}`
      const cluster = uniqueCluster()
      const conn = connectControl({
        servers: url,
        cluster,
        name: 'early',
        log: captured.log,
        reconnectTimeWaitMs: 100,
        reconnectJitterMs: 50,
      })
      cleanups.push(() => conn.close())
      expect(conn.state()).toBe('connecting')
      const telemetry = createTelemetry({ conn, nodeId: 'early', role: 'worker' })
      const executed: string[] = []
      const operatorKey = generateOperatorKey()
      const listener = createChaosListener({
        conn,
        nodeId: 'early',
        enabled: true,
        operatorPublicKey: operatorKey.publicKey,
        onCommand: (command) => void executed.push(command.kind),
      })
      cleanups.push(async () => listener.stop())
      for (const round of [1, 2, 3]) telemetry.publish({ round })
      expect(telemetry.stats()).toMatchObject({ buffered: 3, published: 0 })

      const operator = connectControl({ servers: url, cluster, name: 'op', log: captured.log })
      cleanups.push(() => operator.close())
      await expect(
        sendChaosCommand({
          conn: operator,
          nodeId: 'early',
          command: { kind: 'pause' },
          operatorKey,
          timeoutMs: 300,
        }),
      ).rejects.toMatchObject({ name: 'NotConnectedError' })

      server = await startNatsServer({ jetstream: false, port })
      const seen: number[] = []
      let allSeen!: () => void
      const done = new Promise<void>((resolve) => {
        allSeen = resolve
      })
      const watch = await watchTelemetry({
        conn: operator,
        onEvent: (event) => {
          seen.push(event.round)
          if (event.round === 4) allSeen()
        },
      })
      cleanups.push(async () => watch.stop())
      await untilState(conn, 'connected')
      await listener.ready
      // Whatever was flushed before the watcher subscribed is gone (core NATS keeps nothing);
      // what matters is that the node publishes live once NATS is there.
      telemetry.publish({ round: 4 })
      await done
      expect(telemetry.stats()).toMatchObject({ buffered: 0, published: 4 })
      await expect(
        sendChaosCommand({ conn: operator, nodeId: 'early', command: { kind: 'pause' }, operatorKey }),
      ).resolves.toEqual({
        nodeId: 'early',
        kind: 'pause',
      })
      expect(executed).toEqual(['pause'])
      expect(captured.matching('NATS unreachable; retrying in the background')).toHaveLength(2)
    })
  })

  describe('when NATS goes away for several seconds', () => {
    let server: NatsServerHandle | undefined
    afterEach(async () => {
      await server?.dispose()
    })

    it('keeps publishing without throwing, logs the outage once, and flushes in order after it', async () => {
      const captured = captureLogger()
      server = await startNatsServer({ jetstream: true })
      const cluster = uniqueCluster()
      // A stream records every telemetry event the server receives, so the test sees exactly what
      // arrived (including a flush that happens before any watcher has reconnected).
      const admin = await connect({ servers: server.url, name: 'admin' })
      const jsm = await jetstreamManager(admin)
      await jsm.streams.add({ name: `TELEMETRY_${cluster}`, subjects: [`phalanx.${cluster}.telemetry.>`] })
      await admin.close()

      const conn = connectControl({
        servers: server.url,
        cluster,
        name: 'w7',
        log: captured.log,
        reconnectTimeWaitMs: 200,
        reconnectJitterMs: 100,
      })
      cleanups.push(() => conn.close())
      await conn.connected()
      const telemetry = createTelemetry({ conn, nodeId: 'w7', role: 'worker', bufferLimit: 1000 })
      telemetry.publish({ round: 1 })
      // Core NATS is at-most-once: an event still in the client's socket buffer when the server dies
      // is lost. The round trip makes round 1 a delivered event, so the assertion below is exact.
      await conn.nats()!.flush()

      await server.kill('SIGKILL')
      await untilState(conn, 'disconnected')
      // The training loop goes on during the outage: one round every 100 ms for ~3 s.
      let round = 1
      const outageEnd = Date.now() + 3_000
      while (Date.now() < outageEnd) {
        round += 1
        expect(telemetry.publish({ round, quorumWaitSeconds: 0.1 })).toBeUndefined()
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      const lastOutageRound = round
      expect(telemetry.stats()).toMatchObject({ buffered: lastOutageRound - 1, dropped: 0, outages: 1 })

      await server.start()
      await untilState(conn, 'connected')
      round += 1
      telemetry.publish({ round })
      const finalRound = round

      const reader = await connect({ servers: server.url, name: 'reader' })
      cleanups.push(() => reader.close())
      const consumer = await jetstream(reader).consumers.get(`TELEMETRY_${cluster}`)
      const rounds: number[] = []
      for await (const msg of await consumer.consume()) {
        rounds.push(msg.json<TelemetryEvent>().round)
        if (rounds.at(-1) === finalRound) break
      }
      expect(rounds).toEqual(Array.from({ length: finalRound }, (_, i) => i + 1))
      expect(telemetry.stats()).toMatchObject({ buffered: 0, dropped: 0, published: finalRound })
      expect(captured.matching('NATS unavailable: buffering telemetry')).toHaveLength(1)
      expect(captured.matching('NATS disconnected')).toHaveLength(1)
      expect(captured.matching('NATS back: telemetry buffer flushed')).toEqual([
        expect.objectContaining({ flushed: lastOutageRound - 1, dropped: 0 }),
      ])
      await jetstreamManager(reader).then((m) => m.streams.delete(`TELEMETRY_${cluster}`))
    })
  })
})

describe('signed telemetry', () => {
  /** A libp2p peer key as a node has one, and a signer for createTelemetry. */
  async function peer(work: string, name: string) {
    const { key } = await loadOrCreatePeerKey(join(work, name))
    const peerId = peerIdFromPrivateKey(key).toString()
    return { peerId, signer: { peerId, sign: (statement: Uint8Array) => key.sign(statement) } }
  }

  it('a verifying watcher shows only the events their node signed, and counts the forgeries by reason', async () => {
    const work = mkdtempSync(join(tmpdir(), 'phalanx-signed-telemetry-'))
    cleanups.push(async () => rmSync(work, { recursive: true, force: true }))
    const { log } = captureLogger()
    const cluster = uniqueCluster()
    const node = connectControl({ servers: SHARED_NATS, cluster, name: 'server-0', log })
    const forger = connectControl({ servers: SHARED_NATS, cluster, name: 'forger', log })
    const watcher = connectControl({ servers: SHARED_NATS, cluster, name: 'watch', log })
    cleanups.push(
      () => node.close(),
      () => forger.close(),
      () => watcher.close(),
    )
    const server0 = await peer(work, 'server-0')
    const server1 = await peer(work, 'server-1')
    const throwaway = await peer(work, 'throwaway')
    const shown: string[] = []
    const watch = await watchTelemetry({
      conn: watcher,
      verifyPeer: verifyPeerSignature,
      // server-1 is a configured member: even its first event must be signed by its key.
      expectedPeerId: (nodeId) => (nodeId === 'server-1' ? server1.peerId : undefined),
      onEvent: (event) => shown.push(`${event.nodeId}@${event.round}`),
    })
    cleanups.push(async () => watch.stop())
    await node.connected()
    const forgerNc = await forger.connected()

    const honest = createTelemetry({ conn: node, nodeId: 'server-0', role: 'server', signer: server0.signer })
    honest.publish({ round: 1 })
    await honest.settled()
    await (await node.connected()).flush()
    const forged = async (subjectNode: string, event: TelemetryEvent, signWith?: typeof throwaway) => {
      const signed =
        signWith === undefined
          ? event
          : {
              ...event,
              peerId: signWith.peerId,
              signature: Buffer.from(
                await signWith.signer.sign(telemetryStatement({ ...event, peerId: signWith.peerId })),
              ).toString('base64url'),
            }
      forgerNc.publish(`phalanx.${cluster}.telemetry.${subjectNode}`, encode('telemetry', signed))
    }
    const claim = (nodeId: string): TelemetryEvent => ({
      nodeId,
      role: 'server',
      round: 2 ** 40,
      timestampMs: Date.now(),
      quorumWaitSeconds: 0,
      rejected: {},
      suspicions: [],
    })
    await forged('server-0', claim('server-0'))
    await forged('server-0', claim('server-0'), throwaway)
    await forged('server-1', claim('server-1'), throwaway)
    await forged('worker-9', claim('server-0'), server0)
    // Signed by server-0's own key, then altered: the round no longer matches the signature.
    const altered = await (async () => {
      const event = { ...claim('server-0'), round: 2, peerId: server0.peerId }
      const signature = Buffer.from(await server0.signer.sign(telemetryStatement(event))).toString(
        'base64url',
      )
      return { ...event, round: 2 ** 40, signature }
    })()
    forgerNc.publish(`phalanx.${cluster}.telemetry.server-0`, encode('telemetry', altered))
    forgerNc.publish(`phalanx.${cluster}.telemetry.server-0`, new TextEncoder().encode('{"round":'))
    await forgerNc.flush()
    honest.publish({ round: 2 })
    await honest.settled()

    const rounds: string[] = []
    for await (const event of watch) {
      rounds.push(`${event.nodeId}@${event.round}`)
      if (event.round === 2) break
    }
    expect(rounds).toEqual(['server-0@1', 'server-0@2'])
    expect(shown).toEqual(['server-0@1', 'server-0@2'])
    expect(watch.latest().map((e) => [e.nodeId, e.round])).toEqual([['server-0', 2]])
    expect(watch.refused()).toEqual({
      malformed: 1,
      unsigned: 1,
      bad_signature: 1,
      wrong_subject: 1,
      wrong_peer: 2,
      too_many_nodes: 0,
      overload: 0,
    })
  })

  it('`phalanx watch` shows the signed node only and says what it did not show', async () => {
    const work = mkdtempSync(join(tmpdir(), 'phalanx-watch-cli-'))
    cleanups.push(async () => rmSync(work, { recursive: true, force: true }))
    const { log } = captureLogger()
    const cluster = uniqueCluster()
    const node = connectControl({ servers: SHARED_NATS, cluster, name: 'server-0', log })
    cleanups.push(() => node.close())
    const nc = await node.connected()
    const server0 = await peer(work, 'server-0')
    const telemetry = createTelemetry({
      conn: node,
      nodeId: 'server-0',
      role: 'server',
      signer: server0.signer,
    })
    const watched = runCli(
      ['watch', '--nats-url', SHARED_NATS, '--cluster', cluster, '--duration-ms', '3000'],
      {
        timeoutMs: 60_000,
      },
    )
    // Core NATS keeps nothing for a late subscriber: publish every 200 ms while the watch runs.
    let round = 0
    const timer = setInterval(() => {
      round += 1
      telemetry.publish({ round })
      nc.publish(
        `phalanx.${cluster}.telemetry.server-9`,
        encode('telemetry', {
          nodeId: 'server-9',
          role: 'server',
          timestampMs: 0,
          quorumWaitSeconds: 0,
          round: 2 ** 40,
          rejected: {},
          suspicions: [],
        }),
      )
    }, 200)
    const result = await watched
    clearInterval(timer)
    expect(result.code).toBe(0)
    const final = result.stdout.trim().split('\n\n').at(-1)!.split('\n')
    expect(final[0]).toMatch(/^NODE\s+ROLE\s+ROUND/)
    expect(final.slice(1, -1).map((row) => row.split(/\s+/)[0])).toEqual(['server-0'])
    expect(final.at(-1)).toMatch(/^not shown: unsigned \d+$/)
  })
})
