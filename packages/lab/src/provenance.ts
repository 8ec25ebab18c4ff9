/**
 * Where a run's results came from (`summary.json`'s `provenance`): the phalanx version, the git
 * commit of the checkout the code runs from when it runs from one, when and where the run started,
 * its command line and seed. Nothing here fails a run: what cannot be read is left out.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Provenance } from './outputs.js'

/** The package.json beside `src/` or `dist/` (in the `phalanx` bundle: the CLI's). */
function packageVersion(): string {
  try {
    const file = new URL('../package.json', import.meta.url)
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

const git = (cwd: string, args: string[]): string =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
    timeout: 5000,
  }).trim()

/**
 * The commit of the phalanx checkout holding this module: none when the module is not in a git
 * work tree, or is in one that is not phalanx's (an npm install inside another project's
 * repository), or git is missing.
 */
export function gitProvenance(moduleDir: string): Pick<Provenance, 'gitCommit' | 'gitDirty'> {
  try {
    const top = git(moduleDir, ['rev-parse', '--show-toplevel'])
    const name = (JSON.parse(readFileSync(join(top, 'package.json'), 'utf8')) as { name?: string }).name
    if (name !== 'phalanx') return {}
    const gitCommit = git(top, ['rev-parse', 'HEAD'])
    const gitDirty = git(top, ['status', '--porcelain', '--untracked-files=no']) !== ''
    return { gitCommit, gitDirty }
  } catch {
    return {}
  }
}

/** An argument with the credentials of a URL in it (`nats://user:pass@host`) masked: a summary is shared. */
export const withoutCredentials = (arg: string): string =>
  arg.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@')

let cached: Pick<Provenance, 'phalanxVersion' | 'gitCommit' | 'gitDirty'> | undefined

/** The provenance of a run of `seed` that started at `startedAt`, in this process. */
export function runProvenance(init: { seed: number; startedAt: Date }): Provenance {
  cached ??= {
    phalanxVersion: packageVersion(),
    ...gitProvenance(dirname(fileURLToPath(import.meta.url))),
  }
  return {
    ...cached,
    startedAt: init.startedAt.toISOString(),
    host: hostname(),
    commandLine: process.argv.map(withoutCredentials),
    seed: init.seed,
    nodeVersion: process.version,
  }
}
