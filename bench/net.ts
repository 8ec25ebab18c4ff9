/**
 * `npm run bench -- net [--quick] [--profile] [--planes=tls,libp2p] [--encrypters=noise,tls]
 * [--stream-mib=32] [--fanouts=4,16] [--sizes=1,4,16] [--reps=N] [--no-round]`: delivery time and
 * CPU of one large vector to one receiver (32 MiB: one payload stream), of one vector from
 * 1 sender to 4 and 16 receivers (1, 4, 16 MiB), and a full round's traffic (4 servers → 16
 * peers models, 12 workers → 4 servers gradients, d = 1M), over real net nodes (`createNetNode`),
 * one process per node, on loopback. In the same run, the floor: the same bytes in the same
 * pattern over plain `node:tls` sockets between the same number of processes (pre-connected, as
 * libp2p connections are).
 *
 * Every net configuration measured is a pair (payload plane, connection encrypter), each in its
 * own set of processes, all up at once, every repetition running each configuration and the
 * floor once, in an order mirrored every other repetition and rotated every two (A B C F, F C B A,
 * B C F A, A F C B, …): a drift of the host's load falls on every transport alike.
 * Which pairs: with `--encrypters=` given, every plane of `--planes=` with every encrypter listed;
 * without, every plane with netDefaults.encrypter, and the libp2p plane with each other
 * encrypter too (only there does the encrypter carry the payload bytes). The default run is thus,
 * with today's defaults, tls/noise, libp2p/noise, libp2p/tls. `--planes=libp2p --encrypters=tls,noise`
 * is the encrypter comparison; `--planes=libp2p,tls --encrypters=noise` the planes' one.
 *
 * Per-receiver goodput = payload bytes / (time from the publish request to that receiver's
 * delivery, hash- and finiteness-checked), median over receivers and repetitions.
 *
 * `--stream-mib=0 --fanouts=1 --sizes=64 --no-round --reps=5`: one pair, 64 MiB through the
 * payload protocol, the CPU of sender and receiver apiece per MiB (the receive path's own cost,
 * issue 15 item 2).
 *
 * This file is also the TLS peer: `node --import tsx bench/net.ts --tls-peer`.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  type EncrypterName,
  encrypterNames,
  loadOrCreatePeerKey,
  netDefaults,
  type PayloadPlaneName,
  payloadPlaneNames,
} from '@phalanx/net'
import { PeerProcess } from '../test/fixtures/net-harness.js'
import { resultsDir, writeResults } from './results.js'

const MiB = 1024 * 1024
const thisFile = fileURLToPath(import.meta.url)

// ───────────────────────────── TLS peer (child mode) ─────────────────────────────

async function tlsPeer(): Promise<void> {
  const out = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`)
  const [certPath, keyPath] = [process.argv[3]!, process.argv[4]!]
  const cert = readFileSync(certPath)
  const key = readFileSync(keyPath)
  const outgoing = new Map<string, TLSSocket>()
  let myName = ''
  const server = createServer({ cert, key }, (socket) => {
    // Frame: 1-byte name length, name (once per connection), then per message an 8-byte size and the bytes.
    let from = ''
    let expected = -1
    let got = 0
    let pending: Buffer = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      let data: Buffer = pending.length > 0 ? Buffer.concat([pending, chunk]) : chunk
      pending = Buffer.alloc(0)
      while (data.length > 0) {
        if (from === '') {
          if (data.length < 1 || data.length < 1 + data[0]!) {
            pending = data
            return
          }
          from = data.subarray(1, 1 + data[0]!).toString()
          data = data.subarray(1 + data[0]!)
          continue
        }
        if (expected < 0) {
          if (data.length < 8) {
            pending = data
            return
          }
          expected = Number(data.readBigUInt64BE(0))
          got = 0
          data = data.subarray(8)
          continue
        }
        const take = Math.min(expected - got, data.length)
        got += take
        data = data.subarray(take)
        if (got === expected) {
          out({ event: 'received', from, bytes: expected })
          expected = -1
        }
      }
    })
  })
  const commands: Record<string, (a: Record<string, unknown>) => Promise<unknown>> = {
    listen: (a) =>
      new Promise((resolve) => {
        myName = a.name as string
        server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port }))
      }),
    connect: async (a) => {
      await Promise.all(
        (a.peers as Array<{ name: string; port: number }>).map(
          (p) =>
            new Promise<void>((resolve, reject) => {
              const socket = connect(
                { host: '127.0.0.1', port: p.port, ca: cert, servername: 'localhost' },
                () => {
                  const name = Buffer.from(myName)
                  socket.write(Buffer.concat([Buffer.of(name.length), name]))
                  outgoing.set(p.name, socket)
                  resolve()
                },
              )
              socket.on('error', reject)
            }),
        ),
      )
      return true
    },
    cpu: async () => {
      const usage = process.cpuUsage()
      return usage.user + usage.system
    },
    send: async (a) => {
      const payload = Buffer.alloc(a.size as number, 7)
      const header = Buffer.alloc(8)
      header.writeBigUInt64BE(BigInt(payload.length))
      for (const to of a.to as string[]) {
        const socket = outgoing.get(to)!
        socket.write(header)
        socket.write(payload)
      }
      return true
    },
  }
  createInterface({ input: process.stdin })
    .on('line', (line) => {
      const request = JSON.parse(line) as Record<string, unknown> & { id: number; cmd: string }
      commands[request.cmd]!(request).then(
        (result) => out({ id: request.id, ok: true, result }),
        (error: Error) =>
          out({ id: request.id, ok: false, error: { name: error.name, message: error.message } }),
      )
    })
    .on('close', () => process.exit(0))
  out({ event: 'ready' })
}

/** Parent side of a TLS peer: requests and `received` events, like `PeerProcess`. */
class TlsProcess {
  readonly arrivals: Array<{ from: string; at: number }> = []
  readonly #child
  readonly #pending = new Map<number, (v: unknown) => void>()
  readonly #waiters = new Set<() => void>()
  #next = 1
  readonly ready: Promise<void>

