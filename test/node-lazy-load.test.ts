/**
 * A node process loads what its role and config use (docs/BENCHMARKS.md, "Start-up"): a node
 * without `natsUrl` never loads the NATS client, a Byzantine server (it never evaluates) never
 * loads TensorFlow.js. A preloaded probe (fixtures/module-probe.mjs) records every module the
 * process resolves or requires until the node logs `start-up done` (alone, it never reports
 * `started`: it waits for peers to subscribe). Every case has its positive
 * control, the same probe seeing the module where the node does use it, so no case can pass by
 * the probe seeing nothing.
 *
 * The NATS cases run the unbundled build (`dist/main.js`): in the bundle the NATS client is inside
 * `bin.js`, where its code is present but runs only through the same dynamic imports
 * (control/src/nats-modules.ts), which the unbundled build resolves as separate files. TensorFlow.js
 * stays outside the bundle, so its cases run both.
 */
import { fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cliPath } from './support/cli.js'
import { SHARED_NATS_URL } from './support/nats.js'

const unbundled = fileURLToPath(new URL('../packages/cli/dist/main.js', import.meta.url))
const probe = fileURLToPath(new URL('./fixtures/module-probe.mjs', import.meta.url))

/** The modules a lone node of the default config loaded up to the end of its start-up. */
function modulesUntilStarted(
  cli: string,
  nodeId: string,
  env: Record<string, string> = {},
): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'phalanx-lazy-load-'))
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
  const file = join(dir, 'modules.txt')
  const role = nodeId.startsWith('server') ? 'server' : 'worker'
  return new Promise((resolve, reject) => {
    const child = fork(cli, [role], {
      execArgv: ['--import', probe],
      env: {
        ...process.env,
        MODULE_PROBE_FILE: file,
        PHALANX_NODE_ID: nodeId,
        PHALANX_LISTEN: '/ip4/127.0.0.1/tcp/0',
        PHALANX_CLUSTER: `lazy${process.pid}${nodeId.replace('-', '')}${Date.now() % 100_000}`,
        PHALANX_LOG_LEVEL: 'info',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    })
    let stderr = ''
    // A node logs on stderr (its stdout is for results, of which a node has none).
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (!stderr.includes('"msg":"start-up done"')) return
      child.kill('SIGKILL')
      resolve(readFileSync(file, 'utf8').trim().split('\n'))
    })
    child.on('exit', (code, signal) =>
      reject(
        new Error(
          `${nodeId} exited (${code ?? signal}) before its start-up was done: ${stderr.slice(-2000)}`,
        ),
      ),
    )
  })
}

const loads = (modules: readonly string[], packagePrefix: string) =>
  modules.some(
    (line) => line.includes(`/node_modules/${packagePrefix}`) || line.includes(` ${packagePrefix}`),
  )

describe('what a node process loads', () => {
  // server-0 is the default config's Byzantine server (F = 1); server-1 is honest.
  it.each([
    ['bundle', cliPath],
    ['unbundled', unbundled],
  ])('%s: a Byzantine server never loads TensorFlow.js; an honest one does', async (_, cli) => {
    const byzantine = await modulesUntilStarted(cli, 'server-0')
    const honest = await modulesUntilStarted(cli, 'server-1')
    expect(loads(honest, '@tensorflow/tfjs-core')).toBe(true)
    expect(loads(byzantine, '@tensorflow/')).toBe(false)
  })

  it('a server without natsUrl never loads the NATS client; one with natsUrl does', async () => {
    const without = await modulesUntilStarted(unbundled, 'server-1')
    const withNats = await modulesUntilStarted(unbundled, 'server-1', { PHALANX_NATS_URL: SHARED_NATS_URL })
    expect(loads(withNats, '@nats-io/transport-node')).toBe(true)
    expect(loads(without, '@nats-io/')).toBe(false)
  })
})
