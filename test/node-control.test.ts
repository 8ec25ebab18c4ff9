/**
 * The node processes on the control plane: a small real cluster (3 servers, 2 workers, libp2p on
 * loopback, one `phalanx server|worker` process each) connected to its own nats-server with a
 * password. Telemetry must arrive on NATS, `/metrics` must parse, and chaos commands must be obeyed
 * by nodes started with chaos on and refused by the others. Membership changes only through the
 * operator's signed records (`phalanx admit|evict --operator-key`): what an outsider writes into
 * the members bucket is applied by no node and counted on its `/metrics`. Needs the built CLI
 * (`npx tsc -b`).
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Kvm } from '@nats-io/kv'
import { connect } from '@nats-io/transport-node'
import type { TelemetryEvent } from '@phalanx/control'
import {
  encodeControlRecord,
  generateOperatorKey,
  loadOperatorKey,
  parseNatsServers,
  signAdmitRecord,
  signControlRecord,
  signEvictRecord,
} from '@phalanx/control'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './support/cli.js'
import { startTestCluster, type TestCluster } from './support/cluster.js'
import { freePorts } from './support/nats.js'
import { fastTrainingEnv } from './support/node-cluster.js'
import { parsePrometheusText } from './support/prometheus.js'

const CLUSTER = 'ctl-test'
const NATS_USER = 'phalanx'
const NATS_PASSWORD = 'sekret-pw-4711'
const servers = ['server-0', 'server-1', 'server-2']
const workers = ['worker-0', 'worker-1']

describe('node processes on the NATS control plane', () => {
  let cluster: TestCluster
  let natsUrl: string
  let events: readonly TelemetryEvent[]
  let opsPort: number
  const peerIds = new Map<string, string>()

  const telemetryUntil = (predicate: (seen: readonly TelemetryEvent[]) => boolean, timeoutMs = 60_000) =>
    cluster.until(predicate, timeoutMs)
  const latestRound = (nodeId: string): number => cluster.latestRound(nodeId)
  const logUntil = (nodeId: string, pattern: RegExp) => cluster.logUntil(nodeId, pattern)
  const chaos = (...args: string[]) => cluster.chaos(...args)
  const operatorKey = () => ['--operator-key', cluster.operatorKeyFile]
  /** `phalanx_control_rejected_total` of server-0, by `kind/reason`. */
  const rejectedOnServer0 = async (): Promise<Record<string, number>> => {
    const families = parsePrometheusText(await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text())
    const counts: Record<string, number> = {}
    for (const sample of families.get('phalanx_control_rejected_total')?.samples ?? []) {
      counts[`${sample.labels.kind}/${sample.labels.reason}`] = sample.value
    }
    return counts
  }

  beforeAll(async () => {
    ;[opsPort] = (await freePorts(1)) as [number]
    cluster = await startTestCluster({
      cluster: CLUSTER,
      servers: servers.length,
      workers: workers.length,
      natsCredentials: { user: NATS_USER, password: NATS_PASSWORD },
      env: {
        PHALANX_BYZANTINE_SERVERS: '0',
        PHALANX_BYZANTINE_WORKERS: '0',
        ...fastTrainingEnv,
        PHALANX_OPS_HOST: '127.0.0.1',
      },
      nodeEnv: {
        'server-0': { PHALANX_OPS_PORT: String(opsPort) },
        // server-1 runs with chaos off: it must refuse every command.
        'server-1': { PHALANX_CHAOS: 'false' },
      },
    })
    natsUrl = cluster.natsUrl
    events = cluster.events
    for (const [nodeId, peerId] of cluster.peerIds) peerIds.set(nodeId, peerId)
  })

  afterAll(async () => {
    await cluster?.stop()
  })

  it('publishes every node’s per-round telemetry on NATS, and `phalanx watch` tabulates it', async () => {
    const watched = runCli(['watch', '--nats-url', natsUrl, '--cluster', CLUSTER, '--duration-ms', '4000'], {
      timeoutMs: 60_000,
    })
    const everyone = [...servers, ...workers]
    await telemetryUntil((seen) => everyone.every((id) => seen.some((e) => e.nodeId === id && e.round >= 2)))

    const ofServer = events.filter((event) => event.nodeId === 'server-0')
    expect(ofServer.every((event) => event.role === 'server')).toBe(true)
    expect(events.filter((event) => event.nodeId === 'worker-1').every((e) => e.role === 'worker')).toBe(true)
    // One event per round, in order: rounds 0, 1, 2 … with nothing skipped.
    expect(ofServer.slice(0, 3).map((event) => event.round)).toEqual([0, 1, 2])
    expect(ofServer[0]!.roundDurationSeconds).toBeGreaterThan(0)
    // Servers report their spread against the models they received (two honest peers here).
    expect(ofServer.some((event) => event.drift !== undefined)).toBe(true)

    const result = await watched
    expect(result.code).toBe(0)
    const rows = result.stdout.trim().split('\n\n').at(-1)!.split('\n')
    expect(rows[0]).toMatch(/^NODE\s+ROLE\s+ROUND/)
    expect(rows.slice(1).map((row) => row.split(/\s+/)[0])).toEqual(everyone)
  })

  it('serves /metrics in the Prometheus text format, and /readyz once it runs rounds', async () => {
    const ops = `http://127.0.0.1:${opsPort}`
    const metrics = await fetch(`${ops}/metrics`)
    expect(metrics.status).toBe(200)
    const families = parsePrometheusText(await metrics.text())
    const rounds = families.get('phalanx_rounds_total')
    expect(rounds?.type).toBe('counter')
    expect(rounds!.samples[0]!.value).toBeGreaterThanOrEqual(1)
    expect(families.get('phalanx_round_duration_seconds')?.type).toBe('histogram')
    expect(families.get('phalanx_nats_disconnects_total')?.samples[0]?.value).toBe(0)
    expect((await fetch(`${ops}/readyz`)).status).toBe(200)
    expect((await fetch(`${ops}/healthz`)).status).toBe(200)
  })

  it('never writes the NATS password to a node log', () => {
    for (const nodeId of [...servers, ...workers]) {
      const log = readFileSync(join(cluster.work, `${nodeId}.log`), 'utf8')
      expect(log).toContain('NATS connected')
      expect(log).not.toContain(NATS_PASSWORD)
    }
  })

  it('refuses chaos commands on a node started without chaos', async () => {
    const result = await runCli(
      ['chaos', 'kill', 'server-1', '--nats-url', natsUrl, '--cluster', CLUSTER, ...operatorKey()],
      { timeoutMs: 60_000 },
    )
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/ChaosRefusedError: node server-1 refused "kill".*chaos is disabled/)
    expect(cluster.node('server-1').process.exitCode).toBeNull()
    expect(cluster.node('server-1').process.signalCode).toBeNull()
  })

  it.each([
    [['chaos', 'corrupt', 'server-0'], 2, /corrupt needs --attack/],
    [['chaos', 'partition', 'server-0'], 2, /partition needs --duration-ms/],
    // commander's own refusals are usage errors too: the same code as every other wrong input.
    [
      ['chaos', 'corrupt', 'worker-0', '--attack', 'sign-flip', '--strength', 'ten'],
      2,
      /--strength <number>' argument 'ten' is invalid\. a finite number/,
    ],
    [['chaos', 'explode', 'server-0'], 2, /value 'explode' is invalid for argument 'kind'/],
    // Nothing listens on port 1: the command fails with the reason instead of waiting forever.
    [
      ['chaos', 'kill', 'server-0', '--nats-url', 'nats://127.0.0.1:1', '--connect-timeout-ms', '500'],
      1,
      /NotConnectedError/,
    ],
  ])('`phalanx %j` fails with exit code %i and says why', async (args, code, message) => {
    const result = await runCli([...args, '--cluster', CLUSTER, ...operatorKey()], { timeoutMs: 60_000 })
    expect(result.code).toBe(code)
    expect(result.stderr).toMatch(message)
  })

  it('reports a command the node cannot carry out', async () => {
    const result = await runCli(
      [
        'chaos',
        'corrupt',
        'server-0',
        '--attack',
        'no-such-attack',
        '--nats-url',
        natsUrl,
        '--cluster',
        CLUSTER,
        ...operatorKey(),
      ],
      { timeoutMs: 60_000 },
    )
    expect(result.code).toBe(1)
    expect(result.stderr).toMatch(/ChaosRefusedError: node server-0 refused "corrupt".*failed to execute/)
  })

  it('pauses a worker at its next round boundary, which stalls the servers, and resumes it', async () => {
    const paused = await chaos('pause', 'worker-0')
    expect(paused.stdout.trim()).toBe('worker-0 acknowledged pause')
    const atPause = latestRound('worker-0')
    // Progress that does not happen cannot be awaited: look again after a while. Unpaused, this
    // cluster ran ~13 rounds/s on the 2-core development host, ~27 rounds in this time.
    await new Promise((resolve) => setTimeout(resolve, 2_000))
    // worker-0 finishes the round it is in; the servers need its gradient (f = 0) to pass the next.
    const stalledAt = latestRound('server-0')
    expect(latestRound('worker-0')).toBeLessThanOrEqual(atPause + 2)
    expect(stalledAt).toBeLessThanOrEqual(atPause + 3)

    const resumed = await chaos('resume', 'worker-0')
    expect(resumed.stdout.trim()).toBe('worker-0 acknowledged resume')
    await telemetryUntil(() => latestRound('server-0') > stalledAt + 3)
  })

  it('corrupt switches a server to an attack at run time, which its peers measure and suspect', async () => {
    const corrupted = peerIds.get('server-0')!
    const distancesTo = (seen: readonly TelemetryEvent[], fromRound: number) =>
      seen
        .filter((e) => e.nodeId === 'server-1' && e.round > fromRound)
        .map((e) => e.modelDistances?.[corrupted] ?? 0)
    // Same gradients (f = 0, all of them aggregated) and the same median: honest distance is tiny.
    const honestDistance = Math.max(...distancesTo(events, -1))
    const from = latestRound('server-1')
    const result = await chaos('corrupt', 'server-0', '--attack', 'reversed')
    expect(result.stdout.trim()).toBe('server-0 acknowledged corrupt')
    await telemetryUntil((seen) =>
      distancesTo(seen, from).some((distance) => distance > Math.max(10 * honestDistance, 1e-3)),
    )
    await telemetryUntil((seen) =>
      seen.some(
        (e) =>
          e.nodeId === 'server-1' &&
          e.round > from &&
          e.suspicions.some((s) => s.suspect === corrupted && s.reason === 'model_far_from_median'),
      ),
    )

    const restored = await chaos('corrupt', 'server-0', '--attack', 'none')
    expect(restored.stdout.trim()).toBe('server-0 acknowledged corrupt')
  })

  it('`phalanx admit` and `phalanx evict` change the member set, and running nodes apply them', async () => {
    const newcomer = '12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv'
    const connection = ['--nats-url', natsUrl, '--cluster', CLUSTER, ...operatorKey()]
    const admitted = await runCli(
      [
        'admit',
        'worker-9',
        newcomer,
        '--role',
        'worker',
        '--multiaddr',
        '/ip4/127.0.0.1/tcp/4001',
        ...connection,
      ],
      { timeoutMs: 60_000 },
    )
    expect(admitted.stderr).toBe('')
    expect(admitted.stdout).toMatch(
      new RegExp(`^admitted worker-9 \\(${newcomer}\\) as worker at revision \\d+`),
    )
    for (const nodeId of ['server-0', 'worker-1']) {
      expect(
        await logUntil(
          nodeId,
          /"change":"admit","peerId":"\w+","revision":\d+,"msg":"membership change applied"/,
        ),
      ).toMatch(
        new RegExp(
          `"change":"admit","peerId":"${newcomer}","revision":\\d+,"msg":"membership change applied"`,
        ),
      )
    }
    const evicted = await runCli(['evict', newcomer, ...connection], { timeoutMs: 60_000 })
    expect(evicted.stdout.trim()).toBe(`evicted ${newcomer}`)
    expect(await logUntil('server-0', /"change":"evict"/)).toMatch(
      new RegExp(`"change":"evict","peerId":"${newcomer}","revision":\\d+,"msg":"membership change applied"`),
    )
  })

  it.each([
    ['admit', 'worker-9', '12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv', '--role', 'worker'],
    ['evict', '12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv'],
  ])('`phalanx %s` without the operator key fails before it connects', async (...args) => {
    // Nothing listens on port 1: a command that dialled would fail with NotConnectedError instead.
    const result = await runCli([...args, '--nats-url', 'nats://127.0.0.1:1', '--cluster', CLUSTER], {
      env: { PHALANX_OPERATOR_KEY: '' },
      timeoutMs: 60_000,
    })
    expect(result.code).toBe(2)
    expect(result.stderr.trim()).toMatch(
      /^phalanx (admit|evict): needs the operator key: --operator-key FILE or PHALANX_OPERATOR_KEY/,
    )
    expect(result.stderr).not.toMatch(/NotConnectedError/)
  })

  it('`phalanx keygen` writes a key the admit command can use, prints its public key, and never overwrites one', async () => {
    const file = join(cluster.work, 'keygen', 'operator.pem')
    const made = await runCli(['keygen', '--out', file], { timeoutMs: 60_000 })
    expect(made.code).toBe(0)
    const publicKey = made.stdout.trim()
    expect(publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(made.stderr).toContain(`PHALANX_OPERATOR_PUBLIC_KEY=${publicKey}`)
    expect((await loadOperatorKey(file)).publicKey).toBe(publicKey)
    const again = await runCli(['keygen', '--out', file], { timeoutMs: 60_000 })
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/OperatorKeyError: .* exists: an operator key is never overwritten/)
    expect((await loadOperatorKey(file)).publicKey).toBe(publicKey)
    expect(existsSync(file)).toBe(true)
  })

  it('applies nothing an outsider writes into the members bucket, counts each on /metrics by reason, and refuses a server beyond N', async () => {
    const before = await rejectedOnServer0()
    // Anyone holding the shared NATS password (today every pod has it) can write the bucket.
    const { servers: natsServers } = parseNatsServers(natsUrl)
    const outsider = await connect({
      servers: natsServers,
      user: NATS_USER,
      pass: NATS_PASSWORD,
      name: 'outsider',
    })
    try {
      const members = await new Kvm(outsider).open(`phalanx-${CLUSTER}-members`)
      const sybil = (i: number) => ({
        peerId: `12D3KooWSybi${i}AaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv`,
        nodeId: `server-${10 + i}`,
        role: 'server' as const,
        multiaddrs: [],
      })
      // The attack of issue #12: a bare Member JSON claiming the server role …
      await members.put(sybil(1).peerId, new TextEncoder().encode(JSON.stringify(sybil(1))))
      // … a record signed by a key that is not the operator's …
      await members.put(
        sybil(2).peerId,
        encodeControlRecord(signAdmitRecord(generateOperatorKey(), { cluster: CLUSTER, member: sybil(2) })),
      )
      // … an operator record that expired …
      const operator = cluster.operatorKey
      const expired = signControlRecord(operator, {
        cluster: CLUSTER,
        action: { kind: 'admit', member: sybil(3) },
        issuedAtMs: Date.now() - 10_000,
        lifetimeMs: 1_000,
      })
      await members.put(sybil(3).peerId, encodeControlRecord(expired))
      // … and a genuine admit replayed over the operator's later eviction.
      const admit = signAdmitRecord(operator, {
        cluster: CLUSTER,
        member: { ...sybil(4), role: 'worker', nodeId: 'worker-44' },
      })
      await members.put(sybil(4).peerId, encodeControlRecord(admit))
      await members.put(
        sybil(4).peerId,
        encodeControlRecord(signEvictRecord(operator, { cluster: CLUSTER, peerId: sybil(4).peerId })),
      )
      await members.put(sybil(4).peerId, encodeControlRecord(admit))
      // A bare delete of an honest server.
      await members.delete(peerIds.get('server-1')!)
      await outsider.flush()

      // A 4th server, admitted by the operator itself, for N = 3: refused until one is evicted.
      const fourth = await runCli(
        [
          'admit',
          'server-3',
          sybil(5).peerId,
          '--role',
          'server',
          '--nats-url',
          natsUrl,
          '--cluster',
          CLUSTER,
          ...operatorKey(),
        ],
        { timeoutMs: 60_000 },
      )
      expect(fourth.code).toBe(0)

      const expected = {
        'unknown/malformed': 1,
        'admit/bad_signature': 1,
        'admit/expired': 1,
        'admit/replayed': 1,
        'evict/malformed': 1,
        'admit/not_allowed': 1,
      }
      const grew = (now: Record<string, number>) =>
        Object.entries(expected).every(([key, count]) => (now[key] ?? 0) - (before[key] ?? 0) >= count)
      const deadline = Date.now() + 30_000
      let now = await rejectedOnServer0()
      while (!grew(now) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200))
        now = await rejectedOnServer0()
      }
      expect(
        Object.fromEntries(Object.keys(expected).map((key) => [key, (now[key] ?? 0) - (before[key] ?? 0)])),
      ).toEqual(expected)
      // Nothing of it was applied: no Sybil server became a member of server-0, and server-1 is still
      // one (N − F = 3 of 3: without it server-0 would pass no round).
      const applied = readFileSync(join(cluster.work, 'server-0.log'), 'utf8')
        .split('\n')
        .filter((line) => line.includes('"msg":"membership change applied"'))
      for (const i of [1, 2, 3, 5])
        expect(applied.filter((line) => line.includes(sybil(i).peerId))).toEqual([])
      expect(applied.filter((line) => line.includes(peerIds.get('server-1')!))).toEqual([])
      const at = latestRound('server-0')
      await telemetryUntil(() => latestRound('server-0') > at + 3)
    } finally {
      await outsider.close()
    }
  })

  it('partitions a server from every peer for a while, then heals and the cluster goes on', async () => {
    const before = latestRound('server-1')
    const result = await chaos('partition', 'server-0', '--duration-ms', '2000')
    expect(result.stdout.trim()).toBe('server-0 acknowledged partition')
    // Last of the training checks: a message lost while connections are re-established can
    // leave a server one round behind for good (peers republish only their latest round).
    // N−F = 3 of 3 servers: nobody passes a round without server-0, so progress means it healed.
    await telemetryUntil(() => latestRound('server-1') > before + 3 && latestRound('server-0') > before + 3)
    // It was connected to the two other servers and both workers, and redialed all four.
    const log = await logUntil('server-0', /"msg":"partition healed"/)
    expect(log).toMatch(/"peers":4,"msg":"partitioned: refusing every peer"/)
    expect(log).toMatch(/"redialed":4,"failed":0,"msg":"partition healed"/)
  })

  it('`phalanx chaos kill server-2` is acknowledged, then the process dies', async () => {
    const result = await runCli(
      ['chaos', 'kill', 'server-2', '--nats-url', natsUrl, '--cluster', CLUSTER, ...operatorKey()],
      { timeoutMs: 60_000 },
    )
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout.trim()).toBe('server-2 acknowledged kill')
    expect(await cluster.node('server-2').exited).toEqual({ code: null, signal: 'SIGKILL' })
  })
})
