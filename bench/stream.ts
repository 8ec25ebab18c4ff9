/**
 * `npm run bench -- stream [--mib=256] [--reps=3] [--frames=262076]`: one large stream between two processes, per
 * transport stack, and what it costs: libp2p 2.9 over TCP with each connection encrypter the data
 * plane offers (`tls`, `noise`; Yamux with the data plane's settings), QUIC
 * (`@chainsafe/libp2p-quic`, when installed: `npm install --no-save @chainsafe/libp2p-quic@1.1.8`),
 * and the floor, plain `node:tls` (TLS 1.3) sockets, in the same run.
 *
 * A repetition starts a fresh receiver and sender process, connects them (the handshake is not
 * timed), then times the sender writing `--mib` MiB in 1 MiB chunks until the receiver has read
 * them all and answered one byte. CPU = user + system of each process over that transfer
 * (`process.cpuUsage`, every thread: QUIC's own included), reported per MiB for the sender and the
 * receiver, and what connecting and opening the stream cost both ends; unlike the wall time it does not depend on how loaded the shared host is. Transports
 * alternate within each repetition (the order reversed every other one); the table quotes
 * medians and each transport's ratio to the floor. Writes bench/results/stream.json.
 *
 * This file is also each peer: `node --import tsx bench/stream.ts --peer <transport> <role> …`.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { connect, createServer } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { netDefaults } from '@phalanx/net'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import { writeResults } from './results.js'

const MiB = 1024 * 1024
const thisFile = fileURLToPath(import.meta.url)
const protocol = '/phalanx-bench/stream/1.0.0'
const quicPackage = '@chainsafe/libp2p-quic'

/** `libp2p/tls+f262076`: the same stack with Yamux frames of that many bytes (`--frames`). */
type Transport =
  | 'libp2p/tls'
  | 'libp2p/noise'
  | 'libp2p/quic'
  | 'node:tls'
  | `libp2p/${'tls' | 'noise'}+f${number}`