  constructor(
    readonly name: string,
    cert: string,
    key: string,
  ) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', thisFile, '--tls-peer', cert, key], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    let onReady: () => void = () => undefined
    this.ready = new Promise((resolve) => {
      onReady = resolve
    })
    createInterface({ input: this.#child.stdout }).on('line', (line) => {
      const message = JSON.parse(line) as Record<string, unknown>
      if (typeof message.id === 'number') {
        this.#pending.get(message.id)?.(message.result)
        this.#pending.delete(message.id)
      } else if (message.event === 'ready') onReady()
      else if (message.event === 'received') {
        this.arrivals.push({ from: message.from as string, at: performance.now() })
        for (const waiter of this.#waiters) waiter()
      }
    })
  }

  request<T>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.#next++
    return new Promise((resolve) => {
      this.#pending.set(id, resolve as (v: unknown) => void)
      this.#child.stdin.write(`${JSON.stringify({ id, cmd, ...args })}\n`)
    })
  }

  /** Resolves with the arrival time once `count` messages from `from` have arrived in total. */
  waitArrivals(from: string, count: number): Promise<number> {
    const check = () => {
      const mine = this.arrivals.filter((a) => a.from === from)
      return mine.length >= count ? mine[count - 1]!.at : undefined
    }
    const now = check()
    if (now !== undefined) return Promise.resolve(now)
    return new Promise((resolve) => {
      const waiter = () => {
        const at = check()
        if (at === undefined) return
        this.#waiters.delete(waiter)
        resolve(at)
      }
      this.#waiters.add(waiter)
    })
  }

  close(): void {
    this.#child.stdin.end()
  }
}

// ───────────────────────────── measurement ─────────────────────────────

interface Transfer {
  sender: string
  receivers: string[]
  kind: 'model' | 'gradient'
}

