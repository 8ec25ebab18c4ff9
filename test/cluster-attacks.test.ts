/**
 * Every Byzantine behaviour of the brief against a real cluster (one process per node, libp2p on
 * loopback). The robust cluster's Byzantine workers are switched from one attack to the next at
 * run time with `phalanx chaos corrupt`, so one cluster start (the expensive part on two cores)
 * serves a whole table of attacks. Label flipping poisons a shard before training, so it is the
 * attack the workers start with.
 *
 * Each vector attack runs at the strength in `STRENGTHS` on both the robust and the averaging
 * clusters. Reference numbers (single process, `phalanx simulate --model logistic --dataset
 * mnist --learning-rate 0.5 --momentum 0 --workers 7 --byzantine-workers 2 --rounds 20
 * --eval-every 2 --seed 5 --rule <rule> --worker-attack <attack> [--<strength flag> <x>]`),
 * accuracy after 20 rounds (docs/BENCHMARKS.md has the whole sweep):
 *
 * | attack       | strength                     | average | median |
 * | ------------ | ---------------------------- | ------- | ------ |
 * | none         |                              |   83.3% |  82.3% |
 * | sign-flip    | signFlipScale 1 (default)    |   79.6% |  79.2% |
 * | sign-flip    | signFlipScale 10             |    9.8% |  78.6% |
 * | ipm          | ipmEpsilon 0.5 (default)     |   80.9% |  79.7% |
 * | ipm          | ipmEpsilon 10                |    9.8% |  78.6% |
 * | gaussian     | gaussianSigma 200 (default)  |   11.4% |  79.1% |
 * | alie         | paper z ≈ 0.57 (default)     |   83.1% |  83.3% |
 * | alie         | alieZ 100                    |    9.9% |  83.3% |
 * | hidden-shift | hiddenShiftScale 1 (default) |   82.6% |  82.6% |
 * | hidden-shift | hiddenShiftScale 1000        |   10.0% |  82.6% |
 * | hidden-shift | hiddenShiftScale 100000      |   10.3% |  82.6% |
 * | hidden-shift | 100000, hiddenShiftSign neg. |    9.9% |  82.6% |
 * | label-flip   |                              |   63.2% |  76.3% |
 * | mimic        |                              |   81.1% |  78.3% |
 *
 * With 2 of 7 Byzantine, sign flip and IPM reverse the mean only for a strength above
 * (n−f)/f = 2.5; ALIE and the hidden shift need a shift far outside the honest spread (alieZ 30
 * still left 20%, hiddenShiftScale 100 left 23%). Those strengths are far from what the attacks
 * are designed for (ALIE's point is a small z that robust rules cannot filter), but they are the
 * same family of vectors, and what the tests need: a magnitude that breaks averaging, at which
 * the median still holds.
 *
 * Once averaging has collapsed, the next attack's "falls below" on the same cluster could not
 * fail, so each attack gets a fresh averaging cluster (the cheapest one: `replication: vanilla`,
 * one server), which first has to learn (an asserted floor) before the attack is switched on.
 * Its server is configured with f = 0, the only f averaging tolerates, so it waits for all 7
 * gradients, as the reference run aggregates all 7. Configured with f = 2 it would average the
 * first 5 to arrive, and the colluding attackers, who read about half the honest gradients
 * before they craft theirs, often miss that quorum on a loaded machine: one run (load ~25)
 * kept 82% under sign flip ×10, 62% under IPM ε = 10, 44% under ALIE z = 100, 75% under the
 * hidden shift ×1000; only one Gaussian vector in a mean is needed, and it fell. That would test
 * the race, not the rule. The median cluster keeps f = 2 (`silence` would stall a quorum of 7),
 * so whether the Byzantine vectors make its servers' first 5 varies from round to round the same
 * way: the median's bound holds either way, and each phase asserts (from the servers'
 * `gradientSenders` telemetry) that Byzantine vectors were among the aggregated ones in some round.
 * In this file, at load ~26: every averaging cluster read 70.0% after the warm-up and 8.6–11.9%
 * six rounds after the switch; the median cluster read 82–88% after each attack.
 *
 * Equivocation breaks averaging once there are two servers to play against each other: each gets
 * its own version, and the test of that runs a two-server pair (averaging falls, the median
 * holds). With one server an equivocator can only hand it both versions, and the data plane
 * rejects the sender. Averaging is not vulnerable to three attacks by construction and is asserted
 * to keep its accuracy under them instead (with the equivocation at one server): `non-finite`
 * vectors are rejected by the data plane before any rule sees them (asserted through the server's
 * rejection counters, as the equivocation; each rejection is also proven in
 * net-validation.test.ts), `silence` only removes inputs, and `mimic` on iid shards sends an
 * honest gradient. Label flipping with 2 of 7 shards does not collapse averaging (63% above); it
 * makes its accuracy swing, and that is what its averaging test asserts.
 */
