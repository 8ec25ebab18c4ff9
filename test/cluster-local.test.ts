/**
 * `phalanx local` end to end: real processes, real libp2p over TCP on loopback, real
 * TensorFlow.js. The cluster here is small (logistic regression, 7 workers) so a run takes
 * well under a minute on two cores; the default `npm start` cluster is the same code larger.
 */
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connectControl, generateOperatorKey, watchTelemetry, writeOperatorKey } from '@phalanx/control'
import pino from 'pino'
import { describe, expect, it, onTestFinished } from 'vitest'
import { runCli, stderrProblems } from './support/cli.js'
import { SHARED_NATS_URL } from './support/nats.js'
import { Waiters } from './support/node-process.js'

/** The encryption of every connection the nodes of a run opened, from their logs (net's 'connection open'). */
function encryptionsLogged(out: string): string[] {
  return readdirSync(join(out, 'logs')).flatMap((file) =>
    readFileSync(join(out, 'logs', file), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"connection open"'))
      .map((line) => String(JSON.parse(line).encryption)),
  )
}

describe('phalanx local', () => {
  it.each([
    [['--servers', '3', '--byzantine-servers', '1'], /N−F ≥ 2F\+1/],
    [['--workers', '6', '--byzantine-workers', '2', '--rule', 'krum'], /n ≥ 2f\+3/],
    [['--workers', '10', '--byzantine-workers', '2', '--rule', 'bulyan'], /n ≥ 4f\+3/],
    [['--rule', 'krumm'], /rule.*krumm/],
  ])('refuses %j at start-up, naming the bound or field', async (args, message) => {
    const result = await runCli(['local', ...args], { timeoutMs: 60_000 })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
  })

  it('trains to a useful accuracy with a Byzantine server and a Byzantine worker, and writes its report', async () => {
    const out = mkdtempSync(join(tmpdir(), 'phalanx-local-test-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const result = await runCli(
      [
        'local',
        ...['--servers', '4', '--byzantine-servers', '1', '--server-attack', 'reversed'],
        ...['--workers', '7', '--byzantine-workers', '1', '--worker-attack', 'sign-flip'],
        ...['--rule', 'multiKrum', '--model', 'logistic', '--rounds', '30', '--eval-every', '10'],
        ...['--learning-rate', '0.5', '--momentum', '0', '--seed', '3', '--out', out],
      ],
      { timeoutMs: 240_000 },
    )
    expect(stderrProblems(result.stderr)).toEqual([])
    expect(result.code).toBe(0)
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
    expect(summary.rounds).toBe(30)
    // Logistic regression on the embedded MNIST reaches ~85% in 30 such rounds in the
    // single-process trainer; the cluster must not lose much of that to the attackers.
    expect(summary.honestAccuracy).toBeGreaterThan(0.75)
    // Honest servers start from the same seeded model and take the median of the same
    // honest majority: their models may differ only by the gradients each saw first.
    expect(summary.maxHonestDrift).toBeLessThan(1)
    // Every honest node reports the CPU of its rounds: a server aggregates and steps, a worker
    // computes a gradient, so neither can have used none.
    expect(summary.cpuSecondsPerRound.server).toBeGreaterThan(0)
    expect(summary.cpuSecondsPerRound.worker).toBeGreaterThan(0)
    expect(readFileSync(join(out, 'rounds.csv'), 'utf8').trim().split('\n')).toHaveLength(31)
    expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('<svg')
    // The default encrypter (noise, netDefaults) carried that run; the case below runs the other one.
    expect(summary.config.encrypter).toBe('noise')
    const opened = encryptionsLogged(out)
    expect(opened.length).toBeGreaterThanOrEqual(10)
    expect(new Set(opened)).toEqual(new Set(['/noise']))
  })

  it('runs its rounds over TLS 1.3 when asked (--encrypter tls)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'phalanx-local-tls-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const result = await runCli(
      [
        'local',
        ...['--servers', '4', '--byzantine-servers', '1', '--server-attack', 'none'],
        ...['--workers', '3', '--byzantine-workers', '0'],
        ...['--model', 'logistic', '--rounds', '4', '--eval-every', '4', '--encrypter', 'tls'],
        ...['--out', out],
      ],
      { timeoutMs: 120_000 },
    )
    expect(stderrProblems(result.stderr)).toEqual([])
    expect(result.code).toBe(0)
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
    expect(summary.config.encrypter).toBe('tls')
    expect(summary.rounds).toBe(4)
    // Every node logs the encryption each of its connections took: TLS everywhere.
    const opened = encryptionsLogged(out)
    expect(opened.length).toBeGreaterThanOrEqual(6)
    expect(new Set(opened)).toEqual(new Set(['/tls/1.0.0']))
  })
})

describe('phalanx local --nats-url', () => {
  it("connects every node to that control plane, and the run's own operator key drives chaos", async () => {
    const out = mkdtempSync(join(tmpdir(), 'phalanx-local-nats-'))
    onTestFinished(() => rmSync(out, { recursive: true, force: true }))
    const cluster = `localnats${randomUUID().slice(0, 8)}`
    const conn = connectControl({
      servers: SHARED_NATS_URL,
      cluster,
      name: 'local-observer',
      log: pino({ level: 'silent' }),
    })
    const seen = new Set<string>()
    const waiters = new Waiters()
    const watch = await watchTelemetry({
      conn,
      onEvent: (event) => {
        seen.add(event.nodeId)
        waiters.wake()
      },
    })
    const nodeIds = ['server-0', 'server-1', 'server-2', 'server-3', 'worker-0', 'worker-1', 'worker-2']
    try {
      const run = runCli(
        [
          'local',
          ...['--servers', '4', '--byzantine-servers', '1', '--workers', '3', '--byzantine-workers', '0'],
          ...['--model', 'logistic', '--rounds', '200', '--eval-every', '50', '--checkpoint-every', '0'],
          ...['--nats-url', SHARED_NATS_URL, '--cluster', cluster, '--chaos', 'true', '--out', out],
        ],
        { timeoutMs: 240_000 },
      )
      // Every node reports on the control plane (before this, local mode dropped the URL).
      await waiters.until(
        () => nodeIds.every((id) => seen.has(id)),
        180_000,
        () => new Error(`telemetry from ${[...seen].join(', ')} only`),
      )
      const chaos = (extra: string[]) =>
        runCli(['chaos', 'kill', 'server-0', '--nats-url', SHARED_NATS_URL, '--cluster', cluster, ...extra], {
          timeoutMs: 60_000,
          env: { PHALANX_OPERATOR_KEY: '' },
        })
      // Without the key the command does not even dial; with another key the node refuses.
      const unsigned = await chaos([])
      expect(unsigned.code).toBe(2)
      expect(unsigned.stderr).toMatch(/needs the operator key/)
      const otherKeyFile = join(out, 'other.pem')
      await writeOperatorKey(otherKeyFile, generateOperatorKey())
      const refused = await chaos(['--operator-key', otherKeyFile])
      expect(refused.code).toBe(1)
      expect(refused.stderr).toMatch(/ControlRecordRejectedError|not signed by the operator key/)
      // With the run's own key (operator.pem in the out dir) the node obeys: the Byzantine server
      // killed mid-run (F = 1, and local mode lets only a Byzantine node die), the run completes.
      const killed = await chaos(['--operator-key', join(out, 'operator.pem')])
      expect(killed.stdout).toContain('server-0 acknowledged kill')
      const result = await run
      expect(result.code, result.stderr).toBe(0)
      // The report marks the command on the round axis: the node reported it before it died.
      expect(readFileSync(join(out, 'report.html'), 'utf8')).toContain('server-0: kill')
    } finally {
      watch.stop()
      const nc = await conn.connected()
      const jsm = await jetstreamManager(nc)
      for (const stream of [`KV_phalanx-${cluster}-members`, `KV_phalanx-${cluster}-joins`]) {
        await jsm.streams.delete(stream).catch(() => undefined)
      }
      await conn.close()
    }
  })
})
