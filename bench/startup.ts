/**
 * `npm run bench -- startup [--part=cpu|ready|ratio] [--base=<checkout>] [--ratio-reps=3]`: what a Phalanx process
 * costs before it does any work, in three parts.
 *
 * - `cpu`: `--help` and a small cluster with the bundle (`packages/cli/dist/bin.js`) against the
 *   same compiled code unbundled (`packages/cli/dist/main.js`, the anchor, measured in the same
 *   run), and the MNIST pack against parsing the `mnist` package.
 * - `ready`: the CPU seconds a lone node of the default config has used when it reports
 *   `listening` (what `phalanx local` waits for before starting the next server) and when its
 *   start-up is over (see `nodeReady`), read from /proc/<pid>/stat: a Byzantine server, an honest
 *   server, a worker. With `--base=<checkout>` (another worktree,
 *   built) the same nodes of that checkout's bundle are the anchor, alternating with these.
 * - `ratio`: wall seconds of `phalanx local` with the default config (what `npm start` runs)
 *   against `phalanx simulate` on the same config, both whole processes, alternating.
 *
 * CPU time, not wall time (the machine is shared), except for the ratio the issue asks for in
 * wall time: for `cpu` and `ratio`, the user + system time of the whole process tree, read as the growth of this program's `cutime + cstime` in /proc/self/stat (Linux), which
 * counts every descendant that was waited for (a `local` parent waits for its nodes; nodes
 * stopped by a signal never reach an exit handler, so they cannot report themselves). A
 * `--require` hook passed in NODE_OPTIONS counts the node processes started. Variants alternate,
 * each measured REPS times (RATIO_REPS for `ratio`: a default local run takes minutes); the table
 * quotes medians and the ratio to the anchor. Writes bench/results/startup.json.
 */
import { fork, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeResults } from './results.js'

const option = (name: string): string | undefined =>
  process.argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
const REPS = 5
// A default local run takes minutes on two shared cores; `--ratio-reps` when there is less time.
const RATIO_REPS = Number(option('ratio-reps') ?? 3)
const parts = new Set((option('part') ?? 'cpu,ready,ratio').split(','))
const base = option('base')
const baseCli = base === undefined ? undefined : join(resolve(base), 'packages/cli/dist/bin.js')
if (baseCli !== undefined && !existsSync(baseCli)) throw new Error(`--base: no built CLI at ${baseCli}`)
const cliDir = fileURLToPath(new URL('../packages/cli/dist/', import.meta.url))
const modelData = fileURLToPath(new URL('../packages/model/dist/data/mnist.js', import.meta.url))
const work = mkdtempSync(join(tmpdir(), 'phalanx-bench-startup-'))
const hook = join(work, 'cpu-hook.cjs')
writeFileSync(
  hook,
  "require('node:fs').writeFileSync(require('node:path').join(process.env.BENCH_CPU_DIR, process.pid + '.started'), '')\n",
)

/** Clock ticks per second of /proc's times: USER_HZ, 100 on every Linux of this decade. */
const USER_HZ = 100

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces), from field 3 on. */
function statFields(pid: number | 'self'): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/** CPU seconds of every waited-for descendant of this process so far (cutime + cstime). */
function descendantsCpuSeconds(): number {
  const fields = statFields('self')
  return (Number(fields[16 - 3]) + Number(fields[17 - 3])) / USER_HZ
}

/** CPU seconds a running process has used so far, all its threads (utime + stime). */
function processCpuSeconds(pid: number): number {
  const fields = statFields(pid)
  return (Number(fields[14 - 3]) + Number(fields[15 - 3])) / USER_HZ
}