import type { TelemetryEvent } from '@phalanx/control'
import {
  type attackStrengthFields,
  serverAttackNames,
  workerAttackNames,
  workerBehaviours,
} from '@phalanx/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { accuracyAfter, startTestCluster, type TestCluster } from './support/cluster.js'

/** Rounds each attack runs before its accuracy is read: past one evaluation after the switch. */
const ROUNDS_PER_ATTACK = 6
/** The robust rule's floor: the reference run's worst case (76.3%) less a margin for 6 rounds. */
const ROBUST_FLOOR = 0.7
/** Averaging under attack must fall below this: ten classes, chance is 10%, the reference runs
 * at the strengths below end at 9.8–11.4%. */
const AVERAGE_CEILING = 0.3
/** What an averaging cluster must reach before the attack, so that its fall is one: the
 * reference run without attack is at 70% by round 3, the clusters read 70.0% at round 5. */
const LEARNED_FLOOR = 0.5
/**
 * Rounds an averaging cluster is given to fall below `AVERAGE_CEILING` after the switch. Six were
 * enough in the helper's runs; under CI-like load (2026-11-27, load ~28) the hidden shift ×1000
 * still read 61% six rounds in. With the sign fixed (`PHALANX_HIDDEN_SHIFT_SIGN`) every attack
 * fell at the first evaluation past the switch in the runs since; the margin stays for load.
 */
const AVERAGE_FALL_ROUNDS = 20
/** Rounds a robust phase may run before a Byzantine vector must have been aggregated. */
const BYZANTINE_EVIDENCE_ROUNDS = 40
/** Rounds an averaging cluster trains honestly before the attack is switched on. */
const WARM_UP_ROUNDS = 4
/**
 * Rounds the server is given to see a refused vector of each penalised attack: one arrives per
 * round the attacker is on time, and it is graylisted (silent) only after six refusals.
 */
const REJECTION_ROUNDS = 40

/** The strength of each vector attack, on the robust and the averaging clusters alike. */
const STRENGTHS: { readonly [attack in keyof typeof attackStrengthFields]: number } = {
  'sign-flip': 10,
  gaussian: 200,
  ipm: 10,
  alie: 100,
  'hidden-shift': 100000,
}
/**
 * The vector attacks asserted to break averaging in a real cluster. The hidden shift moves one
 * coordinate (the one of largest honest variance), so one hit disables at most what that
 * coordinate decides, and honest gradients pull it back: at ×1000 two cluster runs on
 * 2026-11-27 (load ~28) read 61% and 67% twenty rounds after the switch, where the single
 * process fell to 10%. At ×100000 a hit is not undone within the run, but which way it hits
 * matters: the attack's default moves the coordinate against the honest mean, and on a softmax
 * classifier that pushes the parameter of an under-predicted class down, which only silences
 * the class where the coordinate is lit. A CI run (2026-11-27) read 71.5% at best twenty rounds
 * after the switch, and a run here went 83% → 75% → 67% → 63% and stayed there: three classes
 * silenced, every later hit on one already silent. The single process, whose attackers start at
 * round 0 and read every honest gradient, collapses to 10% either way (`average` above). So the
 * tests fix the sign (`hiddenShiftSign: negative`: SGD raises the parameter, its class wins every
 * input it touches), as an attacker who knows the model would, for the median cluster too; two
 * cluster runs then fell to 27% and 9% at the first evaluation past the switch.
 */
