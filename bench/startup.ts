/**
 * `npm run bench -- startup`: what a Phalanx process costs before it does any work, and what a
 * small cluster costs in all, with the one-file bundle (`packages/cli/dist/bin.js`) against the
 * same compiled code unbundled (`packages/cli/dist/main.js`, the anchor, measured in the same run),
 * and the MNIST pack against parsing the `mnist` package.
 *
 * CPU time, not wall time (the machine is shared): the user + system time of the whole process
 * tree, read as the growth of this program's `cutime + cstime` in /proc/self/stat (Linux), which
 * counts every descendant that was waited for (a `local` parent waits for its nodes; nodes
 * stopped by a signal never reach an exit handler, so they cannot report themselves). A
 * `--require` hook passed in NODE_OPTIONS counts the node processes started. Variants alternate, each measured REPS times; the
 * table quotes medians and the ratio to the anchor. Writes bench/results/startup.json.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { writeResults } from './results.js'

const REPS = 5
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

/** CPU seconds of every waited-for descendant of this process so far (cutime + cstime). */
function descendantsCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  // Fields after the command name (which may hold spaces) start at the state, field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[16 - 3]) + Number(fields[17 - 3])) / USER_HZ
}

/** Runs `args` under node; returns the CPU seconds of it and every node process it started. */
function cpuOf(args: string[]): { cpuSeconds: number; processes: number } {
  const dir = mkdtempSync(join(work, 'cpu-'))
  const before = descendantsCpuSeconds()
  const run = spawnSync(process.execPath, args, {
    env: { ...process.env, NODE_OPTIONS: `--require ${hook}`, BENCH_CPU_DIR: dir, PHALANX_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  const cpuSeconds = descendantsCpuSeconds() - before
  if (run.status !== 0)
    throw new Error(`${args.join(' ')} exited ${run.status}: ${run.stderr.toString().slice(-2000)}`)
  const processes = readdirSync(dir).length
  rmSync(dir, { recursive: true })
  return { cpuSeconds, processes }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

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
  { name: 'load MNIST from the pack', anchor: 'load MNIST from the mnist package', args: mnistLoad('pack') },
  { name: 'load MNIST from the mnist package', args: mnistLoad('package') },
]

const samples = new Map<string, number[]>()
let processes = new Map<string, number>()
for (let rep = 0; rep < REPS; rep++) {
  for (const { name, args } of measurements) {
    const { cpuSeconds, processes: count } = cpuOf([...args])
    samples.set(name, [...(samples.get(name) ?? []), cpuSeconds])
    processes = processes.set(name, count)
  }
}
rmSync(work, { recursive: true, force: true })

const rows = measurements.map((m) => {
  const cpu = median(samples.get(m.name)!)
  const anchor = m.anchor === undefined ? undefined : median(samples.get(m.anchor)!)
  return {
    measurement: m.name,
    processes: processes.get(m.name)!,
    medianCpuSeconds: Number(cpu.toFixed(3)),
    anchor: m.anchor,
    ratioToAnchor: anchor === undefined ? undefined : Number((cpu / anchor).toFixed(3)),
    samples: samples.get(m.name)!.map((s) => Number(s.toFixed(3))),
  }
})
console.log('| measurement | processes | median CPU s | ratio to anchor |')
console.log('|---|---|---|---|')
for (const row of rows)
  console.log(
    `| ${row.measurement} | ${row.processes} | ${row.medianCpuSeconds.toFixed(2)} | ${row.ratioToAnchor === undefined ? 'anchor' : `${row.ratioToAnchor.toFixed(2)}×`} |`,
  )
writeResults('startup', {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, model: cpus()[0]?.model, loadavg: loadavg() },
  node: process.version,
  reps: REPS,
  rows,
})
