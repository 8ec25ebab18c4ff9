/**
 * `npm run bench -- aggregation`: every rule of @phalanx/aggregation on n = 32, d = 10⁶, f = 7
 * against the fastest PyTorch formulation of the same rule (bench/torch_reference.py, Debian's
 * /usr/bin/python3 with torch, two threads), in the same run; then how Krum and the median grow
 * with n and d. Prints markdown tables and writes bench/results/aggregation.json.
 *
 * Times are medians of several repetitions after one warm-up. The floor is the time to read the
 * n·d input floats once (a plain sum, four accumulators so it is bound by memory, not by the
 * latency of one add chain), measured in the same process just before each table.
 *
 * Flags: --quick (fewer repetitions, growth up to d = 10⁶ only), --no-torch.
 *
 * The anchor needs `apt-get install python3-torch libopenblas0-pthread`: without OpenBLAS,
 * Debian's torch multiplies on netlib's reference BLAS and its Gram-based Krum is 4–27× slower
 * than it can be on this machine (the run says which BLAS it used, and warns).
 */
import { spawnSync } from 'node:child_process'
import { cpus, loadavg } from 'node:os'
import {
  arc,
  average,
  bucketing,
  bulyan,
  centeredClipping,
  clip,
  createRandom,
  geometricMedian,
  kernelBackend,
  krum,
  mda,
  meamed,
  median,
  multiKrum,
  nnm,
  setKernelBackend,
  trimmedMean,
} from '@phalanx/aggregation'
import { createParallel } from '@phalanx/aggregation/parallel'
import { writeResults } from './results.js'

const quick = process.argv.includes('--quick')
const withTorch = !process.argv.includes('--no-torch')
const reps = quick ? 3 : 5
const torchScript = new URL('./torch_reference.py', import.meta.url).pathname

type Inputs = Float32Array[]

function gaussianInputs(n: number, d: number, seed: number): Inputs {
  const random = createRandom(seed)
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, () => random.normal()))
}

/** Uniform with unit variance: same speed profile as Gaussian for these kernels, 4× faster to draw. */
function uniformInputs(n: number, d: number, seed: number): Inputs {
  const random = createRandom(seed)
  const scale = 2 * Math.sqrt(3)
  return Array.from({ length: n }, () =>
    Float32Array.from({ length: d }, () => (random.next() - 0.5) * scale),
  )
}