const AVERAGING_FALLS_UNDER = ['sign-flip', 'gaussian', 'ipm', 'alie', 'hidden-shift'] as const
const hasStrength = (attack: string): attack is keyof typeof STRENGTHS => Object.hasOwn(STRENGTHS, attack)

const trainingEnv = {
  PHALANX_MODEL: 'logistic',
  PHALANX_DATASET: 'mnist',
  PHALANX_LEARNING_RATE: '0.5',
  PHALANX_MOMENTUM: '0',
  PHALANX_EVAL_EVERY: '2',
  PHALANX_ROUNDS: '3000',
  PHALANX_SEED: '5',
  // See `AVERAGING_FALLS_UNDER`: the direction of the hidden shift that does not depend on the
  // sign of the honest mean, for the robust and the averaging clusters alike.
  PHALANX_HIDDEN_SHIFT_SIGN: 'negative',
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
  const byzantineWorkers = ['worker-0', 'worker-1']

  /** Two servers exchanging models (N = 2, F = 0) over 7 workers, f = 2 of them Byzantine. */
  const startTwoServerCluster = (cluster: string, rule: string, workerAttack: string) =>
    startTestCluster({
      cluster,
      servers: 2,
      workers: 7,
      env: {
        ...trainingEnv,
        PHALANX_BYZANTINE_SERVERS: '0',
        PHALANX_BYZANTINE_WORKERS: String(byzantineWorkers.length),
        PHALANX_WORKER_ATTACK: workerAttack,
        PHALANX_RULE: rule,
      },
    })

  /**
   * The averaging cluster of a test: one server (`replication: vanilla`), 7 workers of which the
   * two Byzantine ones start with `workerAttack`. `quorum: 'all'` configures the server with
   * f = 0, the only f averaging tolerates, and names the Byzantine workers instead of counting
   * them (see the file's doc comment); `'n−f'` counts them, so it averages the first 5 to arrive.
   */
  const startAveragingCluster = (cluster: string, quorum: 'all' | 'n−f', workerAttack: string) =>
    startTestCluster({
      cluster,
      servers: 1,
      workers: 7,
      env: {
        ...trainingEnv,
        PHALANX_REPLICATION: 'vanilla',
        PHALANX_BYZANTINE_SERVERS: '0',
        ...(quorum === 'all'
          ? { PHALANX_BYZANTINE_WORKERS: '0', PHALANX_BYZANTINE_NODE_IDS: byzantineWorkers.join(',') }
          : { PHALANX_BYZANTINE_WORKERS: String(byzantineWorkers.length) }),
        PHALANX_WORKER_ATTACK: workerAttack,
        PHALANX_RULE: 'average',
      },
    })

  /**
   * Switches both Byzantine workers to `attack` at its strength in `STRENGTHS` and returns the
   * server round it took effect by.
   */
  const switchTo = async (
    cluster: TestCluster,
    servers: readonly string[],
    attack: string,
  ): Promise<number> => {
    const strength = hasStrength(attack) ? ['--strength', String(STRENGTHS[attack])] : []
    const results = await Promise.all(
      byzantineWorkers.map((worker) => cluster.chaos('corrupt', worker, '--attack', attack, ...strength)),
    )
    for (const result of results) expect(result.code).toBe(0)
    return Math.max(...servers.map((id) => cluster.latestRound(id)))
  }

  /**
   * Non-finite vectors cost their sender application score, and after six it is graylisted, i.e.
   * silent for the rest of the run; equivocations are refused without a penalty (the ledger
   * disarms them, see net/README). Both come last (the rejections are counted below; that the
   * data plane rejects each by reason is proven in net-validation.test.ts).
   */
  const penalised = new Set(['non-finite', 'equivocation'])
  const runtimeAttacks = [
    ...workerAttackNames.filter(
      (name) => name !== 'none' && workerBehaviours[name].runtime && !penalised.has(name),
    ),
    ...penalised,
  ]

  describe('the coordinate-wise median keeps accuracy under every attack', () => {
    const servers = ['server-0', 'server-1']
    let cluster: TestCluster
    beforeAll(async () => {
      cluster = await startTwoServerCluster('attacks-median', 'median', 'label-flip')
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
      const from = await switchTo(cluster, servers, attack)
      let accuracy = await runFor(cluster, servers, from, ROUNDS_PER_ATTACK)
      if (hasStrength(attack)) {
        // Guards the test itself: the servers take the first n−f = 5 of 7 gradients, and the
        // colluding attackers first read honest ones, so in a given round theirs may all come
        // too late. A phase in which they never made it in would prove nothing: it goes on until
        // a round aggregated one (a clean CI run saw none in six rounds under the hidden shift),
        // and the accuracy is read past that round.
        const byzantinePeers = new Set(byzantineWorkers.map((id) => cluster.peerIds.get(id)))
        const byzantineRounds = (seen: readonly TelemetryEvent[]) =>
          seen
            .filter((e) => servers.includes(e.nodeId) && e.round > from)
            .filter((e) => (e.gradientSenders ?? []).some((peer) => byzantinePeers.has(peer)))
            .map((e) => e.round)
        await cluster.until(
          (seen) =>
            byzantineRounds(seen).length > 0 ||
            servers.every((id) =>
              seen.some((e) => e.nodeId === id && e.round >= from + BYZANTINE_EVIDENCE_ROUNDS),
            ),
        )
        const rounds = byzantineRounds(cluster.events)
        expect(rounds.length).toBeGreaterThan(0)
        accuracy = await runFor(cluster, servers, Math.min(...rounds), 2)
      }
      for (const id of servers) expect(accuracy.get(id)).toBeGreaterThan(ROBUST_FLOOR)
      if (attack === 'non-finite') {
        for (const id of servers)
          expect(rejectedSince(cluster.events, id, from, 'non_finite')).toBeGreaterThan(0)
      }
    })
  })

  describe.each(AVERAGING_FALLS_UNDER)(
    'plain averaging falls under %s, which the median withstands',
    (attack) => {
      const servers = ['server-0']
      let cluster: TestCluster
      beforeAll(async () => {
        cluster = await startAveragingCluster(`attacks-average-${attack}`, 'all', 'none')
      })
      afterAll(async () => {
        await cluster?.stop()
      })

      it(`learns, then falls below ${AVERAGE_CEILING} within ${AVERAGE_FALL_ROUNDS} rounds of the switch`, async () => {
        const learned = await runFor(cluster, servers, 0, WARM_UP_ROUNDS)
        for (const id of servers) expect(learned.get(id)).toBeGreaterThan(LEARNED_FLOOR)
        const from = await switchTo(cluster, servers, attack)
        const evaluated = (e: TelemetryEvent) =>
          servers.includes(e.nodeId) && e.round >= from + 2 && e.accuracy !== undefined
        await cluster.until((seen) =>
          servers.every((id) =>
            seen.some(
              (e) =>
                evaluated(e) &&
                e.nodeId === id &&
                (e.accuracy! < AVERAGE_CEILING || e.round >= from + AVERAGE_FALL_ROUNDS),
            ),
          ),
        )
        for (const id of servers) {
          const lowest = Math.min(
            ...cluster.events.filter((e) => evaluated(e) && e.nodeId === id).map((e) => e.accuracy!),
          )
          expect(lowest).toBeLessThan(AVERAGE_CEILING)
        }
      })
    },
  )

  /**
   * The attacks averaging is not exposed to in Phalanx, asserted against it: what holds instead of
   * "averaging falls". `mimic` on iid shards and `silence` leave an average of honest gradients;
   * `equivocation` and `non-finite` vectors are stopped by the data plane before any rule runs, and
   * the server's rejection counters must show it. A non-finite vector costs its sender application
   * score, and a graylisted sender is silent (an earlier run of equivocation then non-finite, when
   * equivocations were penalised too, saw no non-finite rejection at all), so they run at once, one
   * per Byzantine worker. This server is
   * configured with f = 2 (quorum 5 of 7), so that rejected or silent senders do not stall it.
   */
  describe('plain averaging keeps accuracy under the attacks stopped before any rule', () => {
    const servers = ['server-0']
    let cluster: TestCluster
    beforeAll(async () => {
      cluster = await startAveragingCluster('attacks-average-harmless', 'n−f', 'none')
      await runFor(cluster, servers, 0, WARM_UP_ROUNDS)
    })
    afterAll(async () => {
      await cluster?.stop()
    })

    it.each(['mimic', 'silence'])('%s', async (attack) => {
      const from = await switchTo(cluster, servers, attack)
      const accuracy = await runFor(cluster, servers, from, ROUNDS_PER_ATTACK)
      for (const id of servers) expect(accuracy.get(id)).toBeGreaterThan(ROBUST_FLOOR)
    })

    it('equivocation (worker-0) and non-finite (worker-1) are rejected by reason', async () => {
      const attacks = [
        { worker: byzantineWorkers[0]!, attack: 'equivocation', reason: 'equivocation' },
        { worker: byzantineWorkers[1]!, attack: 'non-finite', reason: 'non_finite' },
      ]
      const results = await Promise.all(
        attacks.map(({ worker, attack }) => cluster.chaos('corrupt', worker, '--attack', attack)),
      )
      for (const result of results) expect(result.code).toBe(0)
      const from = Math.max(...servers.map((id) => cluster.latestRound(id)))
      // A Byzantine vector that reaches the server after its quorum closed is refused as
      // `stale_round` before its content is looked at (no fault, no penalty), and under CI load
      // every one of six rounds' vectors from one attacker was (CI 2026-12-01). So the test waits
      // for both reasons, bounded in rounds, rather than for a fixed number of rounds.
      const caught = (seen: readonly TelemetryEvent[]) =>
        servers.every((id) => attacks.every(({ reason }) => rejectedSince(seen, id, from, reason) > 0))
      await cluster.until(
        (seen) =>
          caught(seen) ||
          servers.every((id) => seen.some((e) => e.nodeId === id && e.round >= from + REJECTION_ROUNDS)),
      )
      const accuracy = await runFor(cluster, servers, from, ROUNDS_PER_ATTACK)
      for (const id of servers) {
        expect(accuracy.get(id)).toBeGreaterThan(ROBUST_FLOOR)
        for (const { reason } of attacks)
          expect(rejectedSince(cluster.events, id, from, reason)).toBeGreaterThan(0)
      }
    })
  })

  /**
   * Equivocation needs two servers to matter: each is handed its own version (server 0 the honest
   * gradient, server 1 a ×10 sign flip), and whichever server closes its quorum before the other
   * version reaches it through the other server aggregates the one it got. With averaging, server
   * 1's step reverses, and the median of two models carries half of it into both. A trial run
   * (2026-11-27, `phalanx local --servers 2 --byzantine-servers 0 --workers 7 --byzantine-workers 2
   * --worker-attack equivocation --model logistic --learning-rate 0.5 --momentum 0 --seed 5`):
   * averaging read 51.6% at round 1, 9.4% from round 5 to 19, honest drift up to 13.6, and
   * recovered from round 21 (62.5% at 29), once the servers had graylisted the equivocators (they
   * no longer do: an equivocation costs no score since 2026-12-01, see net/README); the
   * median read 75–84% from round 9 on, drift ≤ 0.70; 41 and 45 equivocations were caught.
   */
  describe.each([
    { rule: 'average', holds: false },
    { rule: 'median', holds: true },
  ])('equivocation against two servers running $rule', ({ rule, holds }) => {
    const servers = ['server-0', 'server-1']
    const EQUIVOCATION_ROUNDS = 20
    let cluster: TestCluster
    beforeAll(async () => {
      cluster = await startTwoServerCluster(`attacks-equivocation-${rule}`, rule, 'equivocation')
    })
    afterAll(async () => {
      await cluster?.stop()
    })

    it(
      holds
        ? `keeps accuracy above ${ROBUST_FLOOR} after ${EQUIVOCATION_ROUNDS} rounds`
        : `falls below ${AVERAGE_CEILING} within ${EQUIVOCATION_ROUNDS} rounds`,
      async () => {
        const evaluated = (e: TelemetryEvent) => servers.includes(e.nodeId) && e.accuracy !== undefined
        await cluster.until(
          (seen) =>
            (!holds && seen.some((e) => evaluated(e) && e.round >= 2 && e.accuracy! < AVERAGE_CEILING)) ||
            servers.every((id) =>
              seen.some((e) => evaluated(e) && e.nodeId === id && e.round >= EQUIVOCATION_ROUNDS),
            ),
        )
        // Guards the test itself: the equivocations must have been live, i.e. caught somewhere.
        const caught = servers.map((id) => rejectedSince(cluster.events, id, 0, 'equivocation'))
        expect(caught.reduce((a, b) => a + b, 0)).toBeGreaterThan(0)
        if (holds) {
          const accuracy = accuracyAfter(cluster.events, servers, EQUIVOCATION_ROUNDS)
          for (const id of servers) expect(accuracy.get(id)).toBeGreaterThan(ROBUST_FLOOR)
        } else {
          const lowest = Math.min(
            ...cluster.events.filter((e) => evaluated(e) && e.round >= 2).map((e) => e.accuracy!),
          )
          expect(lowest).toBeLessThan(AVERAGE_CEILING)
        }
      },
    )
  })

  /**
   * Label flipping does not collapse averaging: with 2 of 7 shards flipped the averaged gradient
   * still points mostly the right way. What it takes is the accuracy's floor: η = 0.5 steps keep
   * being pulled toward the flipped labels, and the accuracy swings. The single-process reference
   * (the file's doc comment, 60 rounds) read, over the evaluations of rounds 10–40, 58.8–77.4%
   * with averaging (eight of sixteen under 70%) and 75.2–82.0% with the median; 83–87% for
   * averaging without attack. So "averaging does not keep accuracy" is asserted as: in that window
   * it reaches the floor the median cluster is held to, and a later evaluation falls under it.
   */
  describe('plain averaging under label-flip swings under the robust floor', () => {
    const servers = ['server-0']
    const WINDOW = { from: 10, to: 40 }
    let cluster: TestCluster
    beforeAll(async () => {
      cluster = await startAveragingCluster('attacks-average-label-flip', 'all', 'label-flip')
    })
    afterAll(async () => {
      await cluster?.stop()
    })

    it(`reaches ${ROBUST_FLOOR}, then falls under it again in rounds ${WINDOW.from}–${WINDOW.to}`, async () => {
      const inWindow = (e: TelemetryEvent) =>
        servers.includes(e.nodeId) && e.round >= WINDOW.from && e.accuracy !== undefined
      // A fall, not a slow start: the accuracy must first have been at the floor.
      const fellBack = (seen: readonly TelemetryEvent[]) => {
        const reached = seen.find((e) => inWindow(e) && e.accuracy! >= ROBUST_FLOOR)
        return (
          reached !== undefined &&
          seen.some((e) => inWindow(e) && e.round > reached.round && e.accuracy! < ROBUST_FLOOR)
        )
      }
      await cluster.until(
        (seen) =>
          fellBack(seen) ||
          servers.every((id) => seen.some((e) => inWindow(e) && e.nodeId === id && e.round >= WINDOW.to)),
      )
      expect(fellBack(cluster.events.filter((e) => inWindow(e) && e.round <= WINDOW.to))).toBe(true)
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
