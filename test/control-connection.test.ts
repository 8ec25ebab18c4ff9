/**
 * The connection against nats-servers that require credentials: a user and password given in the
 * URL (never written to a log line), a user nkey seed file, a creds file (operator/JWT mode), and
 * TLS with a CA and a client certificate the server verifies. A credentials file that cannot be
 * used fails `connectControl` at once, naming its option.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ControlConnection, ControlConnectionInit, NatsUser } from '@phalanx/control'
import { connectControl, createTelemetry, renderNatsServerConfig, watchTelemetry } from '@phalanx/control'
import { attachControlPlane, clusterConfigSchema } from '@phalanx/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import type { NatsServerHandle } from './support/nats.js'
import { startNatsServer } from './support/nats.js'
import { makeJwtChain, makeTestPki, makeUserNkey } from './support/nats-auth.js'

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

describe('connectControl with nkeys, creds files and TLS', () => {
  let dir = ''
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'phalanx-nats-auth-'))
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  /** A server from `config` (written to a file), and a node and a watcher connected with `auth`. */
  async function telemetryGetsThrough(
    config: string,
    auth: Partial<ControlConnectionInit>,
    watcherAuth: Partial<ControlConnectionInit> = auth,
  ) {
    const file = join(dir, `nats-${Math.random().toString(36).slice(2)}.conf`)
    writeFileSync(file, config)
    server = await startNatsServer({ jetstream: false, extraArgs: ['-c', file] })
    const servers = server.url
    const { log } = captureLogger()
    const node = connectControl({ servers, cluster: 'auth', name: 'worker-0', log, ...auth })
    const watcher = connectControl({ servers, cluster: 'auth', name: 'watch', log, ...watcherAuth })
    cleanups.push(
      () => node.close(),
      () => watcher.close(),
    )
    const seen = new Promise<number>((resolve) => {
      void watchTelemetry({ conn: watcher, onEvent: (event) => resolve(event.round) }).then((watch) => {
        cleanups.push(() => watch.stop())
        createTelemetry({ conn: node, nodeId: 'worker-0', role: 'worker' }).publish({ round: 4 })
      })
    })
    return seen
  }

  it('authenticates with a user nkey seed file (as a per-role user of permissions.ts)', async () => {
    const worker = makeUserNkey()
    const observer = makeUserNkey()
    const seedFile = join(dir, 'worker.nk')
    writeFileSync(seedFile, `${worker.seed}\n`, { mode: 0o600 })
    const users: NatsUser[] = [
      { role: 'worker', nodeId: 'worker-0', nkey: worker.publicKey },
      { role: 'observer', nkey: observer.publicKey },
    ]
    // The watcher is an observer: a worker may publish its telemetry, not read anyone's.
    const observerSeed = join(dir, 'observer.nk')
    writeFileSync(observerSeed, observer.seed, { mode: 0o600 })
    const config = renderNatsServerConfig({ cluster: 'auth', users })
    expect(
      await telemetryGetsThrough(config, { nkeySeedFile: seedFile }, { nkeySeedFile: observerSeed }),
    ).toBe(4)

    // A seed the server does not know is refused: the connection keeps retrying in the background.
    const stranger = join(dir, 'stranger.nk')
    writeFileSync(stranger, makeUserNkey().seed)
    const captured = captureLogger()
    const refused = connectControl({
      servers: server!.url,
      cluster: 'auth',
      name: 'stranger',
      nkeySeedFile: stranger,
      log: captured.log,
      reconnectTimeWaitMs: 50,
    })
    cleanups.push(() => refused.close())
    await expect.poll(() => captured.matching('NATS unreachable').length, { timeout: 15_000 }).toBe(1)
    expect(refused.state()).toBe('connecting')
  })

  it('authenticates with a creds file against a server in operator (JWT) mode', async () => {
    const chain = makeJwtChain()
    const credsFile = join(dir, 'user.creds')
    writeFileSync(credsFile, chain.creds, { mode: 0o600 })
    expect(await telemetryGetsThrough(chain.serverConfig, { credsFile })).toBe(4)
  })

  it('connects over TLS, checking the server against the CA and presenting a client certificate', async () => {
    const pki = makeTestPki(dir)
    const config = renderNatsServerConfig({
      cluster: 'auth',
      users: [
        { role: 'worker', nodeId: 'worker-0', user: 'worker-0', password: 'w-pass' },
        { role: 'observer', user: 'observer', password: 'o-pass' },
      ],
      tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, caFile: pki.caFile, verify: true },
    })
    const tls = { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile }
    expect(
      await telemetryGetsThrough(
        config,
        { tls, user: 'worker-0', pass: 'w-pass' },
        { tls, user: 'observer', pass: 'o-pass' },
      ),
    ).toBe(4)
  })

  it('without the client certificate, the TLS server turns the connection away', async () => {
    const pki = makeTestPki(dir)
    const file = join(dir, 'tls-verify.conf')
    writeFileSync(
      file,
      renderNatsServerConfig({
        cluster: 'auth',
        users: [{ role: 'operator', user: 'op', password: 'op-pass' }],
        tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, caFile: pki.caFile, verify: true },
      }),
    )
    server = await startNatsServer({ jetstream: false, extraArgs: ['-c', file] })
    const captured = captureLogger()
    const conn: ControlConnection = connectControl({
      servers: server.url,
      cluster: 'auth',
      name: 'no-cert',
      log: captured.log,
      user: 'op',
      pass: 'op-pass',
      tls: { caFile: pki.caFile },
      reconnectTimeWaitMs: 50,
    })
    cleanups.push(() => conn.close())
    // The handshake fails (the server demands a certificate): retried in the background, logged once.
    await expect.poll(() => captured.matching('NATS unreachable').length, { timeout: 15_000 }).toBe(1)
    expect(conn.state()).toBe('connecting')
  })

  it("a node's control plane connects with the config's nkey seed file over TLS, and publishes its rounds", async () => {
    const pki = makeTestPki(dir)
    const worker = makeUserNkey()
    const observer = makeUserNkey()
    const seedFile = join(dir, 'node-worker.nk')
    writeFileSync(seedFile, worker.seed, { mode: 0o600 })
    const observerSeed = join(dir, 'node-observer.nk')
    writeFileSync(observerSeed, observer.seed, { mode: 0o600 })
    const file = join(dir, 'node-tls.conf')
    writeFileSync(
      file,
      renderNatsServerConfig({
        cluster: 'auth',
        users: [
          { role: 'worker', nodeId: 'worker-0', nkey: worker.publicKey },
          { role: 'observer', nkey: observer.publicKey },
        ],
        tls: { certFile: pki.serverCertFile, keyFile: pki.serverKeyFile, caFile: pki.caFile, verify: true },
      }),
    )
    server = await startNatsServer({ jetstream: false, extraArgs: ['-c', file] })
    const tlsFields = {
      natsTlsCaFile: pki.caFile,
      natsTlsCertFile: pki.clientCertFile,
      natsTlsKeyFile: pki.clientKeyFile,
    }
    const { log } = captureLogger()
    const watcher = connectControl({
      servers: server.url,
      cluster: 'auth',
      name: 'obs',
      log,
      nkeySeedFile: observerSeed,
      tls: { caFile: pki.caFile, certFile: pki.clientCertFile, keyFile: pki.clientKeyFile },
    })
    cleanups.push(() => watcher.close())
    let resolveRound!: (round: number) => void
    const seen = new Promise<number>((resolve) => {
      resolveRound = resolve
    })
    const watch = await watchTelemetry({ conn: watcher, onEvent: (event) => resolveRound(event.round) })
    cleanups.push(() => watch.stop())
    const config = clusterConfigSchema.parse({
      cluster: 'auth',
      natsUrl: server.url,
      natsNkeySeedFile: seedFile,
      ...tlsFields,
    })
    const control = await attachControlPlane({
      config,
      log,
      nodeId: 'worker-0',
      role: 'worker',
      onChaos: () => {},
    })
    cleanups.push(() => control.close())
    await control.connection!.connected()
    control.roundCompleted({
      nodeId: 'worker-0',
      role: 'worker',
      round: 6,
      roundDurationSeconds: 0.1,
      quorumWaitSeconds: 0,
      cpuSeconds: 0.01,
      rejected: {},
      suspicions: [],
    })
    expect(await seen).toBe(6)

    // An unreadable file stops the start with a ConfigError naming the field.
    const broken = clusterConfigSchema.parse({ ...config, natsTlsCaFile: join(dir, 'missing-ca.pem') })
    await expect(
      attachControlPlane({ config: broken, log, nodeId: 'worker-0', role: 'worker', onChaos: () => {} }),
    ).rejects.toMatchObject({ name: 'ConfigError', field: 'natsTlsCaFile' })
  })

  it.each([
    { option: 'credsFile', init: { credsFile: '/nonexistent/user.creds' }, code: 'unreadable' },
    { option: 'nkeySeedFile', init: { nkeySeedFile: '/nonexistent/seed.nk' }, code: 'unreadable' },
    { option: 'caFile', init: { tls: { caFile: '/nonexistent/ca.pem' } }, code: 'unreadable' },
    { option: 'keyFile', init: { tls: { certFile: '/etc/hostname' } }, code: 'conflict' },
  ])('fails at once, naming $option, when it is $code', ({ option, init, code }) => {
    const { log } = captureLogger()
    const start = () =>
      connectControl({ servers: 'nats://127.0.0.1:1', cluster: 'auth', name: 'bad', log, ...init })
    expect(start).toThrow(expect.objectContaining({ name: 'NatsCredentialsError', code, option }))
  })

  it('names a file that is there but holds no seed as invalid, without printing its contents', () => {
    const file = join(dir, 'not-a-seed')
    writeFileSync(file, 'SECRETLOOKINGBUTWRONG')
    const { log } = captureLogger()
    let caught: Error | undefined
    try {
      connectControl({
        servers: 'nats://127.0.0.1:1',
        cluster: 'auth',
        name: 'bad',
        log,
        nkeySeedFile: file,
        authOptionNames: { nkeySeedFile: 'natsNkeySeedFile' },
      })
    } catch (error) {
      caught = error as Error
    }
    expect(caught).toMatchObject({
      name: 'NatsCredentialsError',
      code: 'invalid',
      option: 'natsNkeySeedFile',
    })
    expect(caught?.message).not.toContain('SECRETLOOKINGBUTWRONG')
  })
})
