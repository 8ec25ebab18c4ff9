/**
 * Every file in `examples/` runs as it is, through the real CLI: each starts with a comment line
 * giving the command that runs it, and that very command is run here, shrunk by flags (a config:
 * `--rounds 2`; a matrix: `--dry-run`, which resolves every cell through the schema, then one cell
 * of it for 2 rounds). The CLI refuses a field its command does not honour (exit code 2), so exit
 * code 0 is the proof that no example carries a field its mode ignores. A file in `examples/` that
 * this table does not cover fails the first test.
 *
 * The chaos script itself (a nats-server, a 9-process cluster, six chaos commands: about a minute or
 * more on 2 cores) runs only with RUN_CHAOS_EXAMPLE=1; otherwise its syntax, the commands,
 * kinds and flags it uses, and its config are checked.
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { killGroup, runCli } from './support/cli.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const examplesDir = join(root, 'examples')

type Example =
  | { kind: 'config'; command: 'simulate' }
  | { kind: 'matrix' }
  /** A `local` config that needs a NATS server: run by `script`, validated here on its own. */
  | { kind: 'config'; command: 'local'; script: string }
  | { kind: 'script' }

const examples: Record<string, Example> = {
  'matrix.yaml': { kind: 'matrix' },
  'worker-attacks.yaml': { kind: 'config', command: 'simulate' },
  'worker-attacks.matrix.yaml': { kind: 'matrix' },
  'server-attacks.yaml': { kind: 'config', command: 'simulate' },
  'server-attacks.matrix.yaml': { kind: 'matrix' },
  'chaos.yaml': { kind: 'config', command: 'local', script: 'chaos.sh' },
  'chaos.sh': { kind: 'script' },
}

const read = (file: string) => readFileSync(join(examplesDir, file), 'utf8')

