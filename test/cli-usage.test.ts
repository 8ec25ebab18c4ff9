/**
 * What a person sees first, through the built CLI as a user runs it: `--help` of a command lists
 * its own options with choices and variables, `--version` the package's version, and a config
 * error is one plain line on stderr with exit code 2, before anything starts. No training runs.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { runCli } from './support/cli.js'

const { version } = JSON.parse(
  readFileSync(new URL('../packages/cli/package.json', import.meta.url), 'utf8'),
) as { version: string }

describe('phalanx, as a user runs it', () => {
  it('--help lists the commands, --version the version', async () => {
    const help = await runCli(['--help'], { timeoutMs: 60_000 })
    expect(help.code).toBe(0)
    for (const command of ['local', 'simulate', 'server', 'worker', 'experiment', 'watch', 'chaos']) {
      expect(help.stdout).toMatch(new RegExp(`^ {2}${command} `, 'm'))
    }
    const printed = await runCli(['--version'], { timeoutMs: 60_000 })
    expect(printed.code).toBe(0)
    expect(printed.stdout.trim()).toBe(version)
  })

  it('simulate --help lists its options with choices and variables (the servers too), and not the network', async () => {
    const { code, stdout: wrapped } = await runCli(['simulate', '--help'], { timeoutMs: 60_000 })
    expect(code).toBe(0)
    // Wrapped at 80 columns when not a terminal: read as one line.
    const stdout = wrapped.replace(/\s+/g, ' ')
    expect(stdout).toContain('--rule <name>')
    expect(stdout).toContain('"multiKrum"')
    expect(stdout).toContain('env: PHALANX_RULE')
    expect(stdout).toContain('--rounds <int>')
    expect(stdout).toContain('--server-attack <name>')
    expect(stdout).not.toMatch(/--node-id|--quorum-timeout-ms|--nats-url/)
  })

  it.each([
    [
      'a flag that is not a number',
      ['simulate', '--rounds', 'abc'],
      {},
      /^phalanx: ConfigError: config field "rounds" = "abc", set by flag --rounds: not a number \(allowed: a whole number from 1 to \d+\)$/,
    ],
    [
      'a misspelt variable',
      ['simulate'],
      { PHALANX_RULEE: 'krum' },
      /^phalanx: ConfigError: unknown environment variable PHALANX_RULEE; did you mean PHALANX_RULE\?/,
    ],
    [
      'a field simulate does not use',
      ['simulate', '--quorum-timeout-ms', '5000'],
      {},
      /^phalanx: FieldNotHonouredError: phalanx simulate does not use config field "quorumTimeoutMs", set by flag --quorum-timeout-ms: /,
    ],
  ])('%s: one line on stderr, exit code 2', async (_case, args, env, line) => {
    const { code, stdout, stderr } = await runCli(args, { env, timeoutMs: 60_000 })
    expect(code).toBe(2)
    expect(stderr.trim()).toMatch(line)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stdout).toBe('')
  })

  it('a bad value in a config file names the file, the line and the nearest choice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-cli-usage-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'run.yaml')
    writeFileSync(file, 'rounds: 5\nrule: krumm\n')
    const { code, stderr } = await runCli(['simulate', '--config', file], { timeoutMs: 60_000 })
    expect(code).toBe(2)
    expect(stderr).toContain(
      `config field "rule" = "krumm", set by config file ${file}, line 2: not one of the choices; did you mean "krum"?`,
    )
    expect(stderr).not.toMatch(/Invalid input|expected \w+, received/)
  })
})