/** One timed repetition: per (sender, receiver) delivery time in ms from the start. */
type Timing = Array<{ sender: string; receiver: string; ms: number }>

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const quick = process.argv.includes('--quick')
const argValue = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const onlyFanouts = argValue('fanouts')?.split(',').map(Number)
const onlySizes = argValue('sizes')
  ?.split(',')
  .map((x) => Number(x) * MiB)
const skipRound = process.argv.includes('--no-round')
/** Repetitions per fan-out and size (default 5, 3 from 16 MiB on or with --quick). */
const onlyReps = argValue('reps') === undefined ? undefined : Number(argValue('reps'))

/** A wait that names what it was waiting for when it fails, instead of hanging the run. */
async function bounded<T>(
  what: string,
  promise: Promise<T>,
  ms = 120_000,
  diagnose?: () => Promise<string>,
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      async () => reject(new Error(`${what}: no answer in ${ms} ms ${(await diagnose?.()) ?? ''}`)),
      ms,
    )
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
const profile = process.argv.includes('--profile')
/** The one-stream scenario's payload (1 → 1), in MiB; 0 leaves it out. 32 MiB: half the largest payload accepted. */
const streamBytes = Number(argValue('stream-mib') ?? 32) * MiB

/** A list flag's values, each checked against the registry's names; `fallback` when absent. */
function namesFlag<T extends string>(flag: string, known: readonly T[], fallback: T[]): T[] {
  const given = argValue(flag)?.split(',')
  for (const name of given ?? []) {
    if (!(known as readonly string[]).includes(name))
      throw new Error(`--${flag}: unknown name ${name}; known: ${known.join(', ')}`)
  }
  return (given as T[] | undefined) ?? fallback
}
/** The registry's names, the default first. */
const defaultFirst = <T extends string>(known: readonly T[], preferred: T): T[] => [
  preferred,
  ...known.filter((name) => name !== preferred),
]

/** One net configuration measured: where payload bytes travel, and what encrypts the connections. */
interface Config {
  plane: PayloadPlaneName
  encrypter: EncrypterName
}

const planes = namesFlag(
  'planes',
  payloadPlaneNames,
  defaultFirst(payloadPlaneNames, netDefaults.payloadPlane),
)
const encrypters = namesFlag(
  'encrypters',
  encrypterNames,
  defaultFirst(encrypterNames, netDefaults.encrypter),
)
/** See the header: all pairs when `--encrypters=` is given, else the other encrypters on the libp2p plane only. */
const configs: Config[] = planes.flatMap((plane) =>
  encrypters
    .filter((_, i) => i === 0 || argValue('encrypters') !== undefined || plane === 'libp2p')
    .map((encrypter) => ({ plane, encrypter })),
)

/** `net/<plane>/<encrypter>`: a Phalanx net node so configured; `floor`: bare `node:tls` sockets. */
type Transport = `net/${PayloadPlaneName}/${EncrypterName}` | 'floor'
const transportOf = (config: Config): Transport => `net/${config.plane}/${config.encrypter}`
/** Where a configuration's `--profile` output goes, under bench/results/net-profile. */
const profileName = (config: Config): string => `${config.plane}-${config.encrypter}`

interface Pool {
  config: Config
  names: string[]
  ids: Record<string, string>
  keyFiles: Record<string, string>
  procs: Record<string, PeerProcess>
}

let clusterSeq = 0