/** Runs `args` under node; returns the CPU and wall seconds of it and every node process it started. */
function cpuOf(args: string[]): { cpuSeconds: number; wallSeconds: number; processes: number } {
  const dir = mkdtempSync(join(work, 'cpu-'))
  const before = descendantsCpuSeconds()
  const started = performance.now()
  const run = spawnSync(process.execPath, args, {
    env: { ...process.env, NODE_OPTIONS: `--require ${hook}`, BENCH_CPU_DIR: dir, PHALANX_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
  })
  const wallSeconds = (performance.now() - started) / 1000
  const cpuSeconds = descendantsCpuSeconds() - before
  if (run.status !== 0)
    throw new Error(`${args.join(' ')} exited ${run.status}: ${run.stderr.toString().slice(-2000)}`)
  const processes = readdirSync(dir).length
  rmSync(dir, { recursive: true })
  return { cpuSeconds, wallSeconds, processes }
}

/**
 * Starts one node of the default config alone (as `phalanx local` starts one: env config, IPC,
 * loopback, no ops port) and reads its CPU when it reports `listening` and once its start-up is
 * over: alone, a node never reports `started` (it waits for peers to subscribe first), so "over"
 * is when it has gone idle, past its 2.5 s join window, using under one clock tick in a second.
 * The same rule for both builds, whichever order they load things in. Then it is killed.
 */
function nodeReady(cli: string, nodeId: string): Promise<{ listening: number; idle: number }> {
  const role = nodeId.startsWith('server') ? 'server' : 'worker'
  return new Promise((resolvePromise, reject) => {
    const child = fork(cli, [role], {
      // Not this program's `--import tsx`: a node runs plain, as `phalanx local` starts it.
      execArgv: [],
      env: {
        ...process.env,
        PHALANX_NODE_ID: nodeId,
        PHALANX_LISTEN: '/ip4/127.0.0.1/tcp/0',
        PHALANX_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    })
    let stderr = ''
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    let poll: NodeJS.Timeout | undefined
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000)
    child.on('message', (message: { type?: string }) => {
      const pid = child.pid
      if (pid === undefined || message.type !== 'listening') return
      const listening = processCpuSeconds(pid)
      const since = performance.now()
      const readings: number[] = []
      poll = setInterval(() => {
        readings.push(processCpuSeconds(pid))
        const last = readings.at(-1)!
        // Four readings 250 ms apart: one second.
        const secondAgo = readings.at(-5)
        if (performance.now() - since < 3_000 || secondAgo === undefined || last - secondAgo > 1 / USER_HZ)
          return
        clearInterval(poll)
        clearTimeout(timer)
        child.kill('SIGKILL')
        resolvePromise({ listening, idle: last })
      }, 250)
    })
    child.on('exit', (code, signal) => {
      clearInterval(poll)
      clearTimeout(timer)
      reject(
        new Error(`${nodeId} (${cli}) exited (${code ?? signal}) before it was idle: ${stderr.slice(-2000)}`),
      )
    })
  })
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
const round3 = (value: number) => Number(value.toFixed(3))

const localCluster = (entry: string) => [
  join(cliDir, entry),
  'local',
  ...['--servers', '2', '--byzantine-servers', '0', '--workers', '3', '--byzantine-workers', '0'],
  ...['--rule', 'average', '--model', 'logistic', '--rounds', '5', '--eval-every', '5'],
  ...['--out', join(work, 'out')],
]
const mnistLoad = (how: 'pack' | 'package') => [
  '--input-type=module',
  '-e',
  how === 'pack'
    ? `const m = await import(${JSON.stringify(modelData)}); await m.loadEmbeddedMnist()`
    : `const m = await import(${JSON.stringify(modelData)}); await m.buildMnistFromPackage()`,
]

interface Measurement {
  readonly name: string
  /** The measurement this one is compared with, taken in the same run. */
  readonly anchor?: string
  readonly args: readonly string[]
}

interface Row {
  measurement: string
  processes?: number
  /** What was measured: CPU seconds, or wall seconds for the ratio part. */
  unit: 'cpu-s' | 'wall-s'
  median: number
  anchor: string | undefined
  ratioToAnchor: number | undefined
  samples: number[]
  /** The CPU seconds of the same runs, where the unit is wall time. */
  cpuSamples?: number[]
}

const rows: Row[] = []
const rowOf = (
  name: string,
  unit: Row['unit'],
  values: number[],
  anchor?: { name: string; values: number[] },
): Row => {
  const value = median(values)
  return {
    measurement: name,
    unit,
    median: round3(value),
    anchor: anchor?.name,
    ratioToAnchor: anchor === undefined ? undefined : round3(value / median(anchor.values)),
    samples: values.map(round3),
  }
}

if (parts.has('cpu')) {
  const measurements: readonly Measurement[] = [
    {
      name: 'phalanx --help, bundle',
      anchor: 'phalanx --help, unbundled',
      args: [join(cliDir, 'bin.js'), '--help'],
    },
    { name: 'phalanx --help, unbundled', args: [join(cliDir, 'main.js'), '--help'] },
    {
      name: 'local cluster (2 servers, 3 workers, 5 rounds), bundle',
      anchor: 'local cluster (2 servers, 3 workers, 5 rounds), unbundled',
      args: localCluster('bin.js'),
    },
    { name: 'local cluster (2 servers, 3 workers, 5 rounds), unbundled', args: localCluster('main.js') },
    {
      name: 'load MNIST from the pack',
      anchor: 'load MNIST from the mnist package',
      args: mnistLoad('pack'),
    },
    { name: 'load MNIST from the mnist package', args: mnistLoad('package') },
  ]
  const samples = new Map<string, number[]>()
  const processes = new Map<string, number>()
  for (let rep = 0; rep < REPS; rep++) {
    for (const { name, args } of measurements) {
      const { cpuSeconds, processes: count } = cpuOf([...args])
      samples.set(name, [...(samples.get(name) ?? []), cpuSeconds])
      processes.set(name, count)
    }
  }
  for (const m of measurements) {
    const anchor = m.anchor === undefined ? undefined : { name: m.anchor, values: samples.get(m.anchor)! }
    rows.push({ ...rowOf(m.name, 'cpu-s', samples.get(m.name)!, anchor), processes: processes.get(m.name)! })
  }
}

if (parts.has('ready')) {
  // server-0 and worker-0/1 are the default config's Byzantine slots (F = 1, f = 2).
  const nodes = [
    ['server-0', 'Byzantine server'],
    ['server-1', 'honest server'],
    ['worker-2', 'honest worker'],
  ] as const
  const builds = [
    { build: 'this build', cli: join(cliDir, 'bin.js') },
    ...(baseCli === undefined ? [] : [{ build: 'base', cli: baseCli }]),
  ]
  const samples = new Map<string, number[]>()
  const add = (key: string, value: number) => samples.set(key, [...(samples.get(key) ?? []), value])
  for (let rep = 0; rep < REPS; rep++) {
    for (const [nodeId] of nodes) {
      for (const { build, cli } of builds) {
        const { listening, idle } = await nodeReady(cli, nodeId)
        add(`${nodeId} ${build} listening`, listening)
        add(`${nodeId} ${build} idle`, idle)
      }
    }
  }
  for (const [nodeId, what] of nodes) {
    for (const at of ['listening', 'idle'] as const) {
      const until = at === 'listening' ? 'it reports `listening`' : 'its start-up is over (idle)'
      const name = (build: string) => `${what} (${nodeId}): CPU-s until ${until}, ${build}`
      const anchor =
        baseCli === undefined
          ? undefined
          : { name: name('base'), values: samples.get(`${nodeId} base ${at}`)! }
      rows.push(rowOf(name('this build'), 'cpu-s', samples.get(`${nodeId} this build ${at}`)!, anchor))
      if (anchor !== undefined) rows.push(rowOf(anchor.name, 'cpu-s', anchor.values))
    }
  }
}

if (parts.has('ratio')) {
  // The default config, as `npm start` runs it; simulate on the same config is the anchor.
  const runs = [
    { name: '`phalanx local` (default config, 16 nodes)', args: [join(cliDir, 'bin.js'), 'local'] },
    { name: '`phalanx simulate` (default config)', args: [join(cliDir, 'bin.js'), 'simulate'] },
  ]
  const wall = new Map<string, number[]>()
  const cpu = new Map<string, number[]>()
  for (let rep = 0; rep < RATIO_REPS; rep++) {
    for (const run of runs) {
      const out = mkdtempSync(join(work, 'ratio-'))
      const measured = cpuOf([...run.args, '--out', out])
      rmSync(out, { recursive: true, force: true })
      wall.set(run.name, [...(wall.get(run.name) ?? []), measured.wallSeconds])
      cpu.set(run.name, [...(cpu.get(run.name) ?? []), measured.cpuSeconds])
    }
  }
  const [local, simulate] = runs as [(typeof runs)[0], (typeof runs)[0]]
  rows.push({
    ...rowOf(local.name, 'wall-s', wall.get(local.name)!, {
      name: simulate.name,
      values: wall.get(simulate.name)!,
    }),
    cpuSamples: cpu.get(local.name)!.map(round3),
  })
  rows.push({
    ...rowOf(simulate.name, 'wall-s', wall.get(simulate.name)!),
    cpuSamples: cpu.get(simulate.name)!.map(round3),
  })
}
rmSync(work, { recursive: true, force: true })

console.log('| measurement | processes | median | ratio to anchor |')
console.log('|---|---|---|---|')
for (const row of rows)
  console.log(
    `| ${row.measurement} | ${row.processes ?? 1} | ${row.median.toFixed(2)} ${row.unit} | ${row.ratioToAnchor === undefined ? 'anchor' : `${row.ratioToAnchor.toFixed(2)}×`} |`,
  )
writeResults('startup', {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
  node: process.version,
  reps: REPS,
  ratioReps: RATIO_REPS,
  parts: [...parts],
  base: base ?? null,
  rows,
})
