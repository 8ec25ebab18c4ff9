/**
 * The source of the figures behind packages/lab/test/trainer-alie.test.ts's test "3 of 10 workers
 * running ALIE": runs that test's exact configuration through the same public API (`train`,
 * `createModel('mlp', { seed: 1 })`, `loadEmbeddedMnist`, the rule functions of
 * @phalanx/aggregation) and prints, per rule, the final test accuracy and loss.
 *
 * Configuration (the test's): embedded MNIST, MLP seed 1, 10 workers, f = 3, 3 Byzantine workers
 * sending ALIE with { f: 3, z: 20 } (all three identical), 100 rounds, batch 32 per worker, η 1.0
 * constant, worker momentum β = 0.9, evaluate every 100 rounds (and after the last), seed 1, on
 * the WASM backend the test forces. One run per rule, one after the other, about 5 s each on an
 * idle core (more under load).
 *
 *   node --import tsx bench/alie-trainer.ts [rule ...] [flags]
 *
 * Rules: any of average, median, trimmedMean, multiKrum (default all four, in that order), as
 * positional arguments or --rules=a,b (the form `npm run bench -- alie-trainer --rules=...`
 * passes through). Flags, defaulting to the test's values:
 *   --z=20          ALIE's shift in honest standard deviations; --z=paper for the paper's
 *                   Φ⁻¹((n−s)/n) = Φ⁻¹(0.7) ≈ 0.5244 (ALIE's default when z is left out)
 *   --rounds=100
 *   --momentum=0.9  (0 disables it)
 *   --backend=wasm  (tfjs-node, wasm, cpu or auto)
 *   --honest        also run averaging of the 10 workers with no attack, same rounds and momentum
 *
 * Prints the backend, then one line per run, and writes bench/results/alie-trainer.json; e.g.
 * (2026-11-27, wasm with SIMD, one thread)
 *   median: accuracy 86.83%, loss 0.9181 (100 rounds, evaluated at round 99, 4.8 s)
 */
import { average, kernelBackend, median, multiKrum, trimmedMean } from '@phalanx/aggregation'
import { alieZ } from '@phalanx/attacks'
import { type AggregationRule, type TrainResult, train } from '@phalanx/lab'
import { type BackendName, createModel, initBackend, loadEmbeddedMnist } from '@phalanx/model'
import { writeResults } from './results.js'

const ruleFunctions: Record<string, AggregationRule> = {
  average: average as AggregationRule,
  median: median as AggregationRule,
  trimmedMean: trimmedMean as AggregationRule,
  multiKrum: multiKrum as AggregationRule,
}

const args = process.argv.slice(2)
const flag = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
function numberFlag(name: string, fallback: number): number {
  const raw = flag(name)
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (raw.trim() === '' || !Number.isFinite(value)) {
    console.error(`--${name} must be a number, got "${raw}"`)
    process.exit(2)
  }
  return value
}

// --z=paper leaves z out, so ALIE uses the paper's Φ⁻¹((n−s)/n) (alieZ(10, 3) = Φ⁻¹(0.7) ≈ 0.5244).
const z = flag('z') === 'paper' ? undefined : numberFlag('z', 20)
const rounds = numberFlag('rounds', 100)
const momentum = numberFlag('momentum', 0.9)
const backend = (flag('backend') ?? 'wasm') as BackendName | 'auto'
const withHonest = args.includes('--honest')
const requested = [
  ...args.filter((arg) => !arg.startsWith('-')),
  ...(flag('rules')?.split(',').filter(Boolean) ?? []),
]
const ruleNames = requested.length > 0 ? requested : Object.keys(ruleFunctions)
const unknown = ruleNames.filter((name) => !(name in ruleFunctions))
if (unknown.length > 0) {
  console.error(`unknown rule(s) ${unknown.join(', ')}; available: ${Object.keys(ruleFunctions).join(', ')}`)
  process.exit(2)
}

const info = await initBackend({ backend })
console.log(
  `backend ${info.name} (simd ${info.simd}, threads ${info.threads}); aggregation kernels ${kernelBackend()}; node ${process.version}`,
)
console.log(
  `config: MNIST, mlp seed 1, 10 workers, f 3, 3 × ALIE { f: 3, z: ${z ?? `alieZ(10, 3) = ${alieZ(10, 3).toFixed(4)}`} }, ${rounds} rounds, batch 32, η 1, momentum ${momentum}, evaluateEvery 100, seed 1`,
)

const { train: trainSet, test } = await loadEmbeddedMnist()

const measured: Array<{
  label: string
  accuracy: number | null
  loss: number
  rounds: number
  divergedAtRound: number | null
  seconds: number
}> = []

function report(label: string, result: TrainResult): void {
  const accuracy = result.final.accuracy
  measured.push({
    label,
    accuracy: accuracy ?? null,
    loss: result.final.loss,
    rounds: result.rounds,
    divergedAtRound: result.divergedAtRound ?? null,
    seconds: result.durationMs / 1_000,
  })
  const diverged = result.divergedAtRound === undefined ? '' : `, diverged at round ${result.divergedAtRound}`
  const evaluated = result.history.filter((round) => round.test !== undefined).map((round) => round.round)
  console.log(
    `${label}: accuracy ${accuracy === undefined ? '—' : `${(accuracy * 100).toFixed(2)}%`}, loss ${result.final.loss.toPrecision(4)} (${result.rounds} rounds, evaluated at round ${evaluated.join(', ') || '—'}${diverged}, ${(result.durationMs / 1_000).toFixed(1)} s)`,
  )
}

/** The test's train() arguments that every run here shares (a fresh model each time). */
const common = () =>
  ({
    model: createModel('mlp', { seed: 1 }),
    train: trainSet,
    test,
    workers: 10,
    rounds,
    batchSize: 32,
    learningRate: 1,
    momentum,
    evaluateEvery: 100,
    seed: 1,
  }) as const

for (const ruleName of ruleNames) {
  const result = await train({
    ...common(),
    rule: ruleFunctions[ruleName]!,
    ruleName,
    f: 3,
    byzantine: {
      count: 3,
      behaviour: {
        kind: 'vector',
        attack: { name: 'alie', options: z === undefined ? { f: 3 } : { f: 3, z } },
      },
    },
  })
  report(ruleName, result)
}

if (withHonest) {
  const result = await train({ ...common(), rule: average as AggregationRule, ruleName: 'average' })
  report('honest average (no attack)', result)
}

writeResults('alie-trainer', {
  date: new Date().toISOString(),
  node: process.version,
  backend: info,
  config: { z: z ?? 'paper', rounds, momentum },
  runs: measured,
})
