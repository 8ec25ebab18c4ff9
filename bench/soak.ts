/**
 * `npm run soak [-- --rounds=2000 --flap-every=50 --quick]`: a long run of a real cluster under
 * two standing faults, for what only shows over thousands of rounds (memory that grows per round,
 * a node that rejoins later each time). One `phalanx server|worker` process per node (the chaos
 * suite's harness, test/chaos/cluster.ts: libp2p on loopback, its own nats-server), 4 servers
 * (F = 1) and 4 workers (f = 1), logistic regression on MNIST, coordinate-wise median:
 *
 * - `server-0` equivocates every round (each receiver gets its own signed model);
 * - honest `worker-1` flaps: SIGKILLed every `--flap-every` rounds and started again at once.
 *
 * Every `--sample-every` rounds it scrapes each node's `/metrics` (the Prometheus process and
 * Node.js metrics of packages/control/src/ops.ts) for RSS, V8 heap used and CPU seconds, and after
 * each flap it counts the rounds until the worker's gradient is in an honest server's quorum
 * again. Prints the memory over time, the growth after warm-up, the rounds to rejoin, and writes
 * bench/results/soak.json. Needs the built CLI (`npm run soak` builds first).
 *
 * Rounds to rejoin are counted from the honest servers' newest round when the restarted process
 * listens (its start-up, wasm and data loading, is wall time the cluster spends training, so it
 * is reported apart, as the round at which it listened) to the first round whose gradient quorum
 * of some honest server holds its gradient.
 */
import { cpus, loadavg } from 'node:os'
import { ChaosCluster } from '../test/chaos/cluster.js'
import { freePorts } from '../test/support/nats.js'
import { parsePrometheusText } from '../test/support/prometheus.js'
import { writeResults } from './results.js'

const arg = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
const quick = process.argv.includes('--quick')
const ROUNDS = Number(arg('rounds') ?? (quick ? 200 : 2_000))
const FLAP_EVERY = Number(arg('flap-every') ?? 50)
const SAMPLE_EVERY = Number(arg('sample-every') ?? 25)
/** Heap and RSS are compared from here on: start-up, JIT and the first caches are done by then. */
const WARM_UP_ROUNDS = Math.min(200, Math.floor(ROUNDS / 4))
for (const [name, value] of Object.entries({ ROUNDS, FLAP_EVERY, SAMPLE_EVERY })) {
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`${name} must be a positive integer, got ${value}`)
    process.exit(2)
  }
}

const SERVERS = ['server-0', 'server-1', 'server-2', 'server-3']
const HONEST_SERVERS = ['server-1', 'server-2', 'server-3']
const EQUIVOCATOR = 'server-0'
const FLAPPER = 'worker-1'
const WORKERS = ['worker-0', 'worker-1', 'worker-2', 'worker-3']