const argValue = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1]
const cpuNow = () => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}
const out = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`)

// ───────────────────────────── peers (child mode) ─────────────────────────────

/** One Noise frame's plaintext: the Yamux frame size the data plane runs (`packages/net/src/node/libp2p.ts`). */
const dataPlaneFrameBytes = 65_535 - 16

/** Yamux as the data plane runs it, with frames of `frameBytes`. */
function dataPlaneYamux(frameBytes: number) {
  return yamux({
    maxStreamWindowSize: netDefaults.yamuxMaxStreamWindowBytes,
    initialStreamWindowSize: Math.min(netDefaults.yamuxMaxStreamWindowBytes, 4 * MiB),
    maxMessageSize: frameBytes,
  })
}

async function libp2pPeer(
  transport: Transport,
  role: string,
  total: number,
  address?: string,
): Promise<void> {
  const [stack, frame] = transport.split('+f') as [Transport, string | undefined]
  const options: Libp2pOptions =
    stack === 'libp2p/quic'
      ? {
          addresses: { listen: ['/ip4/127.0.0.1/udp/0/quic-v1'] },
          transports: [((await import(quicPackage)) as { quic: () => never }).quic()],
        }
      : {
          addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
          transports: [tcp()],
          connectionEncrypters: [stack === 'libp2p/tls' ? tls() : noise()],
          streamMuxers: [dataPlaneYamux(frame === undefined ? dataPlaneFrameBytes : Number(frame))],
        }
  const node = await createLibp2p({ ...options, connectionMonitor: { enabled: false } })
  if (role === 'receiver') {
    let idle = 0
    await node.handle(protocol, ({ stream }) => {
      void (async () => {
        const c0 = cpuNow()
        // From listening to the stream: the handshake, the muxer and the protocol negotiation.
        const connectCpuUs = c0 - idle
        let got = 0
        for await (const chunk of stream.source) {
          got += chunk.byteLength
          if (got >= total) break
        }
        const cpuUs = cpuNow() - c0
        await stream.sink([new Uint8Array([1])])
        out({ event: 'received', bytes: got, cpuUs, connectCpuUs })
      })()
    })
    idle = cpuNow()
    out({ event: 'listening', address: node.getMultiaddrs()[0]!.toString() })
    return
  }
  const connectStart = cpuNow()
  const connection = await node.dial(multiaddr(address!))
  const stream = await connection.newStream(protocol)
  const connectCpuUs = cpuNow() - connectStart
  const chunk = new Uint8Array(MiB).fill(7)
  const t0 = performance.now()
  const c0 = cpuNow()
  const ack = (async () => {
    for await (const _ of stream.source) return
  })()
  await stream.sink(
    (async function* () {
      for (let sent = 0; sent < total; sent += chunk.byteLength) yield chunk
    })(),
  )
  await ack
  out({ event: 'sent', ms: performance.now() - t0, cpuUs: cpuNow() - c0, connectCpuUs })
}

async function tlsPeer(role: string, total: number, cert: string, key: string, port?: string): Promise<void> {
  if (role === 'receiver') {
    let idle = 0
    const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (socket) => {
      const c0 = cpuNow()
      const connectCpuUs = c0 - idle
      let got = 0
      socket.on('data', (data: Buffer) => {
        got += data.byteLength
        if (got < total) return
        const cpuUs = cpuNow() - c0
        socket.write(Buffer.of(1))
        out({ event: 'received', bytes: got, cpuUs, connectCpuUs })
      })
    })
    server.listen(0, '127.0.0.1', () => {
      idle = cpuNow()
      out({ event: 'listening', address: String((server.address() as { port: number }).port) })
    })
    return
  }
  const connectStart = cpuNow()
  const socket = connect({
    host: '127.0.0.1',
    port: Number(port),
    ca: readFileSync(cert),
    servername: 'localhost',
  })
  await new Promise<void>((resolve) => socket.once('secureConnect', () => resolve()))
  const connectCpuUs = cpuNow() - connectStart
  const chunk = Buffer.alloc(MiB, 7)
  const t0 = performance.now()
  const c0 = cpuNow()
  const ack = new Promise<void>((resolve) => socket.once('data', () => resolve()))
  for (let sent = 0; sent < total; sent += chunk.byteLength) {
    if (!socket.write(chunk)) await new Promise<void>((resolve) => socket.once('drain', () => resolve()))
  }
  await ack
  out({ event: 'sent', ms: performance.now() - t0, cpuUs: cpuNow() - c0, connectCpuUs })
}

// ───────────────────────────── measurement ─────────────────────────────

type PeerLine = { event: string } & Record<string, unknown>

/** One peer process and the lines it prints. */
function spawnPeer(args: string[]): { next(event: string): Promise<PeerLine>; kill(): void } {
  const child = spawn(process.execPath, ['--import', 'tsx', thisFile, '--peer', ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const lines: PeerLine[] = []
  const waiters: Array<() => void> = []
  createInterface({ input: child.stdout }).on('line', (line) => {
    lines.push(JSON.parse(line) as PeerLine)
    for (const waiter of waiters.splice(0)) waiter()
  })
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`peer ${args.join(' ')} exited (${code})`))),
  )
  return {
    async next(event) {
      for (;;) {
        const found = lines.find((line) => line.event === event)
        if (found !== undefined) return found
        await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), exited])
      }
    },
    kill: () => child.kill('SIGKILL'),
  }
}

interface Sample {
  ms: number
  senderCpuUs: number
  receiverCpuUs: number
  /** CPU of both ends to connect and open the stream (not timed with the transfer). */
  connectCpuUs: number
}

async function measure(transport: Transport, total: number, cert: string, key: string): Promise<Sample> {
  const extra = transport === 'node:tls' ? [cert, key] : []
  const receiver = spawnPeer([transport, 'receiver', String(total), ...extra])
  let sender: ReturnType<typeof spawnPeer> | undefined
  try {
    const { address } = await receiver.next('listening')
    sender = spawnPeer([transport, 'sender', String(total), ...extra, String(address)])
    const sent = await sender.next('sent')
    const received = await receiver.next('received')
    if (received.bytes !== total) throw new Error(`${transport}: ${received.bytes} of ${total} bytes arrived`)
    return {
      ms: sent.ms as number,
      senderCpuUs: sent.cpuUs as number,
      receiverCpuUs: received.cpuUs as number,
      connectCpuUs: (sent.connectCpuUs as number) + (received.connectCpuUs as number),
    }
  } finally {
    sender?.kill()
    receiver.kill()
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

async function quicInstalled(): Promise<boolean> {
  try {
    await import(quicPackage)
    return true
  } catch {
    return false
  }
}

async function main(): Promise<void> {
  const total = Number(argValue('mib') ?? 256) * MiB
  const reps = Number(argValue('reps') ?? 3)
  const work = mkdtempSync(join(tmpdir(), 'phalanx-bench-stream-'))
  const cert = join(work, 'cert.pem')
  const key = join(work, 'key.pem')
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
      ...['-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost'],
    ],
    { stdio: 'ignore' },
  )
  const transports: Transport[] = ['node:tls', 'libp2p/tls', 'libp2p/noise']
  // Other Yamux frame sizes to compare, e.g. `--frames=262076` (four Noise frames).
  for (const frame of argValue('frames')?.split(',').map(Number) ?? []) {
    transports.push(`libp2p/tls+f${frame}`, `libp2p/noise+f${frame}`)
  }
  if (await quicInstalled()) transports.push('libp2p/quic')
  else console.error(`${quicPackage} is not installed: QUIC left out`)
  const samples = new Map<Transport, Sample[]>(transports.map((t) => [t, []]))
  const loadBefore = loadavg()
  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const transport of rep % 2 === 0 ? transports : [...transports].reverse()) {
        const sample = await measure(transport, total, cert, key)
        samples.get(transport)!.push(sample)
        console.error(
          `rep ${rep} ${transport}: ${sample.ms.toFixed(0)} ms, cpu ${(sample.senderCpuUs / 1000).toFixed(0)} + ${(sample.receiverCpuUs / 1000).toFixed(0)} ms`,
        )
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  const mib = total / MiB
  const rows = transports.map((transport) => {
    const s = samples.get(transport)!
    const ms = median(s.map((x) => x.ms))
    return {
      transport,
      bytes: total,
      reps: s.length,
      median_ms: Number(ms.toFixed(1)),
      goodput_mb_per_s: Number((total / 1e6 / (ms / 1000)).toFixed(1)),
      sender_cpu_ms_per_mib: Number((median(s.map((x) => x.senderCpuUs)) / 1000 / mib).toFixed(2)),
      receiver_cpu_ms_per_mib: Number((median(s.map((x) => x.receiverCpuUs)) / 1000 / mib).toFixed(2)),
      cpu_ms_per_mib: Number((median(s.map((x) => x.senderCpuUs + x.receiverCpuUs)) / 1000 / mib).toFixed(2)),
      connect_cpu_ms: Number((median(s.map((x) => x.connectCpuUs)) / 1000).toFixed(1)),
    }
  })
  const floor = rows.find((row) => row.transport === 'node:tls')!
  const table = [
    '| transport | MB/s | sender CPU ms/MiB | receiver CPU ms/MiB | CPU ms/MiB (both) | ÷ node:tls CPU | ÷ node:tls goodput | connect CPU ms (both) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.transport} | ${row.goodput_mb_per_s} | ${row.sender_cpu_ms_per_mib} | ${row.receiver_cpu_ms_per_mib} | ${row.cpu_ms_per_mib} | ${(row.cpu_ms_per_mib / floor.cpu_ms_per_mib).toFixed(2)} | ${(row.goodput_mb_per_s / floor.goodput_mb_per_s).toFixed(2)} | ${row.connect_cpu_ms} |`,
    ),
  ]
  console.log(table.join('\n'))
  const machine = { cpus: cpus().length, cpu_model: cpus()[0]?.model, node: process.version }
  writeResults('stream', {
    date: new Date().toISOString(),
    machine,
    load: { before: loadBefore, after: loadavg() },
    mib,
    rows,
  })
}

if (process.argv.includes('--peer')) {
  const at = process.argv.indexOf('--peer')
  const [transport, role, total, ...rest] = process.argv.slice(at + 1) as [
    Transport,
    string,
    string,
    ...string[],
  ]
  const run =
    transport === 'node:tls'
      ? tlsPeer(role, Number(total), rest[0]!, rest[1]!, rest[2])
      : libp2pPeer(transport, role, Number(total), rest[0])
  run.then(
    () => undefined,
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error)
      process.exit(1)
    },
  )
}
