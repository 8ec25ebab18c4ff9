/**
 * Every Byzantine behaviour of the brief against a real cluster (one process per node, libp2p on
 * loopback): the Byzantine workers or server are switched from one attack to the next at run time
 * with `phalanx chaos corrupt`, so one cluster start (the expensive part on two cores) serves a
 * whole table of attacks. Label flipping poisons a shard before training, so it is the attack the
 * workers start with.
 *
 * Numbers the thresholds come from (logistic regression on the embedded MNIST, η = 0.5, 7
 * workers, 2 of them Byzantine, single-process reference `phalanx simulate`, 20 rounds): every
 * attack leaves the coordinate-wise median at 77–83%; plain averaging falls to 8% under the
 * Gaussian attack (σ = 200) and keeps 73–83% under the others at these magnitudes (the brief's
 * sign flip and IPM with ε = 0.5 only shrink the mean when 2 of 7 send them).
 */
import type { TelemetryEvent } from '@phalanx/control'
import { serverAttackNames, workerAttackNames } from '@phalanx/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { accuracyAfter, startTestCluster, type TestCluster } from './support/cluster.js'

/** Rounds each attack runs before its accuracy is read: past one evaluation after the switch. */
const ROUNDS_PER_ATTACK = 6
/** The robust rule's floor: the reference run's worst case (76.7%) less a margin for 6 rounds. */
const ROBUST_FLOOR = 0.7

const trainingEnv = {
  PHALANX_MODEL: 'logistic',
  PHALANX_DATASET: 'mnist',
  PHALANX_LEARNING_RATE: '0.5',
  PHALANX_MOMENTUM: '0',
  PHALANX_EVAL_EVERY: '2',
  PHALANX_ROUNDS: '3000',
  PHALANX_SEED: '5',
}

/** Waits `rounds` rounds past `from` on every listed server and an evaluation after `from`. */
async function runFor(cluster: TestCluster, servers: readonly string[], from: number, rounds: number) {
  await cluster.until((seen) =>
    servers.every((id) =>
      seen.some((e) => e.nodeId === id && e.round >= from + rounds && e.accuracy !== undefined),
    ),
  )
  return accuracyAfter(cluster.events, servers, from + 2)
}

const rejectedSince = (events: readonly TelemetryEvent[], nodeId: string, from: number, reason: string) =>
  events
    .filter((e) => e.nodeId === nodeId && e.round >= from)
    .reduce((total, e) => total + (e.rejected[reason] ?? 0), 0)

describe('worker attacks on a real cluster', () => {
  const servers = ['server-0', 'server-1']
  const byzantineWorkers = ['worker-0', 'worker-1']

  const startWorkerCluster = (rule: string) =>
    startTestCluster({
      cluster: `attacks-${rule}`,
      servers: servers.length,
      workers: 7,
      env: {
        ...trainingEnv,
        PHALANX_BYZANTINE_SERVERS: '0',
        PHALANX_BYZANTINE_WORKERS: String(byzantineWorkers.length),
        PHALANX_WORKER_ATTACK: 'label-flip',
        PHALANX_RULE: rule,
      },
    })

  /** Switches both Byzantine workers to `attack` and returns the server round it took effect by. */
  const switchTo = async (cluster: TestCluster, attack: string): Promise<number> => {
    for (const worker of byzantineWorkers) {
      expect((await cluster.chaos('corrupt', worker, '--attack', attack)).code).toBe(0)
    }
    return Math.max(...servers.map((id) => cluster.latestRound(id)))
  }

  /**
   * Non-finite and equivocating vectors are the sender's fault: each costs it application score
   * and after eight it is graylisted, i.e. silent for the rest of the run. So they come last;
   * that the data plane rejects them by reason is proven in net-validation.test.ts.
   */
  const penalised = new Set(['non-finite', 'equivocation'])
  const runtimeAttacks = [
    ...workerAttackNames.filter((name) => name !== 'none' && name !== 'label-flip' && !penalised.has(name)),
    ...penalised,
  ]

  describe('the coordinate-wise median keeps accuracy under every attack', () => {
    let cluster: TestCluster
    beforeAll(async () => {
      cluster = await startWorkerCluster('median')
    })
    afterAll(async () => {
      await cluster?.stop()
    })

    it('label-flip (from the start)', async () => {
      // 20 rounds: at round 12 a clean CI run measured 63.9% (the two poisoned shards slow the start).
      const accuracy = await runFor(cluster, servers, 0, 20)
      for (const id of servers) expect(accuracy.get(id)).toBeGreaterThan(ROBUST_FLOOR)
    })

    // Every other attack of the config's list, switched on at run time.
    it.each(runtimeAttacks)('%s', async (attack) => {
      const from = await switchTo(cluster, attack)
      const accuracy = await runFor(cluster, servers, from, ROUNDS_PER_ATTACK)
      for (const id of servers) expect(accuracy.get(id)).toBeGreaterThan(ROBUST_FLOOR)
    })
  })

  describe('plain averaging', () => {
    let cluster: TestCluster
    beforeAll(async () => {
      cluster = await startWorkerCluster('average')
      await runFor(cluster, servers, 0, 10)
    })
    afterAll(async () => {
      await cluster?.stop()
    })

    it('collapses under the Gaussian attack that the median shrugs off', async () => {
      const from = await switchTo(cluster, 'gaussian')
      const accuracy = await runFor(cluster, servers, from, ROUNDS_PER_ATTACK)
      // Ten classes: a model of σ = 200 noise is at chance level.
      for (const id of servers) expect(accuracy.get(id)).toBeLessThan(0.3)
    })
  })
})