/** The first comment line after an optional shebang, without its `# `. */
function commandLine(file: string): string {
  const lines = read(file).split('\n')
  const first = lines[0]?.startsWith('#!') ? lines[1] : lines[0]
  expect(first, `${file} starts with a comment line giving its command`).toMatch(/^# \S/)
  return (first ?? '').slice(2)
}

/** `phalanx <args…>` of a command line, up to a comment in parentheses. */
function phalanxArgs(line: string): string[] {
  const match = /^phalanx (.+?)(?:\s+\(.*)?$/.exec(line)
  expect(match, `"${line}" is a phalanx command`).not.toBeNull()
  return match![1]!.split(/\s+/)
}

/** `args` with the value of `--out` replaced by `out`. */
function withOut(args: string[], out: string): string[] {
  const at = args.indexOf('--out')
  expect(at, `${args.join(' ')} names --out`).toBeGreaterThan(0)
  return args.map((arg, i) => (i === at + 1 ? out : arg))
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'phalanx-examples-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const cli = (args: string[], timeoutMs = 60_000) =>
  // The repository root as the working directory: the commands name `examples/<file>`.
  runCli(args, { timeoutMs, env: { PHALANX_LOG_LEVEL: 'warn' }, cwd: root })

describe('examples/', () => {
  it('every file is covered by this test', () => {
    expect(readdirSync(examplesDir).sort()).toEqual(Object.keys(examples).sort())
  })

  for (const [file, example] of Object.entries(examples)) {
    if (example.kind === 'config' && example.command === 'simulate') {
      it(`${file}: its own command runs it (2 rounds)`, async () => {
        const args = phalanxArgs(commandLine(file))
        expect(args.slice(0, 3)).toEqual(['simulate', '--config', `examples/${file}`])
        const out = tempDir()
        const run = await cli([...withOut(args, out), '--rounds', '2', '--json'])
        expect(run.stderr).not.toMatch(/Error:/)
        expect(run.code).toBe(0)
        expect(JSON.parse(run.stdout)).toMatchObject({ rounds: 2 })
      })
    }

    if (example.kind === 'matrix') {
      it(`${file}: every cell resolves (--dry-run), and one cell runs (2 rounds)`, async () => {
        const line = commandLine(file)
        const args = phalanxArgs(line)
        expect(args.slice(0, 2)).toEqual(['experiment', `examples/${file}`])
        const matrix = parseYaml(read(file)) as {
          mode: string
          base: Record<string, unknown>
          grid: Record<string, unknown[]>
        }
        const cells = Object.values(matrix.grid).reduce((product, values) => product * values.length, 1)
        // The comment's count of cells is the grid's.
        const claimed = /(\d+) cells/.exec(read(file))
        if (claimed !== null) expect(Number(claimed[1])).toBe(cells)

        const out = tempDir()
        const dry = await cli([...withOut(args, join(out, 'dry')), '--dry-run'])
        expect(dry.stderr).toBe('')
        expect(dry.code).toBe(0)
        expect(dry.stdout).toContain(`${cells} cells, none run`)
        expect(dry.stdout.trim().split('\n')).toHaveLength(cells + 1)
        expect(readdirSync(out)).toEqual([])

        // The matrix's first cell, shrunk: the base and the first value of each grid field.
        const first = Object.fromEntries(
          Object.entries(matrix.grid).map(([field, values]) => [field, [values[0]]]),
        )
        const small = join(out, 'small.yaml')
        writeFileSync(
          small,
          JSON.stringify({ ...matrix, base: { ...matrix.base, rounds: 2, evalEvery: 1 }, grid: first }),
        )
        const run = await cli(['experiment', small, '--out', join(out, 'run')])
        expect(run.stderr).not.toMatch(/FAILED|Error:/)
        expect(run.code).toBe(0)
        expect(run.stdout).toMatch(/\[1\/1\] .*: done, accuracy/)
      })
    }

    if (example.kind === 'config' && example.command === 'local') {
      it(`${file}: ${example.script} runs it, and phalanx local takes every field of it`, async () => {
        const line = commandLine(file)
        expect(line).toContain(`examples/${example.script}`)
        expect(read(example.script)).toContain(`local --config examples/${file}`)
        // Every field is resolved and honoured, and the cluster bounds checked, before the out dir
        // is looked at: an out dir that cannot be made (a file in the way) stops it there, with the
        // out-dir exit code, before any node or NATS connection.
        const blocker = join(tempDir(), 'a-file')
        writeFileSync(blocker, '')
        const run = await cli(['local', '--config', `examples/${file}`, '--out', blocker])
        expect(run.stderr).toMatch(/^phalanx: OutDirError: /)
        expect(run.code).toBe(3)
      })
    }

    if (example.kind === 'script') {
      it(`${file}: bash -n accepts it, and every phalanx command, chaos kind and flag it uses exists`, async () => {
        const path = join(examplesDir, file)
        const syntax = spawnSync('bash', ['-n', path], { encoding: 'utf8' })
        expect(syntax.stderr).toBe('')
        expect(syntax.status).toBe(0)
        expect(commandLine(file)).toMatch(new RegExp(`^examples/${file}\\b`))

        // Joined continuation lines: `"${phalanx[@]}" <command> …` and the `chaos <kind> …` helper.
        const text = read(file).replace(/\\\n\s*/g, ' ')
        const uses = new Map<string, Set<string>>()
        const use = (command: string, rest: string) => {
          const flags = uses.get(command) ?? new Set<string>()
          for (const flag of rest.match(/--[a-z][a-z-]*/g) ?? []) flags.add(flag)
          uses.set(command, flags)
        }
        for (const [, command, rest] of text.matchAll(/"\$\{phalanx\[@\]\}" (\w+)([^\n]*)/g))
          use(command!, rest!)
        const kinds: string[] = []
        for (const [, kind, rest] of text.matchAll(/^chaos (\w+) \S+([^\n]*)$/gm)) {
          kinds.push(kind!)
          use('chaos', rest!)
        }
        expect([...uses.keys()].sort()).toEqual(['chaos', 'local'])
        expect(kinds.length).toBeGreaterThan(0)
        for (const [command, flags] of uses) {
          const help = await cli([command, '--help'])
          expect(help.code).toBe(0)
          for (const flag of flags) expect(help.stdout, `phalanx ${command} ${flag}`).toContain(`${flag} `)
          if (command === 'chaos') {
            const choices = /kind\s+what the node does \(choices: ([^)]*)\)/.exec(
              help.stdout.replace(/\s+/g, ' '),
            )
            for (const kind of kinds) expect(choices?.[1]).toContain(`"${kind}"`)
          }
        }
      })
    }
  }

  it.runIf(process.env.RUN_CHAOS_EXAMPLE === '1')(
    'chaos.sh runs as it is: every chaos command acknowledged, every round done',
    async () => {
      const out = join(tempDir(), 'chaos')
      const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>(
        (resolve, reject) => {
          const child = spawn('bash', [join(examplesDir, 'chaos.sh'), out], {
            cwd: root,
            stdio: ['ignore', 'ignore', 'pipe'],
            detached: true,
          })
          onTestFinished(() => killGroup(child.pid))
          let stderr = ''
          child.stderr.on('data', (chunk: Buffer) => {
            stderr += chunk.toString()
          })
          child.on('error', reject)
          child.on('close', (code) => resolve({ code, stderr }))
        },
      )
      expect(code, stderr).toBe(0)
      const acknowledged = readFileSync(join(out, 'chaos.log'), 'utf8').match(/ acknowledged /g) ?? []
      const sent = read('chaos.sh').match(/^chaos \w+ /gm) ?? []
      expect(acknowledged).toHaveLength(sent.length)
      const rounds = (parseYaml(read('chaos.yaml')) as { rounds: number }).rounds
      expect(JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))).toMatchObject({ rounds })
    },
    300_000,
  )
})
