/**
 * Telemetry against real nats-server processes: events reach a watcher, and a NATS outage of several
 * seconds neither throws nor blocks the publisher; the buffered events arrive, in order, after it.
 */
import { randomUUID } from 'node:crypto'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import type { ControlConnection, TelemetryEvent } from '@phalanx/control'
import {
  connectControl,
  createChaosListener,
  createTelemetry,
  generateOperatorKey,
  renderClusterTable,
  sendChaosCommand,
  watchTelemetry,
} from '@phalanx/control'
import { afterEach, describe, expect, it } from 'vitest'
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