/** Starts libp2p nodes in the given processes (fresh cluster), full mesh, and waits for subscriptions. */
async function startCluster(
  pool: Pool,
  roles: Record<string, 'server' | 'worker'>,
  dimension: number,
  subscribe: Record<string, Array<'model' | 'gradient'>>,
): Promise<string> {
  const cluster = `bench${clusterSeq++}`
  const names = Object.keys(roles)
  const members = names.map((n) => [pool.ids[n]!, roles[n]!])
  const addrs: Record<string, string> = {}
  for (const name of names) {
    const started = await pool.procs[name]!.request<{ addrs: string[] }>('start', {
      cluster,
      role: roles[name],
      dimension,
      members,
      closed: true,
      keyFile: pool.keyFiles[name],
      payloadPlane: pool.config.plane,
      encrypter: pool.config.encrypter,
      bootstrap: Object.values(addrs),
      subscribe: subscribe[name],
      checksum: false,
      forward: { rejected: false, member: false, equivocation: false },
    })
    addrs[name] = started.addrs[0]!
  }
  // Each node dialled the ones started before it; the first ones dial back so that every
  // pair is connected even if an early inbound connection was dropped during start-up.
  await Promise.all(
    names.map((name) =>
      Promise.all(
        names
          .filter((other) => other !== name)
          .map((other) =>
            pool.procs[name]!.request('dial', { address: addrs[other] }).catch(() => undefined),
          ),
      ),
    ),
  )
  return cluster
}

async function stopCluster(pool: Pool, names: string[]): Promise<void> {
  await Promise.all(names.map((n) => pool.procs[n]!.request('stop')))
}

/** libp2p: each sender publishes one vector; times each receiver's delivery. */
async function libp2pRep(
  pool: Pool,
  transfers: Transfer[],
  round: number,
  dimension: number,
): Promise<Timing> {
  const everyone = [...new Set(transfers.flatMap((t) => [t.sender, ...t.receivers]))]
  await Promise.all(everyone.map((n) => pool.procs[n]!.request('setRound', { round })))
  const start = performance.now()
  const timing: Timing = []
  const waits = transfers.flatMap((t) =>
    t.receivers.map(async (r) => {
      await pool.procs[r]!.waitFor(
        (e) =>
          e.event === 'vector' && e.round === round && e.sender === pool.ids[t.sender] && e.self === false,
        120_000,
      )
      timing.push({ sender: t.sender, receiver: r, ms: performance.now() - start })
    }),
  )
  await Promise.all(
    transfers.map((t) =>
      pool.procs[t.sender]!.request('publish', {
        kind: t.kind,
        round,
        vector: { dimension, base: round },
      }),
    ),
  )
  await Promise.all(waits)
  // Drop this repetition's events so the next waits scan little.
  for (const n of everyone) pool.procs[n]!.events.length = 0
  return timing
}

async function tlsRep(tls: Record<string, TlsProcess>, transfers: Transfer[], size: number): Promise<Timing> {
  const timing: Timing = []
  // The n-th message from a sender is its n-th arrival at that receiver: count what is already there.
  const expected = transfers.map((t) =>
    t.receivers.map((r) => tls[r]!.arrivals.filter((a) => a.from === t.sender).length + 1),
  )
  const start = performance.now()
  const waits = transfers.flatMap((t, i) =>
    t.receivers.map(async (r, j) => {
      const at = await tls[r]!.waitArrivals(t.sender, expected[i]![j]!)
      timing.push({ sender: t.sender, receiver: r, ms: at - start })
    }),
  )
  await Promise.all(transfers.map((t) => tls[t.sender]!.request('send', { size, to: t.receivers })))
  await Promise.all(waits)
  return timing
}

/** Total CPU µs of a set of processes: what a transfer costs, independent of how loaded the host is. */
type Requester = { request<T>(cmd: string): Promise<T> }

async function cpuOf(requesters: Requester[]): Promise<number> {
  const values = await Promise.all(requesters.map((p) => p.request<number>('cpu')))
  return values.reduce((a, b) => a + b, 0)
}

interface Row {
  scenario: string
  payload_bytes: number
  receivers_per_sender: number
  transport: Transport
  /** Median over repetitions of the median per-receiver delivery time. */
  median_delivery_ms: number
  /** Median over repetitions of the time until the last receiver had everything. */
  median_all_delivered_ms: number
  per_receiver_goodput_mb_per_s: number
  aggregate_goodput_mb_per_s: number
  /**
   * CPU time (user + system) of all processes involved (sender + receivers) per MiB delivered:
   * the median over repetitions of each repetition's figure.
   */
  cpu_ms_per_mib?: number
  /** The sender's share of it, and the receivers' (all of them, per MiB delivered), medians too. */
  sender_cpu_ms_per_mib?: number
  receiver_cpu_ms_per_mib?: number
}