describe('server attacks on a real cluster', () => {
  // N = 4, F = 1: server-0 is the Byzantine one. No Byzantine worker and plain averaging, so
  // every honest server aggregates the same 4 gradients: honest models can then differ only by
  // float summation order, and the median of 3 models with at least 2 honest ones lies inside the
  // honest range. Whatever server-0 sends, honest drift must stay at rounding level.
  const honest = ['server-1', 'server-2', 'server-3']
  const DRIFT_BOUND = 1e-3
  const grossModelAttacks = new Set(['random', 'reversed', 'scaled', 'drop-coordinates'])
  let cluster: TestCluster

  beforeAll(async () => {
    cluster = await startTestCluster({
      cluster: 'server-attacks',
      servers: 4,
      workers: 4,
      env: {
        ...trainingEnv,
        PHALANX_BYZANTINE_SERVERS: '1',
        PHALANX_SERVER_ATTACK: 'none',
        PHALANX_BYZANTINE_WORKERS: '0',
        PHALANX_WORKER_ATTACK: 'none',
        PHALANX_RULE: 'average',
      },
    })
    await runFor(cluster, honest, 0, 10)
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  it.each(serverAttackNames.filter((name) => name !== 'none'))(
    '%s: honest accuracy holds and honest drift stays at rounding level',
    async (attack) => {
      expect((await cluster.chaos('corrupt', 'server-0', '--attack', attack)).code).toBe(0)
      const from = Math.max(...honest.map((id) => cluster.latestRound(id)))
      const accuracy = await runFor(cluster, honest, from, ROUNDS_PER_ATTACK)
      for (const id of honest) expect(accuracy.get(id)).toBeGreaterThan(ROBUST_FLOOR)
      const during = cluster.events.filter((e) => honest.includes(e.nodeId) && e.round > from)
      const honestPeers = new Set(honest.map((id) => cluster.peerIds.get(id)))
      const honestDistances = during.flatMap((e) =>
        Object.entries(e.modelDistances ?? {})
          .filter(([peer]) => honestPeers.has(peer))
          .map(([, distance]) => distance),
      )
      expect(honestDistances.length).toBeGreaterThan(0)
      expect(Math.max(...honestDistances)).toBeLessThan(DRIFT_BOUND)
      // Guards the test itself: an attack that changed nothing would pass the checks above.
      const byzantine = cluster.peerIds.get('server-0')
      const suspected = during.some((e) => e.suspicions.some((s) => s.suspect === byzantine))
      const equivocations = honest.map((id) => rejectedSince(cluster.events, id, from, 'equivocation'))
      if (attack === 'equivocation') for (const seen of equivocations) expect(seen).toBeGreaterThan(0)
      // Models far from every honest one must be flagged. `stale` and `shift` send models a few
      // rounds' progress away, which may or may not reach an honest server before its quorum
      // closes; a crashed server sends nothing. For those the accuracy and drift checks stand.
      if (grossModelAttacks.has(attack)) expect(suspected).toBe(true)
    },
  )
})