function medianOf(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Median wall time (ms) of `count` runs after one warm-up; one run only when a call takes > 2 s. */
function time(fn: () => unknown, count = reps): number {
  const warm = performance.now()
  fn()
  const warmMs = performance.now() - warm
  const runs = warmMs > 2000 ? 1 : count
  const samples: number[] = []
  for (let r = 0; r < runs; r++) {
    const start = performance.now()
    fn()
    samples.push(performance.now() - start)
  }
  return medianOf(samples)
}

async function timeAsync(fn: () => Promise<unknown>, count = reps): Promise<number> {
  await fn()
  const samples: number[] = []
  for (let r = 0; r < count; r++) {
    const start = performance.now()
    await fn()
    samples.push(performance.now() - start)
  }
  return medianOf(samples)
}

function floorMs(inputs: Inputs): number {
  let sink = 0
  const ms = time(() => {
    let a = 0
    let b = 0
    let c = 0
    let e = 0
    for (const x of inputs) {
      const end = x.length - (x.length % 4)
      for (let k = 0; k < end; k += 4) {
        a += x[k]!
        b += x[k + 1]!
        c += x[k + 2]!
        e += x[k + 3]!
      }
      for (let k = end; k < x.length; k++) a += x[k]!
    }
    sink += a + b + c + e
  })
  if (sink === Number.POSITIVE_INFINITY) console.log('(floor sink overflowed)')
  return ms
}

/**
 * A second floor: native memcpy of the n·d floats into one preallocated buffer (read once,
 * written once, no JS arithmetic). The JS sum is bound by scalar adds, this one by memory.
 */
function copyFloorMs(inputs: Inputs): number {
  const target = new Float32Array(inputs.reduce((sum, x) => sum + x.length, 0))
  return time(() => {
    let offset = 0
    for (const x of inputs) {
      target.set(x, offset)
      offset += x.length
    }
  })
}

interface TorchResult {
  torch: string
  threads: number
  /** Shared libraries with "blas" in their path that the PyTorch process loaded. */
  blas: string[]
  floor_ms: number
  rules: Record<string, { ms: number; formulation: string; variants: Record<string, number> }>
}

function runTorch(
  n: number,
  d: number,
  f: number,
  rules: string[],
  torchReps: number,
  variants: readonly string[] = [],
): TorchResult | undefined {
  if (!withTorch) return undefined
  const run = spawnSync(
    '/usr/bin/python3',
    [
      torchScript,
      '--n',
      `${n}`,
      '--d',
      `${d}`,
      '--f',
      `${f}`,
      '--reps',
      `${torchReps}`,
      '--rules',
      rules.join(','),
      ...(variants.length > 0 ? ['--variants', variants.join(',')] : []),
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  )
  if (run.status !== 0) {
    console.log(`PyTorch reference failed (n=${n}, d=${d}): ${run.stderr.trim().split('\n').pop()}`)
    return undefined
  }
  return JSON.parse(run.stdout) as TorchResult
}

const fmt = (ms: number | undefined): string =>
  ms === undefined ? '—' : ms < 10 ? ms.toFixed(2) : ms.toFixed(1)
/** The rules issue 2 sets a speed target for (`targets` below). */
const targetRules = ['krum', 'multiKrum', 'bulyan', 'median', 'trimmedMean', 'meamed'] as const
type TargetRule = (typeof targetRules)[number]
const isTargetRule = (rule: string): rule is TargetRule => (targetRules as readonly string[]).includes(rule)

const ratio = (ours: number, theirs: number | undefined): string =>
  theirs === undefined ? '—' : `${(theirs / ours).toFixed(1)}×`

async function main(): Promise<void> {
  const n = 32
  const d = 1_000_000
  const f = 7
  const machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernels: kernelBackend(),
  }
  const loadAtStart = loadavg()[0]!
  console.log(
    `machine: ${machine.cpus} × ${machine.cpuModel}, node ${machine.node}, kernels ${machine.kernels}, ` +
      `load average ${loadAtStart.toFixed(1)} (other jobs on the same cores inflate both sides' times)`,
  )
  console.log(`generating n=${n}, d=${d} Gaussian inputs (seed 1)…`)
  const inputs = gaussianInputs(n, d, 1)
  const floor = floorMs(inputs)
  const copyFloor = copyFloorMs(inputs)

  const rules: [string, () => unknown][] = [
    ['average', () => average(inputs)],
    ['median', () => median(inputs, { f })],
    ['trimmedMean', () => trimmedMean(inputs, { f })],
    ['meamed', () => meamed(inputs, { f })],
    ['krum', () => krum(inputs, { f })],
    ['multiKrum', () => multiKrum(inputs, { f })],
    ['bulyan', () => bulyan(inputs, { f })],
    ['geometricMedian', () => geometricMedian(inputs, { f })],
    ['centeredClipping', () => centeredClipping(inputs, { f, tau: 1 })],
    ['mda', () => mda(inputs, { f })],
    ['nnm', () => nnm(inputs, { f })],
    ['bucketing', () => bucketing(inputs, { bucketSize: 2, seed: 1 })],
    ['arc', () => arc(inputs, { f })],
    ['clip', () => clip(inputs, { maxNorm: 1 })],
  ]
  const ours: Record<string, number> = {}
  for (const [name, fn] of rules) {
    ours[name] = time(fn)
    console.log(`  ${name}: ${fmt(ours[name])} ms`)
  }

  console.log('PyTorch reference (same shape, torch.randn, 2 threads)…')
  const torch = runTorch(n, d, f, ['all'], 2)
  // The Gram anchor is 4–27× faster on OpenBLAS than on netlib's reference BLAS (Debian's torch
  // takes whichever libblas.so.3 the alternatives system points at), so say which one ran.
  const blas = torch?.blas.find((path) => /openblas|blis|mkl/i.test(path)) ?? torch?.blas[0] ?? 'unknown'
  if (torch !== undefined) {
    console.log(`PyTorch ${torch.torch}, ${torch.threads} threads, BLAS ${blas}`)
    if (!/openblas|blis|mkl/i.test(blas)) {
      console.log(
        'warning: PyTorch runs on the reference BLAS, a weak anchor for the Krum family; ' +
          'apt-get install libopenblas0-pthread for the fastest PyTorch this machine can run',
      )
    }
  }

  const targets: Record<TargetRule, number> = {
    krum: 1,
    multiKrum: 1,
    bulyan: 1,
    median: 2,
    trimmedMean: 2,
    meamed: 2,
  }
  const mainRows = rules.map(([name]) => {
    const theirs = torch?.rules[name]
    return {
      rule: name,
      ms: ours[name]!,
      torchMs: theirs?.ms,
      torchFormulation: theirs?.formulation,
      torchVariants: theirs?.variants,
      speedup: theirs ? theirs.ms / ours[name]! : undefined,
      floorMultiple: ours[name]! / floor,
      target: isTargetRule(name) ? targets[name] : undefined,
      meetsTarget: theirs && isTargetRule(name) ? theirs.ms / ours[name]! >= targets[name] : undefined,
    }
  })
  console.log(
    `\n### n=${n}, d=${d}, f=${f} (floor: read n·d floats once = ${fmt(floor)} ms as a JS sum, ` +
      `${fmt(copyFloor)} ms as a native copy; PyTorch x.sum() = ${fmt(torch?.floor_ms)} ms)\n`,
  )
  console.log(
    '| rule | Phalanx ms | PyTorch ms | PyTorch formulation | speed-up vs PyTorch | target | × floor |',
  )
  console.log('| --- | ---: | ---: | --- | ---: | ---: | ---: |')
  for (const row of mainRows) {
    const target =
      row.target === undefined
        ? ''
        : `≥ ${row.target}× ${row.meetsTarget === undefined ? '' : row.meetsTarget ? '✓' : '✗'}`
    console.log(
      `| ${row.rule} | ${fmt(row.ms)} | ${fmt(row.torchMs)} | ${row.torchFormulation ?? '—'} | ${ratio(row.ms, row.torchMs)} | ${target} | ${row.floorMultiple.toFixed(1)} |`,
    )
  }

  // Before/after: the same calls on the portable JS kernels, and the worker_threads variant of
  // every rule with a target (PyTorch runs on 2 threads, so that is the like-for-like column).
  console.log('\nkernel variants: portable JS vs WASM SIMD vs 2 worker threads…')
  setKernelBackend('js')
  const jsKernels: Partial<Record<TargetRule, number>> = {
    krum: time(() => krum(inputs, { f }), 1),
    median: time(() => median(inputs, { f }), 1),
    trimmedMean: time(() => trimmedMean(inputs, { f }), 1),
  }
  setKernelBackend('auto')
  const pool = createParallel({ threads: 2 })
  const shared = pool.shareInputs(inputs)
  const onPool = (rule: TargetRule, on: readonly Float32Array[]) => () => pool[rule](on, { f })
  const parallelMs: Partial<Record<TargetRule, number>> = {}
  const parallelSharedMs: Partial<Record<TargetRule, number>> = {}
  for (const rule of targetRules) parallelMs[rule] = await timeAsync(onPool(rule, inputs))
  for (const rule of targetRules) parallelSharedMs[rule] = await timeAsync(onPool(rule, shared))
  await pool.shutdown()
  const variants = targetRules.map((rule) => ({
    rule,
    jsMs: jsKernels[rule],
    wasmMs: ours[rule]!,
    parallelCopyMs: parallelMs[rule]!,
    parallelSharedMs: parallelSharedMs[rule]!,
    torchMs: torch?.rules[rule]?.ms,
  }))
  console.log(
    '\n| rule | portable JS ms | WASM SIMD ms (1 thread) | 2 threads, inputs copied to shared memory ms | 2 threads, inputs already shared ms | PyTorch ms (2 threads) | speed-up, 2 threads copied / shared | target |',
  )
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  for (const row of variants) {
    const target = targets[row.rule]
    const best = Math.min(row.parallelCopyMs, row.parallelSharedMs)
    const met = row.torchMs === undefined ? '' : row.torchMs / best >= target ? '✓' : '✗'
    console.log(
      `| ${row.rule} | ${row.jsMs === undefined ? '—' : fmt(row.jsMs)} | ${fmt(row.wasmMs)} | ${fmt(row.parallelCopyMs)} | ${fmt(row.parallelSharedMs)} | ${fmt(row.torchMs)} | ${ratio(row.parallelCopyMs, row.torchMs)} / ${ratio(row.parallelSharedMs, row.torchMs)} | ≥ ${target}× ${met} |`,
    )
  }

  // Growth with n (d = 10⁶) and with d (n = 32), f = n/4 − 1.
  const growth: {
    axis: 'n' | 'd'
    n: number
    d: number
    f: number
    floorMs: number
    krumMs: number
    medianMs: number
    torchKrumMs?: number
    torchMedianMs?: number
  }[] = []
  const configs: ['n' | 'd', number, number][] = [
    ['n', 8, 1_000_000],
    ['n', 16, 1_000_000],
    ['n', 32, 1_000_000],
    ['n', 64, 1_000_000],
    ['d', 32, 10_000],
    ['d', 32, 100_000],
    ['d', 32, 1_000_000],
    ...(quick ? [] : ([['d', 32, 10_000_000]] as ['d', number, number][])),
  ]
  console.log('\ngrowth (krum, median)…')
  for (const [axis, gn, gd] of configs) {
    const gf = gn / 4 - 1
    const data = gn === n && gd === d ? inputs : uniformInputs(gn, gd, gn + gd)
    const krumMs = time(() => krum(data, { f: gf }), gd > 1_000_000 ? 2 : reps)
    const medianMs = time(() => median(data, { f: gf }), gd > 1_000_000 ? 2 : reps)
    // Only the formulations that won on the main shape: the others take tens of seconds at d = 10⁷.
    const winners = [torch?.rules.krum?.formulation, torch?.rules.median?.formulation].filter(
      (name): name is string => name !== undefined,
    )
    const torchGrowth = runTorch(gn, gd, gf, ['krum', 'median'], 1, winners)
    growth.push({
      axis,
      n: gn,
      d: gd,
      f: gf,
      floorMs: floorMs(data),
      krumMs,
      medianMs,
      torchKrumMs: torchGrowth?.rules.krum?.ms,
      torchMedianMs: torchGrowth?.rules.median?.ms,
    })
    console.log(`  ${axis}: n=${gn} d=${gd} krum ${fmt(krumMs)} ms, median ${fmt(medianMs)} ms`)
  }
  for (const axis of ['n', 'd'] as const) {
    console.log(`\n### growth with ${axis} (${axis === 'n' ? 'd = 10⁶' : 'n = 32'}, f = n/4 − 1)\n`)
    console.log(
      '| n | d | floor ms | Krum ms | PyTorch Krum ms | Krum × floor | median ms | PyTorch median ms | median × floor |',
    )
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const row of growth.filter((g) => g.axis === axis)) {
      console.log(
        `| ${row.n} | ${row.d.toExponential(0)} | ${fmt(row.floorMs)} | ${fmt(row.krumMs)} | ${fmt(row.torchKrumMs)} | ${(row.krumMs / row.floorMs).toFixed(1)} | ${fmt(row.medianMs)} | ${fmt(row.torchMedianMs)} | ${(row.medianMs / row.floorMs).toFixed(1)} |`,
      )
    }
  }

  const result = {
    date: new Date().toISOString(),
    machine: { ...machine, torch: torch?.torch, torchThreads: torch?.threads, torchBlas: torch?.blas },
    loadAverage: { start: loadAtStart, end: loadavg()[0] },
    shape: { n, d, f },
    reps,
    floorMs: floor,
    copyFloorMs: copyFloor,
    torchFloorMs: torch?.floor_ms,
    rules: mainRows,
    kernelVariants: variants,
    growth,
  }
  console.log(`\nload average at the end: ${loadavg()[0]!.toFixed(1)}`)
  writeResults('aggregation', result)
}

await main()
