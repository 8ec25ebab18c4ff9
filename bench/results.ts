/**
 * Where every bench program keeps what it measured: `bench/results/<name>.json`, pretty-printed,
 * one file per program (or per variant of a run), overwritten by the next run.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const resultsDir = fileURLToPath(new URL('./results/', import.meta.url))

/** Writes `data` as `bench/results/<name>.json` and says so on stdout. */
export function writeResults(name: string, data: unknown): void {
  mkdirSync(resultsDir, { recursive: true })
  writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify(data, null, 2)}\n`)
  console.log(`wrote bench/results/${name}.json`)
}

/** The results a previous run wrote as `bench/results/<name>.json`, if there are any. */
export function readResults(name: string): Record<string, unknown> | undefined {
  const path = join(resultsDir, `${name}.json`)
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : undefined
}