const loadAtStart = loadavg()
const startedAt = new Date()
const median = (values: number[]) => {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const MiB = 1024 * 1024

interface Sample {
  round: number
  seconds: number
  incarnation: number
  rssBytes: number
  heapUsedBytes: number
  cpuSeconds: number
}

interface Flap {
  flap: number
  killedAfterRound: number
  /** Honest servers' newest round when the restarted process listened. */
  listenedAtRound: number
  /** First round whose gradient quorum of an honest server held the restarted worker's gradient. */
  contributedAtRound: number | null
  roundsToRejoin: number | null
  /** Wall seconds from the kill to listening (process start-up). */
  startSeconds: number
}

const ports = await freePorts(SERVERS.length + WORKERS.length)
const opsPort = new Map([...SERVERS, ...WORKERS].map((id, i) => [id, ports[i]!]))
const cluster = await ChaosCluster.start({
  cluster: 'soak',
  servers: SERVERS.length,
  byzantineServers: 1,
  workers: WORKERS.length,
  byzantineWorkers: 1,
  lateWorkers: 0,
  seed: 1,
  env: {
    PHALANX_MODEL: 'logistic',
    PHALANX_DATASET: 'mnist',
    // n − f = 3 gradients per server: Krum needs n ≥ 2f + 3 of them, the median does not.
    PHALANX_RULE: 'median',
    PHALANX_ROUNDS: '100000000',
    PHALANX_EVAL_EVERY: '25',
    PHALANX_BYZANTINE_NODE_IDS: `${EQUIVOCATOR},worker-0`,
    PHALANX_SERVER_ATTACK: 'equivocation',
    // The Byzantine worker stays honest: the soak is about the equivocator and the flapping worker.
    PHALANX_WORKER_ATTACK: 'none',
    PHALANX_QUORUM_TIMEOUT_MS: '5000',
    PHALANX_LOG_LEVEL: 'warn',
    PHALANX_OPS_HOST: '127.0.0.1',
  },
  envOf: (nodeId) => ({ PHALANX_OPS_PORT: String(opsPort.get(nodeId)) }),
})

const newestHonest = () => Math.max(-1, ...HONEST_SERVERS.map((id) => cluster.latestRound(id)))
const samples = new Map<string, Sample[]>([...SERVERS, ...WORKERS].map((id) => [id, []]))
const flaps: Flap[] = []
const t0 = Date.now()

async function scrape(nodeId: string, round: number): Promise<void> {
  if (!cluster.running(nodeId)) return
  try {
    const response = await fetch(`http://127.0.0.1:${opsPort.get(nodeId)}/metrics`, {
      signal: AbortSignal.timeout(10_000),
    })
    const families = parsePrometheusText(await response.text())
    const value = (name: string) => families.get(name)?.samples[0]?.value ?? Number.NaN
    samples.get(nodeId)!.push({
      round,
      seconds: (Date.now() - t0) / 1000,
      incarnation: cluster.node(nodeId).incarnations.length,
      rssBytes: value('process_resident_memory_bytes'),
      heapUsedBytes: value('nodejs_heap_size_used_bytes'),
      cpuSeconds: value('process_cpu_seconds_total'),
    })
  } catch {
    // A node just killed or not yet listening on its ops port: the next sample will have it.
  }
}

/** The first round ≥ `from` in which an honest server aggregated `nodeId`'s gradient. */
function contributedAt(nodeId: string, from: number): number | undefined {
  const peer = cluster.node(nodeId).peerId
  let first: number | undefined
  for (const id of HONEST_SERVERS) {
    for (const incarnation of cluster.node(id).incarnations) {
      for (const r of incarnation.rounds) {
        if (r.round >= from && r.gradientSenders?.includes(peer) && (first === undefined || r.round < first))
          first = r.round
      }
    }
  }
  return first
}

async function flap(index: number): Promise<void> {
  const killedAfterRound = newestHonest()
  const killedAt = Date.now()
  await cluster.signal(FLAPPER, 'SIGKILL')
  await cluster.startNode(FLAPPER)
  const listenedAtRound = newestHonest()
  const startSeconds = (Date.now() - killedAt) / 1000
  let contributed: number | null = null
  try {
    await cluster.until(`${FLAPPER} contributes again after flap ${index}`, () => {
      return contributedAt(FLAPPER, listenedAtRound + 1) !== undefined
    })
    contributed = contributedAt(FLAPPER, listenedAtRound + 1)!
  } catch (error) {
    console.error(`flap ${index}: ${(error as Error).message}`)
  }
  const entry: Flap = {
    flap: index,
    killedAfterRound,
    listenedAtRound,
    contributedAtRound: contributed,
    roundsToRejoin: contributed === null ? null : contributed - listenedAtRound,
    startSeconds,
  }
  flaps.push(entry)
  console.log(
    `flap ${index}: killed after round ${killedAfterRound}, listening at ${listenedAtRound} (${startSeconds.toFixed(1)} s), gradient aggregated again at ${contributed ?? 'never'} → ${entry.roundsToRejoin ?? '—'} rounds`,
  )
}

let failure: unknown
try {
  let nextSample = 0
  let nextFlap = FLAP_EVERY
  while (newestHonest() < ROUNDS) {
    const target = Math.min(nextSample, nextFlap, ROUNDS)
    await cluster.untilRound(HONEST_SERVERS, target, 300_000)
    const round = newestHonest()
    if (round >= nextSample) {
      await Promise.all([...SERVERS, ...WORKERS].map((id) => scrape(id, round)))
      // The next multiple of the interval: a flap's wait (tens of rounds) skips those it spanned.
      nextSample = (Math.floor(newestHonest() / SAMPLE_EVERY) + 1) * SAMPLE_EVERY
    }
    if (round >= nextFlap && round < ROUNDS) {
      await flap(flaps.length + 1)
      // Fifty rounds of uptime between flaps, counted from the round it contributed again.
      nextFlap = newestHonest() + FLAP_EVERY
    }
  }
  const round = newestHonest()
  await Promise.all([...SERVERS, ...WORKERS].map((id) => scrape(id, round)))
} catch (error) {
  failure = error
  console.error(`soak stopped early: ${(error as Error).message}`)
} finally {
  const work = cluster.work
  await cluster.dispose({ keepLogs: failure !== undefined })
  if (failure !== undefined) console.error(`node logs kept in ${work}`)
}
const wallSeconds = (Date.now() - t0) / 1000
const lastRound = newestHonest()

// Memory after warm-up, of each node's last incarnation: the medians of its first and last
// fifth of samples, and the slope of a least-squares line through them, MiB per 1,000 rounds.
function slopePer1000(points: Array<[number, number]>): number {
  if (points.length < 2) return Number.NaN
  const mx = points.reduce((s, [x]) => s + x, 0) / points.length
  const my = points.reduce((s, [, y]) => s + y, 0) / points.length
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0)
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0)
  return sxx === 0 ? Number.NaN : (1000 * sxy) / sxx
}
const memory = Object.fromEntries(
  [...samples].map(([id, all]) => {
    const lastIncarnation = Math.max(0, ...all.map((s) => s.incarnation))
    const own = all.filter((s) => s.incarnation === lastIncarnation)
    const warm = own.filter((s) => s.round >= WARM_UP_ROUNDS)
    const first = warm[0]
    const last = warm.at(-1)
    const cpuRounds = first && last && last.round > first.round ? last.round - first.round : 0
    // One sample lands anywhere in a GC cycle: the medians of the first and the last fifth.
    const fifth = Math.max(1, Math.floor(warm.length / 5))
    const mib = (part: Sample[], key: 'heapUsedBytes' | 'rssBytes') => median(part.map((x) => x[key] / MiB))
    return [
      id,
      {
        incarnations: cluster.node(id).incarnations.length,
        fromRound: first?.round ?? null,
        toRound: last?.round ?? null,
        heapUsedMiB:
          warm.length > 0
            ? [mib(warm.slice(0, fifth), 'heapUsedBytes'), mib(warm.slice(-fifth), 'heapUsedBytes')]
            : null,
        rssMiB:
          warm.length > 0
            ? [mib(warm.slice(0, fifth), 'rssBytes'), mib(warm.slice(-fifth), 'rssBytes')]
            : null,
        heapSlopeMiBPer1000Rounds: slopePer1000(warm.map((s) => [s.round, s.heapUsedBytes / MiB])),
        rssSlopeMiBPer1000Rounds: slopePer1000(warm.map((s) => [s.round, s.rssBytes / MiB])),
        cpuMsPerRound: cpuRounds > 0 ? (1000 * (last!.cpuSeconds - first!.cpuSeconds)) / cpuRounds : null,
      },
    ]
  }),
)