function summarise(
  scenario: string,
  transport: Transport,
  size: number,
  fanout: number,
  reps: Timing[],
): Row {
  const medians = reps.map((t) => median(t.map((x) => x.ms)))
  const alls = reps.map((t) => Math.max(...t.map((x) => x.ms)))
  const totalBytes = reps[0]!.length * size
  const med = median(medians)
  const all = median(alls)
  return {
    scenario,
    payload_bytes: size,
    receivers_per_sender: fanout,
    transport,
    median_delivery_ms: Number(med.toFixed(1)),
    median_all_delivered_ms: Number(all.toFixed(1)),
    per_receiver_goodput_mb_per_s: Number((size / 1e6 / (med / 1000)).toFixed(1)),
    aggregate_goodput_mb_per_s: Number((totalBytes / 1e6 / (all / 1000)).toFixed(1)),
  }
}

function summariseProfile(dir: string, top = 25): Array<{ file: string; busy_ms: number; top: string[] }> {
  const result: Array<{ file: string; busy_ms: number; top: string[] }> = []
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profileData = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
      nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>
      samples: number[]
      timeDeltas: number[]
    }
    const byId = new Map(profileData.nodes.map((n) => [n.id, n]))
    const self = new Map<string, number>()
    let total = 0
    profileData.samples.forEach((id, i) => {
      const node = byId.get(id)!
      const where = node.callFrame.url.split('/').slice(-3).join('/')
      const label = `${node.callFrame.functionName || '(anonymous)'} ${where}`
      const dt = profileData.timeDeltas[i] ?? 0
      self.set(label, (self.get(label) ?? 0) + dt)
      total += dt
    })
    // Idle time is the process waiting for the others; shares are of the busy time only.
    const idle = self.get('(idle) ') ?? 0
    self.delete('(idle) ')
    const busy = total - idle
    if (busy < 200_000) continue // loader threads and idle peers: nothing to read
    result.push({
      file,
      busy_ms: Math.round(busy / 1000),
      top: [...self]
        .sort((a, b) => b[1] - a[1])
        .slice(0, top)
        .map(([label, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)}%  ${label}`),
    })
  }
  return result
}

async function main(): Promise<void> {
  const loadAtStart = loadavg()
  const work = mkdtempSync(join(tmpdir(), 'phalanx-bench-net-'))
  const profileDir = join(resultsDir, 'net-profile')
  if (profile) {
    rmSync(profileDir, { recursive: true, force: true })
    mkdirSync(profileDir, { recursive: true })
  }
  const cert = join(work, 'cert.pem')
  const key = join(work, 'key.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ],
    { stdio: 'ignore' },
  )

  // 17 processes per transport: s0..s3 servers, w0..w12 workers; the fan-out scenarios use
  // s0 → w*. Without the full round only s0 and the receivers of the largest fan-out are started
  // (one set per configuration and one for the floor), so a `--fanouts=1` run of one
  // configuration is 4 processes.
  const allNames = [...['s0', 's1', 's2', 's3'], ...Array.from({ length: 13 }, (_, i) => `w${i}`)]
  const sizes = onlySizes ?? (quick ? [4 * MiB] : [1 * MiB, 4 * MiB, 16 * MiB])
  const fanouts = onlyFanouts ?? (quick ? [4] : [4, 16])
  const fullRound = !quick && !skipRound
  // The scenarios: one large payload to one receiver (one payload stream: the encrypter's and the
  // receive path's own cost), then 1 → N fan-outs of every size.
  const scenarios: Array<{ fanout: number; size: number }> = [
    ...(streamBytes > 0 ? [{ fanout: 1, size: streamBytes }] : []),
    ...fanouts.flatMap((fanout) => sizes.map((size) => ({ fanout, size }))),
  ]
  const widest = Math.max(...scenarios.map((x) => x.fanout))
  const names = fullRound ? allNames : ['s0', ...allNames.slice(-widest)]
  const ids: Record<string, string> = {}
  const keyFiles: Record<string, string> = {}
  for (const name of names) {
    keyFiles[name] = join(work, `${name}.key`)
    ids[name] = peerIdFromPrivateKey((await loadOrCreatePeerKey(keyFiles[name]!)).key).toString()
  }
  // One pool of processes per configuration: the same peer ids, never connected to each other.
  const pools = new Map(
    configs.map((config) => [transportOf(config), { config, names, ids, keyFiles, procs: {} } as Pool]),
  )
  const tls: Record<string, TlsProcess> = {}
  const rows: Row[] = []
  try {
    for (const name of names) {
      for (const pool of pools.values()) {
        const nodeArgs =
          // The sender and one receiver (w12 receives in every fan-out scenario; w0 in the round).
          profile && (name === 's0' || name === (fullRound ? 'w0' : 'w12'))
            ? ['--cpu-prof', `--cpu-prof-dir=${join(profileDir, profileName(pool.config))}`]
            : []
        pool.procs[name] = await PeerProcess.spawn(
          name,
          nodeArgs,
          process.argv.includes('--debug') ? ['--log=info'] : [],
        )
      }
      tls[name] = new TlsProcess(name, cert, key)
    }
    await Promise.all(Object.values(tls).map((t) => t.ready))
    const ports: Record<string, number> = {}
    for (const name of names)
      ports[name] = (await tls[name]!.request<{ port: number }>('listen', { name })).port
    for (const name of names) {
      await tls[name]!.request('connect', {
        peers: names.filter((n) => n !== name).map((n) => ({ name: n, port: ports[n]! })),
      })
    }
    const transports: Transport[] = [...pools.keys(), 'floor']
    /** Repetition i's order: mirrored every other repetition, rotated every two (A B B A generalised). */
    const orderOf = (i: number): Transport[] => {
      const shift = (i >> 1) % transports.length
      const rotated = [...transports.slice(shift), ...transports.slice(0, shift)]
      return i % 2 === 0 ? rotated : rotated.reverse()
    }
    let round = 1
    for (const { fanout, size } of scenarios) {
      const reps = onlyReps ?? (quick ? 3 : size >= 16 * MiB ? 3 : 5)
      // Any 16 of the other processes; in this scenario they all play workers.
      const receivers = names.filter((n) => n !== 's0').slice(-fanout)
      const roles: Record<string, 'server' | 'worker'> = { s0: 'server' }
      const subscribe: Record<string, Array<'model' | 'gradient'>> = { s0: ['model'] }
      for (const r of receivers) {
        roles[r] = 'worker'
        subscribe[r] = ['model']
      }
      const dimension = size / 4
      const transfers: Transfer[] = [{ sender: 's0', receivers, kind: 'model' }]
      for (const [transport, pool] of pools) {
        await startCluster(pool, roles, dimension, subscribe)
        await bounded(
          `s0 (${transport}) waiting for ${fanout} subscribers`,
          pool.procs.s0!.request('waitForSubscribers', { kind: 'model', count: fanout }),
          60_000,
          async () =>
            JSON.stringify({
              connections: (await pool.procs.s0!.request<string[]>('connections')).length,
              s0: pool.procs.s0!.stderr.slice(-6000),
            }),
        )
        // Warm-up: the payload connections open (and, on the TLS plane, identify has told s0's
        // peers its port) before anything is timed.
        await libp2pRep(pool, transfers, round++, dimension)
      }
      await tlsRep(tls, transfers, size)
      const of = (t: Transport): Record<string, Requester> => (t === 'floor' ? tls : pools.get(t)!.procs)
      const rep = (t: Transport): Promise<Timing> =>
        t === 'floor' ? tlsRep(tls, transfers, size) : libp2pRep(pools.get(t)!, transfers, round++, dimension)
      // Per transport, per repetition: the timing and the CPU µs of the sender and the receivers.
      const results = new Map(
        transports.map((t) => [t, [] as Array<{ timing: Timing; sender: number; receivers: number }>]),
      )
      for (let i = 0; i < reps; i++) {
        for (const t of orderOf(i)) {
          const procs = of(t)
          const [s0, r0] = [await cpuOf([procs.s0!]), await cpuOf(receivers.map((n) => procs[n]!))]
          const timing = await rep(t)
          const sender = (await cpuOf([procs.s0!])) - s0
          const received = (await cpuOf(receivers.map((n) => procs[n]!))) - r0
          results.get(t)!.push({ timing, sender, receivers: received })
        }
      }
      const mibPerRep = (fanout * size) / MiB
      const perMib = (us: number[]) => Number((median(us) / 1000 / mibPerRep).toFixed(2))
      for (const pool of pools.values()) await stopCluster(pool, Object.keys(roles))
      const scenario = `1 → ${fanout}`
      for (const t of transports) {
        const measured = results.get(t)!
        rows.push({
          ...summarise(
            scenario,
            t,
            size,
            fanout,
            measured.map((m) => m.timing),
          ),
          cpu_ms_per_mib: perMib(measured.map((m) => m.sender + m.receivers)),
          sender_cpu_ms_per_mib: perMib(measured.map((m) => m.sender)),
          receiver_cpu_ms_per_mib: perMib(measured.map((m) => m.receivers)),
        })
      }
      console.error(`done: ${scenario} ${size / MiB} MiB`)
    }

    if (fullRound) {
      // Full round: 4 servers publish models to the 3 other servers and 12 workers, then
      // 12 workers publish gradients to the 4 servers.
      const servers = ['s0', 's1', 's2', 's3']
      const workers = names.filter((n) => n.startsWith('w')).slice(0, 12)
      const roles: Record<string, 'server' | 'worker'> = {}
      const subscribe: Record<string, Array<'model' | 'gradient'>> = {}
      for (const s of servers) {
        roles[s] = 'server'
        subscribe[s] = ['model', 'gradient']
      }
      for (const w of workers) {
        roles[w] = 'worker'
        subscribe[w] = ['model']
      }
      const dimension = 1_000_000
      const size = dimension * 4
      for (const pool of pools.values()) {
        await startCluster(pool, roles, dimension, subscribe)
        await Promise.all(
          servers.map((s) => pool.procs[s]!.request('waitForSubscribers', { kind: 'model', count: 15 })),
        )
        await Promise.all(
          workers.map((w) => pool.procs[w]!.request('waitForSubscribers', { kind: 'gradient', count: 4 })),
        )
      }
      const models: Transfer[] = servers.map((s) => ({
        sender: s,
        receivers: [...servers.filter((x) => x !== s), ...workers],
        kind: 'model',
      }))
      const gradients: Transfer[] = workers.map((w) => ({ sender: w, receivers: servers, kind: 'gradient' }))
      const phases = [
        { name: 'round: 4 servers → 15 peers (models)', transfers: models },
        { name: 'round: 12 workers → 4 servers (gradients)', transfers: gradients },
      ].map((phase) => ({ ...phase, times: new Map(transports.map((t) => [t, [] as Timing[]])) }))
      const roundTotals = new Map(transports.map((t) => [t, [] as number[]]))
      // Repetition 0 warms up (opens the payload connections) and is not counted.
      for (let i = 0; i < 4; i++) {
        const sums = new Map(transports.map((t) => [t, 0]))
        for (const phase of phases) {
          for (const t of orderOf(i)) {
            const timing =
              t === 'floor'
                ? await tlsRep(tls, phase.transfers, size)
                : await libp2pRep(pools.get(t)!, phase.transfers, round++, dimension)
            sums.set(t, sums.get(t)! + Math.max(...timing.map((x) => x.ms)))
            if (i > 0) phase.times.get(t)!.push(timing)
          }
        }
        if (i > 0) for (const t of transports) roundTotals.get(t)!.push(sums.get(t)!)
      }
      for (const pool of pools.values()) await stopCluster(pool, Object.keys(roles))
      for (const phase of phases) {
        const fanout = phase.transfers[0]!.receivers.length
        for (const t of transports) rows.push(summarise(phase.name, t, size, fanout, phase.times.get(t)!))
      }
      for (const t of transports) {
        const total = median(roundTotals.get(t)!)
        console.error(`full round (both phases, last receiver): ${t} ${total.toFixed(0)} ms`)
        rows.push({
          scenario: 'round: both phases (d = 1M)',
          payload_bytes: size,
          receivers_per_sender: 0,
          transport: t,
          median_delivery_ms: Number(total.toFixed(1)),
          median_all_delivered_ms: Number(total.toFixed(1)),
          per_receiver_goodput_mb_per_s: 0,
          aggregate_goodput_mb_per_s: Number(((64 * size) / 1e6 / (total / 1000)).toFixed(1)),
        })
      }
    }
  } finally {
    await Promise.all([...pools.values()].flatMap((pool) => Object.values(pool.procs).map((p) => p.close())))
    for (const t of Object.values(tls)) t.close()
    rmSync(work, { recursive: true, force: true })
  }

  // ── report: every row beside the floor of its scenario, measured in the same run ──
  const table: string[] = [
    '| scenario | payload | transport | median delivery ms | all delivered ms | per-receiver MB/s | aggregate MB/s | goodput ÷ floor | CPU ms per MiB | of it sender / receivers | CPU ÷ floor |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const row of rows) {
    const floor = rows.find(
      (r) => r.transport === 'floor' && r.scenario === row.scenario && r.payload_bytes === row.payload_bytes,
    )
    const goodput =
      floor === undefined || row.transport === 'floor' || row.per_receiver_goodput_mb_per_s === 0
        ? ''
        : (row.per_receiver_goodput_mb_per_s / floor.per_receiver_goodput_mb_per_s).toFixed(2)
    const cpuRatio =
      floor?.cpu_ms_per_mib === undefined || row.cpu_ms_per_mib === undefined || row.transport === 'floor'
        ? ''
        : (row.cpu_ms_per_mib / floor.cpu_ms_per_mib).toFixed(2)
    table.push(
      `| ${row.scenario} | ${(row.payload_bytes / MiB).toFixed(row.payload_bytes < MiB ? 2 : 0)} MiB | ${row.transport} | ${row.median_delivery_ms} | ${row.median_all_delivered_ms} | ${row.per_receiver_goodput_mb_per_s || '—'} | ${row.aggregate_goodput_mb_per_s} | ${goodput} | ${row.cpu_ms_per_mib ?? '—'} | ${row.sender_cpu_ms_per_mib === undefined ? '—' : `${row.sender_cpu_ms_per_mib} / ${row.receiver_cpu_ms_per_mib}`} | ${cpuRatio} |`,
    )
  }
  console.log(table.join('\n'))
  const machine = {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model,
    memory_bytes: totalmem(),
    node: process.version,
    load_average_at_start: loadAtStart,
    load_average: loadavg(),
  }
  console.log(`\nmachine: ${JSON.stringify(machine)}`)
  const profiles = profile
    ? configs.flatMap((config) =>
        summariseProfile(join(profileDir, profileName(config))).map((p) => ({
          ...p,
          file: `${profileName(config)}/${p.file}`,
        })),
      )
    : []
  for (const p of profiles) console.log(`\nprofile ${p.file} (${p.busy_ms} ms busy)\n${p.top.join('\n')}`)
  writeResults('net', { date: new Date().toISOString(), machine, quick, configs, rows, profiles })
}

if (process.argv.includes('--tls-peer')) {
  void tlsPeer()
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
}
