/**
 * The SMR baseline end to end: `phalanx local --replication smr` (real processes, libp2p on
 * loopback, real TensorFlow.js) with its gradient log on a real 3-node JetStream cluster started
 * here. Replicas must hold bit-identical models every round, training must improve accuracy, and
 * killing the log's Raft leader mid-run must not stop training. Needs the built CLI (`npx tsc -b`).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, stderrProblems } from './support/cli.js'
import { type NatsClusterHandle, startNatsCluster, waitForJetStream } from './support/nats.js'

const CLUSTER = 'smr-test'
const ROUNDS = 40
const KILL_AT_ROUND = 10
const servers = ['server-0', 'server-1', 'server-2']

interface AppliedRound {
  round: number
  modelSha256: string
  gradientSenders: string[]
}

/** The rounds a replica logged as applied (`smr round applied` lines of its log). */
function appliedRounds(logFile: string): AppliedRound[] {
  if (!existsSync(logFile)) return []
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"smr round applied"'))
    .map((line) => JSON.parse(line) as AppliedRound)
}

/** Resolves once `server-0` has applied `round`; pino writes the line as the round completes. */
async function untilApplied(logFile: string, round: number, run: Promise<unknown>): Promise<void> {
  let finished = false
  void run.finally(() => {
    finished = true
  })
  while (!appliedRounds(logFile).some((applied) => applied.round >= round)) {
    if (finished) throw new Error(`the run ended before ${logFile} applied round ${round}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** Name of the nats-server that leads the gradient stream's Raft group. */
async function streamLeader(urls: readonly string[]): Promise<string | undefined> {
  const nc = await connect({ servers: [...urls], name: 'test-smr-leader-probe' })
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 })
    return (await jsm.streams.info(`phalanx-${CLUSTER}-gradients`)).cluster?.leader
  } finally {
    await nc.close()
  }
}

describe('phalanx local --replication smr', () => {
  let nats: NatsClusterHandle
  let out: string

  beforeAll(async () => {
    out = mkdtempSync(join(tmpdir(), 'phalanx-smr-test-'))
    nats = await startNatsCluster({ size: 3 })
    await waitForJetStream(nats.urls)
  })

  afterAll(async () => {
    await nats?.dispose()
    if (out !== undefined) rmSync(out, { recursive: true, force: true })
  })

  it.each([
    [['--replication', 'smr'], /smrNatsUrl.*required by replication "smr"/],
    [['--replication', 'smr', '--smr-nats-url', 'nats://127.0.0.1:1', '--smr-replicas', '0'], /smrReplicas/],
  ])('refuses %j at start-up, naming the field', async (args, message) => {
    const result = await runCli(['local', ...args], { timeoutMs: 60_000 })
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(message)
  })

  it('trains with bit-identical replicas, and goes on after the log’s Raft leader is killed', async () => {
    const run = runCli(
      [
        'local',
        ...['--replication', 'smr', '--smr-nats-url', nats.urls.join(','), '--cluster', CLUSTER],
        ...['--servers', '3', '--byzantine-servers', '0'],
        ...['--workers', '5', '--byzantine-workers', '1', '--worker-attack', 'sign-flip', '--rule', 'median'],
        ...['--model', 'logistic', '--rounds', String(ROUNDS), '--eval-every', '5'],
        ...['--learning-rate', '0.5', '--momentum', '0', '--seed', '3', '--out', out],
      ],
      { timeoutMs: 280_000 },
    )
    const server0Log = join(out, 'logs', 'server-0.log')
    await untilApplied(server0Log, KILL_AT_ROUND, run)
    const leader = await streamLeader(nats.urls)
    const victim = nats.servers.find((server) => server.name === leader)
    expect(victim).toBeDefined()
    await victim!.kill('SIGKILL')
    const killedAfter = Math.max(...appliedRounds(server0Log).map((applied) => applied.round))

    const result = await run
    expect(stderrProblems(result.stderr)).toEqual([])
    expect(result.code).toBe(0)
    // The killed node was still the leader when it died well before the end: the rest of the run
    // went through a Raft election on the two survivors.
    expect(killedAfter).toBeLessThan(ROUNDS - 5)
    const newLeader = await streamLeader(nats.urls.filter((url) => url !== victim!.url))
    expect(newLeader).toBeDefined()
    expect(newLeader).not.toBe(leader)

    const byReplica = servers.map((nodeId) => appliedRounds(join(out, 'logs', `${nodeId}.log`)))
    for (const applied of byReplica) {
      expect(applied.map((a) => a.round)).toEqual(Array.from({ length: ROUNDS }, (_, round) => round))
    }
    for (let round = 0; round < ROUNDS; round++) {
      const [first, ...others] = byReplica.map((applied) => applied[round]!)
      // Same gradients in the same order, hence the same model bytes (sha256 of the float32s).
      expect(first!.gradientSenders).toHaveLength(4)
      for (const other of others) {
        expect(other.gradientSenders).toEqual(first!.gradientSenders)
        expect(other.modelSha256).toBe(first!.modelSha256)
      }
    }

    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'))
    expect(summary.rounds).toBe(ROUNDS)
    const accuracies = readFileSync(join(out, 'rounds.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',')[1])
      .filter((cell) => cell !== undefined && cell !== '')
      .map(Number)
    // Chance is 10% on ten digits; logistic regression reaches ~80% here in 40 such rounds.
    expect(accuracies.at(-1)).toBeGreaterThan(accuracies[0]!)
    expect(summary.honestAccuracy).toBeGreaterThan(0.7)
  })
})