// How often the equivocator's (first) model still reached an honest server's round.
const equivocatorPeer = cluster.node(EQUIVOCATOR).peerId
const honestReports = HONEST_SERVERS.flatMap((id) => cluster.node(id).incarnations.flatMap((i) => i.rounds))
const equivocatorRounds = new Set(
  honestReports.filter((r) => r.modelDistances?.[equivocatorPeer] !== undefined).map((r) => r.round),
)
const honestRounds = new Set(honestReports.map((r) => r.round))
const equivocations = Math.max(
  0,
  ...HONEST_SERVERS.map((id) => cluster.current(id)?.rounds.at(-1)?.rejectedSinceStart.equivocation ?? 0),
)
const roundSeconds = honestReports.map((r) => r.roundDurationSeconds)
// CPU time is what a node would need of a machine of its own, whatever else shares this one.
const cpuMsPerRound = (ids: string[]) =>
  1000 *
  median(ids.flatMap((id) => cluster.node(id).incarnations.flatMap((i) => i.rounds.map((r) => r.cpuSeconds))))
const rejoin = flaps.map((f) => f.roundsToRejoin).filter((r): r is number => r !== null)
const lastAccuracy = honestReports.filter((r) => r.accuracy !== undefined).at(-1)?.accuracy ?? null

