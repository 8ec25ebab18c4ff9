/**
 * Streams and signals of the built CLI, as a user meets them: results on stdout (`--json`: the
 * summary alone, so `phalanx simulate --json | jq` works), logs on stderr; SIGINT and SIGTERM end
 * a run cleanly with 130 and 143 and leave the summary, rounds and report of the rounds done; an
 * `--out` that cannot be written fails before any work; a usage error has one code everywhere.
 * Small runs (a logistic model, a few workers) keep it short; a signal is sent once a round is
 * seen on stderr, never after a sleep.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cliPath, killGroup, runCli } from './support/cli.js'

/** The CLI's exit codes, as docs/OPERATIONS.md lists them (the table itself is checked by a unit test). */
const EXIT = { usage: 2, outDir: 3, sigint: 130, sigterm: 143 } as const

const simulateSmall = [
  ...['--servers', '1', '--byzantine-servers', '0', '--replication', 'vanilla'],
  ...['--workers', '3', '--byzantine-workers', '0', '--rule', 'average'],
  ...['--model', 'logistic', '--learning-rate', '0.5', '--seed', '3'],
]

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'phalanx-cli-streams-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

interface LogLine {
  msg?: string
  round?: number
  level?: number
}

/** Parses stderr's JSON log lines (other lines, such as "stopped by SIGINT", are left out). */
function logLines(stderr: string): LogLine[] {
  return stderr.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as LogLine]
    } catch {
      return []
    }
  })
}

/**
 * Starts `phalanx args`, sends `signal` once stderr has logged round `atRound`, and resolves with
 * how it ended. The process group is killed when the test ends, whatever happened.
 */
function interruptAtRound(
  args: readonly string[],
  atRound: number,
  signal: 'SIGINT' | 'SIGTERM',
): Promise<{ code: number | null; stdout: string; stderr: string; signalled: boolean; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    onTestFinished(() => killGroup(child.pid))
    let stdout = ''
    let stderr = ''
    let signalled = false
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (signalled) return
      if (logLines(stderr).some((line) => line.msg === 'round' && (line.round ?? -1) >= atRound)) {
        signalled = true
        // The CLI alone, not its group: as `kill -INT <pid>` does (a terminal's Ctrl-C signals
        // the nodes of a local cluster too, which the parent then stops itself).
        child.kill(signal)
      }
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr, signalled, pid: child.pid! }))
  })
}

/** Whether any process is left in the group `pid` leads (the CLI and the nodes it started). */
function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

function readSummary(out: string): Record<string, unknown> & { rounds: number } {
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
}

/** Data rows of rounds.csv (its header left out). */
const csvRows = (out: string) => readFileSync(join(out, 'rounds.csv'), 'utf8').trim().split('\n').length - 1

