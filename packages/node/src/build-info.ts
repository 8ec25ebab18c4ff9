/**
 * What a node process runs, for `phalanx_build_info`: the Phalanx version, the source commit and
 * the Node.js version. Read once per process, only by a node that serves `/metrics`.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface BuildInfo {
  /** The version of the package the running code was built from (all packages share one). */
  readonly version: string
  /** 40 hex digits, or `unknown` when neither a `COMMIT` file nor a git checkout says. */
  readonly commit: string
  readonly nodejsVersion: string
}

const UNKNOWN = 'unknown'
const COMMIT_PATTERN = /^[0-9a-f]{40}$/

/**
 * The commit the code at `from` was built from: a `COMMIT` file in `from` or a directory above it
 * (the image writes `/app/COMMIT` from its `SOURCE_COMMIT` build argument: it holds no `.git`),
 * else the git checkout it lies in, else `unknown`.
 */
export function sourceCommit(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const file = join(dir, 'COMMIT')
    if (existsSync(file)) {
      const commit = readFileSync(file, 'utf8').trim()
      return COMMIT_PATTERN.test(commit) ? commit : UNKNOWN
    }
    if (dirname(dir) === dir) break
  }
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], {
      cwd: from,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      timeout: 5_000,
    }).trim()
    return COMMIT_PATTERN.test(commit) ? commit : UNKNOWN
  } catch {
    // No git on PATH (the image), or not a checkout.
    return UNKNOWN
  }
}

let cached: BuildInfo | undefined

export function buildInfo(): BuildInfo {
  if (cached !== undefined) return cached
  const here = dirname(fileURLToPath(import.meta.url))
  // Beside `src/` and `dist/` alike; in the CLI's one-file bundle, the CLI's package.json.
  const { version } = JSON.parse(readFileSync(join(here, '../package.json'), 'utf8')) as { version: string }
  cached = { version, commit: sourceCommit(here), nodejsVersion: process.version }
  return cached
}
