/**
 * Runs the built `phalanx` CLI as a child process (what a user runs), with a time limit and
 * guaranteed clean-up: the whole process group is killed when the test ends.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const cliPath = fileURLToPath(new URL('../../packages/cli/dist/bin.js', import.meta.url))

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

export function runCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: { ...process.env, ...options.env },
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    const timer = setTimeout(() => {
      killGroup(child.pid)
      reject(
        new Error(
          `phalanx ${args.join(' ')} did not finish in ${options.timeoutMs} ms\n${stdout}\n${stderr}`,
        ),
      )
    }, options.timeoutMs ?? 240_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      killGroup(child.pid)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Kills the child and anything it started (its process group). */
export function killGroup(pid: number | undefined): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // Already gone.
  }
}

/**
 * What a clean run must not have printed on stderr, where its logs go: every line that is not a
 * JSON log line below `error` (pino's level 50). A warning (an honest straggler left behind on a
 * loaded machine) is the run's to report, not a failure.
 */
export function stderrProblems(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        return !(((JSON.parse(line) as { level?: unknown }).level as number) < 50)
      } catch {
        return true
      }
    })
}
