#!/usr/bin/env node
// `npm start` (and the scripts that run the built CLI) build first with this: Turborepo's
// `build`, printing nothing when it succeeds (no banner, no task lines, no summary), so that what
// `npm start` prints is the run. A failed build prints all of its output on stderr and exits with
// turbo's code. On a terminal one "building…" line stands in while it works, then is erased.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const turbo = fileURLToPath(new URL('../node_modules/.bin/turbo', import.meta.url))
const tty = process.stderr.isTTY === true
if (tty) process.stderr.write('phalanx: building…')
const result = spawnSync(turbo, ['run', 'build', '--output-logs=errors-only'], {
  encoding: 'utf8',
  // A colourless log reads the same in a terminal and in a CI log.
  env: { ...process.env, FORCE_COLOR: '0', TURBO_TELEMETRY_DISABLED: '1' },
  maxBuffer: 64 * 1024 * 1024,
})
if (tty) process.stderr.write('\r\x1b[2K')
if (result.error !== undefined) {
  console.error(`phalanx: cannot run ${turbo}: ${result.error.message} (run \`npm ci\` first)`)
  process.exit(1)
}
if (result.status !== 0) {
  process.stderr.write(result.stdout)
  process.stderr.write(result.stderr)
  process.exit(result.status ?? 1)
}
