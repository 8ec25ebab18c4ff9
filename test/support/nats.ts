/**
 * Real nats-server processes for system tests: a single server (for outages and restarts) or a
 * 3-node JetStream cluster (for replicated streams), on free loopback ports, each stopped by its PID.
 * Readiness is a successful TCP connect (and, on request, a JetStream answer), never a fixed sleep.
 */
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'

/** Debian's nats-server 2.9 (the brief's measured version). */
export const NATS_SERVER_BIN = '/usr/sbin/nats-server'
/** The long-running JetStream server of this machine; tests on it use unique names and clean up. */
export const SHARED_NATS_URL = 'nats://127.0.0.1:4222'
const HOST = '127.0.0.1'

export interface NatsServerHandle {
  readonly name: string
  readonly port: number
  readonly url: string
  readonly storeDir: string
  /** PID of the current process (changes after `start()`); undefined while stopped. */
  pid(): number | undefined
  running(): boolean
  /** Kills the process by PID and waits for it to exit; the store dir is kept for a restart. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts again on the same port and store dir (after `kill`). */
  start(): Promise<void>
  /** Kills if running and removes the store dir. */
  dispose(): Promise<void>
}

export interface StartNatsInit {
  jetstream?: boolean
  port?: number
  storeDir?: string
  name?: string
  cluster?: { name: string; port: number; routes: readonly number[] }
  /** Further nats-server flags, e.g. `['--user', 'u', '--pass', 'p']`. */
  extraArgs?: readonly string[]
  readyTimeoutMs?: number
}

const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** Distinct free loopback ports: all listeners stay open until every port is chosen. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
          const server = createServer()
          server.once('error', reject)
          server.listen(0, HOST, () => resolve(server))
        }),
    ),
  )
  const ports = servers.map((server) => {
    const address = server.address()
    if (address === null || typeof address === 'string') throw new Error('no port')
    return address.port
  })
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))))
  return ports
}

function tryConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: HOST, port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Polls a TCP connect until the port accepts, the process dies, or the deadline passes. */
async function waitForPort(port: number, child: ChildProcess, timeoutMs: number, logTail: () => string) {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`nats-server on ${port} exited (${child.exitCode ?? child.signalCode}):\n${logTail()}`)
    }
    if (await tryConnect(port)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`nats-server on ${port} not accepting after ${timeoutMs} ms:\n${logTail()}`)
}

export async function startNatsServer(init: StartNatsInit = {}): Promise<NatsServerHandle> {
  const jetstream = init.jetstream ?? true
  const port = init.port ?? (await freePorts(1))[0]!
  const name = init.name ?? `test-nats-${port}`
  const storeDir = init.storeDir ?? (await mkdtemp(join(tmpdir(), `phalanx-nats-${port}-`)))
  const readyTimeoutMs = init.readyTimeoutMs ?? 20_000
  let child: ChildProcess | undefined
  let tail: string[] = []

  const args = ['-a', HOST, '-p', String(port), '-n', name]
  if (jetstream) args.push('-js', '-sd', storeDir)
  if (init.cluster !== undefined) {
    const routes = init.cluster.routes.map((p) => `nats://${HOST}:${p}`).join(',')
    args.push('--cluster_name', init.cluster.name, '--cluster', `nats://${HOST}:${init.cluster.port}`)
    args.push('--routes', routes)
  }
  args.push(...(init.extraArgs ?? []))

  const start = async (): Promise<void> => {
    tail = []
    const proc = spawn(NATS_SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    live.add(proc)
    // The server logs to stderr; an unread pipe would eventually block it.
    const keep = (chunk: Buffer) => {
      tail.push(...chunk.toString().split('\n').filter(Boolean))
      if (tail.length > 40) tail = tail.slice(-40)
    }
    proc.stdout?.on('data', keep)
    proc.stderr?.on('data', keep)
    proc.once('exit', () => live.delete(proc))
    try {
      await waitForPort(port, proc, readyTimeoutMs, () => tail.join('\n'))
    } catch (error) {
      proc.kill('SIGKILL')
      throw error
    }
  }

  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const proc = child
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    process.kill(proc.pid!, signal)
    await exited
  }

  await start()
  return {
    name,
    port,
    url: `nats://${HOST}:${port}`,
    storeDir,
    pid: () =>
      child !== undefined && child.exitCode === null && child.signalCode === null ? child.pid : undefined,
    running: () => child !== undefined && child.exitCode === null && child.signalCode === null,
    kill,
    start,
    async dispose() {
      await kill('SIGKILL')
      await rm(storeDir, { recursive: true, force: true })
    },
  }
}

export interface NatsClusterHandle {
  readonly servers: readonly NatsServerHandle[]
  readonly urls: readonly string[]
  dispose(): Promise<void>
}

/** N JetStream servers routed to each other (a full mesh of routes), each with its own store dir. */
export async function startNatsCluster(
  init: { size?: number; name?: string } = {},
): Promise<NatsClusterHandle> {
  const size = init.size ?? 3
  const ports = await freePorts(size * 2)
  const clientPorts = ports.slice(0, size)
  const clusterPorts = ports.slice(size)
  const clusterName = init.name ?? `phalanx-test-${clientPorts[0]}`
  const servers: NatsServerHandle[] = []
  try {
    const started = await Promise.all(
      clientPorts.map((port, i) =>
        startNatsServer({
          port,
          name: `${clusterName}-n${i}`,
          cluster: {
            name: clusterName,
            port: clusterPorts[i]!,
            routes: clusterPorts.filter((_, j) => j !== i),
          },
        }),
      ),
    )
    servers.push(...started)
  } catch (error) {
    await Promise.all(servers.map((server) => server.dispose()))
    throw error
  }
  return {
    servers,
    urls: servers.map((server) => server.url),
    async dispose() {
      await Promise.all(servers.map((server) => server.dispose()))
    },
  }
}

/**
 * Polls until JetStream answers an account-info request through `urls` (in a cluster this means a
 * meta leader has been elected), so the first stream creation of a test does not race the election.
 */
export async function waitForJetStream(urls: readonly string[], timeoutMs = 30_000): Promise<void> {
  const nc = await connect({ servers: [...urls], name: 'test-jetstream-probe' })
  try {
    const deadline = Date.now() + timeoutMs
    let lastError: unknown
    while (Date.now() < deadline) {
      try {
        const jsm = await jetstreamManager(nc, { timeout: 2_000 })
        await jsm.getAccountInfo()
        return
      } catch (error) {
        lastError = error
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
    }
    throw new Error(`JetStream not ready on ${urls.join(',')} after ${timeoutMs} ms`, { cause: lastError })
  } finally {
    await nc.close()
  }
}
