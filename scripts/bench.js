#!/usr/bin/env node
// `npm run bench [-- area ...]`: runs the benchmark programs in bench/<area>.ts one after
// the other (never in parallel: the machine has two cores and they would measure each
// other). Each program prints its own table and writes bench/results/<area>.json.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const benchDir = fileURLToPath(new URL('../bench/', import.meta.url))
const available = readdirSync(benchDir)
  .filter((name) => name.endsWith('.ts'))
  .map((name) => name.slice(0, -3))
  .sort()
const requested = process.argv.slice(2).filter((arg) => !arg.startsWith('-'))
const extraArgs = process.argv.slice(2).filter((arg) => arg.startsWith('-'))
// The soak (`npm run soak`) runs for 15–25 minutes: only when asked for by name.
const areas = requested.length > 0 ? requested : available.filter((area) => area !== 'soak')
let failed = 0
for (const area of areas) {
  if (!existsSync(`${benchDir}${area}.ts`)) {
    console.error(`unknown benchmark "${area}"; available: ${available.join(', ')}`)
    process.exit(2)
  }
  console.log(`\n=== bench/${area}.ts ===`)
  const run = spawnSync(process.execPath, ['--import', 'tsx', `${benchDir}${area}.ts`, ...extraArgs], {
    stdio: 'inherit',
  })
  if (run.status !== 0) failed++
}
process.exit(failed > 0 ? 1 : 0)
