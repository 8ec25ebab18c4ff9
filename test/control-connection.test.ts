/**
 * The connection against a nats-server that requires a user and password: credentials given in the
 * URL (as Kubernetes passes them in PHALANX_NATS_URL) are used, and never written to a log line.
 */
import { connectControl, createTelemetry, watchTelemetry } from '@phalanx/control'
import { afterEach, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import type { NatsServerHandle } from './support/nats.js'
import { startNatsServer } from './support/nats.js'

let server: NatsServerHandle | undefined
const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await server?.dispose()
  server = undefined
})

describe('connectControl with credentials', () => {
  it('uses user:pass from the URL and keeps the password out of the logs', async () => {
    const password = 'pa55-w0rd-do-not-log'
    server = await startNatsServer({ jetstream: false, extraArgs: ['--user', 'phalanx', '--pass', password] })
    const captured = captureLogger()
    const url = `nats://phalanx:${password}@127.0.0.1:${server.port}`
    const node = connectControl({ servers: url, cluster: 'auth', name: 'n0', log: captured.log })
    const watcher = connectControl({ servers: url, cluster: 'auth', name: 'watch', log: captured.log })
    cleanups.push(
      () => node.close(),
      () => watcher.close(),
    )
    const seen = new Promise<number>((resolve) => {
      void watchTelemetry({ conn: watcher, onEvent: (event) => resolve(event.round) }).then((watch) => {
        cleanups.push(() => watch.stop())
        createTelemetry({ conn: node, nodeId: 'n0', role: 'server' }).publish({ round: 9 })
      })
    })
    expect(await seen).toBe(9)
    const logged = JSON.stringify(captured.lines())
    expect(logged).toContain(`nats://127.0.0.1:${server.port}`)
    expect(logged).not.toContain(password)
  })

  it('retries in the background, logging once, while the credentials are refused', async () => {
    server = await startNatsServer({ jetstream: false, extraArgs: ['--user', 'phalanx', '--pass', 'right'] })
    const captured = captureLogger()
    const conn = connectControl({
      servers: `nats://phalanx:wrong@127.0.0.1:${server.port}`,
      cluster: 'auth',
      name: 'n1',
      log: captured.log,
      reconnectTimeWaitMs: 50,
      reconnectJitterMs: 10,
    })
    cleanups.push(() => conn.close())
    const telemetry = createTelemetry({ conn, nodeId: 'n1', role: 'worker' })
    // Each publish is a training round that must not wait for NATS.
    for (let round = 1; round <= 50; round += 1) {
      telemetry.publish({ round })
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(conn.state()).toBe('connecting')
    expect(telemetry.stats()).toMatchObject({ published: 0, buffered: 50 })
    expect(captured.matching('NATS unreachable; retrying in the background')).toHaveLength(1)
    expect(JSON.stringify(captured.lines())).not.toContain('wrong')
  })
})