describe('phalanx streams', () => {
  it('simulate --json: stdout is the summary as JSON and nothing else, the logs are on stderr', async () => {
    const out = tempDir()
    const result = await runCli(['simulate', ...simulateSmall, '--rounds', '4', '--json', '--out', out], {
      timeoutMs: 120_000,
    })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout.trim().split('\n')).toHaveLength(1)
    const summary = JSON.parse(result.stdout) as { rounds: number; mode: string }
    expect(summary).toEqual(readSummary(out))
    expect(summary.rounds).toBe(4)
    expect(summary.mode).toBe('single-process')
    const logged = logLines(result.stderr)
    expect(logged.filter((line) => line.msg === 'round').map((line) => line.round)).toEqual([0, 1, 2, 3])
    expect(result.stderr).toContain(`wrote ${out}/summary.json`)
  })

  it('simulate without --json: the title and the table on stdout, no log line there', async () => {
    const result = await runCli(['simulate', ...simulateSmall, '--rounds', '2'], { timeoutMs: 120_000 })
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/^phalanx simulate: N=1 \(F=0\), n=3 \(f=0\), average, logistic\/mnist\n/)
    expect(result.stdout).toMatch(/\| rounds +\| 2 +\|/)
    expect(result.stdout).not.toContain('"level"')
    expect(logLines(result.stderr).some((line) => line.msg === 'training started')).toBe(true)
  })

  it.each([
    { kind: 'no-attack', label: 'no attack, same seed (simulated)' },
    { kind: 'simulate', label: 'same config (simulated)' },
  ])('simulate --baseline $kind: the report overlays the baseline it ran', async ({ kind, label }) => {
    const out = tempDir()
    const result = await runCli(
      ['simulate', ...simulateSmall, '--rounds', '3', '--baseline', kind, '--out', out],
      { timeoutMs: 120_000 },
    )
    expect(result.code, result.stderr).toBe(0)
    const html = readFileSync(join(out, 'report.html'), 'utf8')
    expect(html).toContain(`baseline: ${label}`)
  })

  it('simulate --baseline with a kind it does not know: a usage error, nothing run', async () => {
    const out = tempDir()
    const result = await runCli(['simulate', ...simulateSmall, '--baseline', 'nope', '--out', out], {
      timeoutMs: 60_000,
    })
    expect(result.code).toBe(EXIT.usage)
    expect(result.stderr).toMatch(/no-attack/)
    expect(existsSync(join(out, 'summary.json'))).toBe(false)
  })

  it('SIGINT at about half the rounds of simulate: exit 130, and a summary, rounds and report of the rounds done', async () => {
    const out = tempDir()
    const rounds = 300
    const result = await interruptAtRound(
      ['simulate', ...simulateSmall, '--rounds', String(rounds), '--eval-every', '10', '--out', out],
      rounds / 2,
      'SIGINT',
    )
    expect(result.signalled, result.stderr).toBe(true)
    expect(result.code, result.stderr).toBe(EXIT.sigint)
    const summary = readSummary(out)
    expect(summary.interrupted).toBe('SIGINT')
    expect(summary.rounds).toBeGreaterThan(rounds / 2)
    expect(summary.rounds).toBeLessThan(rounds)
    expect(summary.honestAccuracy).toEqual(expect.any(Number))
    expect(csvRows(out)).toBe(summary.rounds)
    expect(existsSync(join(out, 'report.html'))).toBe(true)
    expect(result.stdout).toMatch(new RegExp(`\\| rounds +\\| ${summary.rounds} \\(stopped by SIGINT\\)`))
    expect(result.stderr).toContain(`phalanx: stopped by SIGINT after ${summary.rounds} rounds`)
  })

  it('SIGTERM of a local cluster: exit 143, every node stopped, and a summary of the rounds done', async () => {
    const out = tempDir()
    const rounds = 200
    const result = await interruptAtRound(
      ['local', ...simulateSmall, '--rounds', String(rounds), '--eval-every', '5', '--out', out],
      5,
      'SIGTERM',
    )
    expect(result.signalled, result.stderr).toBe(true)
    expect(result.code, result.stderr).toBe(EXIT.sigterm)
    // The CLI killed every node it started before it exited (their group empties once they are reaped).
    await expect.poll(() => groupAlive(result.pid), { timeout: 10_000 }).toBe(false)
    const summary = readSummary(out)
    expect(summary.interrupted).toBe('SIGTERM')
    expect(summary.rounds).toBeGreaterThan(5)
    expect(summary.rounds).toBeLessThan(rounds)
    expect(csvRows(out)).toBe(summary.rounds)
    // Start-up is reported before the rounds (on a terminal: "4 nodes: 3 ready…").
    const messages = logLines(result.stderr).map((line) => line.msg)
    expect(messages.indexOf('every node ready')).toBeGreaterThan(-1)
    expect(messages.indexOf('every node ready')).toBeLessThan(messages.indexOf('round'))
  })

  it.each([
    ['simulate', simulateSmall],
    ['local', simulateSmall],
  ])('%s with an --out that cannot be created fails before any work, exit code 3', async (command, args) => {
    const dir = tempDir()
    const file = join(dir, 'a-file')
    writeFileSync(file, '')
    const result = await runCli([command, ...args, '--rounds', '2', '--out', join(file, 'out')], {
      timeoutMs: 60_000,
    })
    expect(result.code).toBe(EXIT.outDir)
    expect(result.stderr.trim()).toBe(
      `phalanx: OutDirError: cannot write the out directory ${join(file, 'out')}: a file is in the way (not a directory)`,
    )
    expect(result.stdout).toBe('')
  })

  it.each([['simulate'], ['local']])(
    '%s: an unknown option is a usage error, exit code 2',
    async (command) => {
      const result = await runCli([command, '--no-such-option'], { timeoutMs: 60_000 })
      expect(result.code).toBe(EXIT.usage)
      expect(result.stderr).toContain("unknown option '--no-such-option'")
    },
  )
})