// Memory over time: one row every tenth of the run, MiB of heap used / RSS per node.
const nodes = [...SERVERS, ...WORKERS]
const rowEvery = Math.max(SAMPLE_EVERY, Math.ceil(ROUNDS / 10 / SAMPLE_EVERY) * SAMPLE_EVERY)
const overTime: string[] = [`| round | ${nodes.join(' | ')} |`, `|---|${nodes.map(() => '---').join('|')}|`]
for (let round = 0; round <= lastRound; round += rowEvery) {
  const cells = nodes.map((id) => {
    const s = samples.get(id)!.find((x) => x.round >= round && x.round < round + rowEvery)
    return s === undefined ? '—' : `${(s.heapUsedBytes / MiB).toFixed(0)} / ${(s.rssBytes / MiB).toFixed(0)}`
  })
  overTime.push(`| ${round} | ${cells.join(' | ')} |`)
}
const fmt = (v: number | null | undefined, digits = 1) =>
  v === null || v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits)
const growth: string[] = [
  '| node | incarnations | rounds | heap used MiB (first → last fifth, medians) | heap MiB / 1000 rounds | RSS MiB (first → last fifth) | RSS MiB / 1000 rounds | CPU ms / round |',
  '|---|---|---|---|---|---|---|---|',
  ...nodes.map((id) => {
    const m = memory[id]!
    return `| ${id}${id === EQUIVOCATOR ? ' (equivocates)' : id === FLAPPER ? ' (flaps; last life)' : ''} | ${m.incarnations} | ${m.fromRound ?? '—'}→${m.toRound ?? '—'} | ${m.heapUsedMiB ? `${fmt(m.heapUsedMiB[0])} → ${fmt(m.heapUsedMiB[1])}` : '—'} | ${fmt(m.heapSlopeMiBPer1000Rounds, 2)} | ${m.rssMiB ? `${fmt(m.rssMiB[0])} → ${fmt(m.rssMiB[1])}` : '—'} | ${fmt(m.rssSlopeMiBPer1000Rounds, 2)} | ${fmt(m.cpuMsPerRound)} |`
  }),
]

console.log(
  `\nsoak: ${lastRound} rounds in ${wallSeconds.toFixed(0)} s wall, median round ${fmt(median(roundSeconds), 3)} s; median CPU per round: honest server ${fmt(cpuMsPerRound(HONEST_SERVERS))} ms, honest worker ${fmt(cpuMsPerRound(['worker-2', 'worker-3']))} ms`,
)
console.log(`\nheap used / RSS over time (MiB, one sample per row)\n${overTime.join('\n')}`)
console.log(`\nmemory after warm-up (round ≥ ${WARM_UP_ROUNDS})\n${growth.join('\n')}`)
console.log(
  `\nrounds to rejoin after each of ${flaps.length} flaps of ${FLAPPER}: median ${fmt(median(rejoin), 0)}, max ${rejoin.length ? Math.max(...rejoin) : '—'}, never ${flaps.length - rejoin.length}; process start-up median ${fmt(median(flaps.map((f) => f.startSeconds)))} s`,
)
console.log(
  `${EQUIVOCATOR}'s model reached an honest server in ${equivocatorRounds.size} of ${honestRounds.size} rounds; ${equivocations} equivocations counted by one honest server; last honest accuracy ${fmt(lastAccuracy, 4)}`,
)

writeResults('soak', {
  startedAt: startedAt.toISOString(),
  finishedAt: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadAtStart, loadAtEnd: loadavg() },
  settings: {
    rounds: ROUNDS,
    flapEvery: FLAP_EVERY,
    sampleEvery: SAMPLE_EVERY,
    warmUpRounds: WARM_UP_ROUNDS,
  },
  shape: { servers: SERVERS, workers: WORKERS, equivocator: EQUIVOCATOR, flapper: FLAPPER },
  completed: failure === undefined,
  error: failure === undefined ? null : String((failure as Error).message ?? failure),
  lastRound,
  wallSeconds,
  medianRoundSeconds: median(roundSeconds),
  medianCpuMsPerRound: {
    honestServer: cpuMsPerRound(HONEST_SERVERS),
    honestWorker: cpuMsPerRound(['worker-2', 'worker-3']),
  },
  lastHonestAccuracy: lastAccuracy,
  flaps,
  rejoin: {
    median: median(rejoin),
    max: rejoin.length ? Math.max(...rejoin) : null,
    never: flaps.length - rejoin.length,
  },
  equivocator: { roundsReceived: equivocatorRounds.size, honestRounds: honestRounds.size, equivocations },
  memory,
  samples: Object.fromEntries(samples),
})
process.exit(failure === undefined ? 0 : 1)
