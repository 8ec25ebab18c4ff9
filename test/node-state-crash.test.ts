/**
 * Jepsen-style crash test of the save-then-publish path, against real processes: 4 honest
 * `phalanx server`s (F = 1 counted, so quorums are N−F = 3) and 2 workers train linear regression
 * with `stateDir`. Every server life but the last is started with a test-only failpoint
 * (`PHALANX_FAILPOINTS=<point>:crash@<k>`, failpoints.ts) that SIGKILLs it at a random one of the
 * four points of a round — before the state is saved, after it is saved, after the signed-round
 * watermark names the round, after the model is published — on a random pass. The test restarts
 * it, and after some crashes first truncates its state file at a random offset (a lost write),
 * so that it starts amnesic and joins from the median of N−F models (now and then its signed-round
 * watermark too, leaving it only what it assumes with both lost). A second running server is
 * SIGKILLed beside some crashes. More than one server is
 * often down at once (the cluster then waits for their saved models); at most F are amnesic at
 * once (more could leave a round no one may sign again: safe, but dead — see server-state.ts).
 *
 * Checked from what the other nodes received: no node ever counted or logged an equivocation
 * (every server is honest here, so any would be an honest server's second model for a round),
 * and every server's own "signing model" log holds one hash per round across all its lives.
 * Training then reaches the test loss of the unfaulted single-process run of the same config at
 * the same round within LOSS_MARGIN.
 *
 * Short under `npm test`; PHALANX_CHAOS_PROFILE=long (`npm run chaos`) crashes many more times.
 * Needs the built CLI (`npx turbo run build`).
 */
import { existsSync, mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runSimulation } from '@phalanx/lab'
import { configFromEnv, resolveConfig } from '@phalanx/node'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chaosProfile } from './chaos/profile.js'
import { seededRandom } from './chaos/scenarios.js'
import { fastTrainingEnv, logEntries } from './support/node-cluster.js'
import {
  forkNodeProcess,
  type NodeExit,
  type NodeHandle,
  peerIdsOf,
  Waiters,
} from './support/node-process.js'

/**
 * `crashes`: server lives that end in a failpoint's SIGKILL (more, up to 3×, until
 * `minTruncations` lost writes happened). `truncateEvery`: every that many crashes, the crashed
 * server's state file is cut (when the others can carry on without it).
 * `companionEvery`: every that many crashes, the test SIGKILLs a second running server at once, so
 * that more than F servers are down and the cluster stalls until they are back (what `stateDir`
 * exists for, and where an amnesic server is most tempted to sign a round again).
 * `loseWatermarkEvery`: every that many truncations, the signed-round watermark is cut too, so
 * the server relies on what it assumes with both lost (server-state.ts).
 */
const profiles = {
  short: {
    crashes: 8,
    truncateEvery: 1,
    minTruncations: 2,
    companionEvery: 2,
    loseWatermarkEvery: 2,
    seed: 13,
  },
  long: {
    crashes: 40,
    truncateEvery: 2,
    minTruncations: 8,
    companionEvery: 3,
    loseWatermarkEvery: 3,
    seed: 29,
  },
} as const
const profileName = chaosProfile().name
const profile = profiles[profileName]

const CLUSTER = 'state-crash'
const servers = ['server-0', 'server-1', 'server-2', 'server-3']
const workers = ['worker-0', 'worker-1']
const F = 1
const failpoints = ['before-save', 'after-save', 'after-watermark', 'after-publish'] as const
/** Crash on one of the first passes of a life: the cluster then crashes about every few rounds. */
const MAX_PASSES = 10
/** Rounds trained after the last crash, so the final loss is measured on a recovered cluster. */
const ROUNDS_AFTER_CRASHES = 20
const EVAL_EVERY = 5
/**
 * The faulted cluster's test loss may exceed the unfaulted run's by this factor. Measured: equal
 * to the last digit in every run so far (short and long profile), presumably because servers that
 * resume their saved model or join from the median of identical models rejoin the same trajectory,
 * and (we believe) the workers' batches depend on the round only. The slack is for what a run
 * could still change: a round whose gradients a catching-up server took from another n−f subset.
 */
const LOSS_MARGIN = 1.1

interface Life {
  nodeId: string
  handle: NodeHandle
  failpoint: string | undefined
  truncatedBefore: boolean
  /** SIGKILLed by the test beside another server's crash, not by its own failpoint. */
  killedByTest?: boolean
  exit?: NodeExit
}

describe('servers SIGKILLed anywhere on the save-then-publish path never equivocate', () => {
  let work: string
  let env: Record<string, string>
  const random = seededRandom(profile.seed)
  const lives: Life[] = []
  const current = new Map<string, Life>()
  const addresses = new Map<string, string[]>()
  const waiters = new Waiters()
  let crashesLeft: number = profile.crashes
  let crashesSinceTruncate = 0
  let crashesSinceCompanion = 0
  let truncationsSoFar = 0
  let watermarksLost = 0
  let stopping = false
  let passed = false
  let lifeLoops: Promise<void>[] = []

  const stateFile = (nodeId: string) => join(work, 'state', `${nodeId}.state`)
  const bootstrap = (self: string) =>
    [...addresses].flatMap(([nodeId, addrs]) =>
      nodeId !== self && current.get(nodeId)?.handle.running() ? addrs : [],
    )

  /** Servers that have no usable state right now: truncated and not yet through a few rounds. */
  const amnesic = () =>
    [...current.values()].filter(
      (life) => life.truncatedBefore && (life.handle.rounds.length < 3 || !life.handle.running()),
    ).length

  const startLife = (nodeId: string, truncatedBefore: boolean): Life => {
    let failpoint: string | undefined
    if (nodeId.startsWith('server-') && crashesLeft > 0) {
      crashesLeft--
      const point = failpoints[Math.floor(random() * failpoints.length)]!
      failpoint = `${point}:crash@${1 + Math.floor(random() * MAX_PASSES)}`
    }
    const handle = forkNodeProcess({
      work,
      nodeId,
      env: {
        ...fastTrainingEnv,
        ...env,
        // A server's own: a worker keeps no state and refuses the field.
        ...(nodeId.startsWith('server-') ? { PHALANX_STATE_DIR: join(work, 'state') } : {}),
        PHALANX_BOOTSTRAP: bootstrap(nodeId).join(','),
        ...(failpoint === undefined ? {} : { PHALANX_FAILPOINTS: failpoint }),
      },
      // Not this process's PHALANX_* (PHALANX_CHAOS_PROFILE is the test's, and a node refuses it).
      inherited: Object.fromEntries(
        Object.entries(process.env).filter(([name]) => !name.startsWith('PHALANX_')),
      ),
      onChange: () => waiters.wake(),
    })
    const life: Life = { nodeId, handle, failpoint, truncatedBefore }
    lives.push(life)
    current.set(nodeId, life)
    return life
  }

  /** One server's lives, one after another, until the test stops. */
  const serverLoop = async (first: Life): Promise<void> => {
    let life = first
    for (;;) {
      addresses.set(life.nodeId, await life.handle.listening.catch(() => []))
      waiters.wake()
      life.exit = await life.handle.exited
      waiters.wake()
      if (stopping) return
      expect(life.exit.signal, `${life.nodeId} exited on its own: ${JSON.stringify(life.exit)}`).toBe(
        'SIGKILL',
      )
      // A life without a failpoint only ends when the test kills it.
      if (!life.killedByTest) {
        expect(life.failpoint, `${life.nodeId} SIGKILLed without a failpoint`).toBeDefined()
      }
      const others = [...current.values()].filter(
        (other) => other.nodeId.startsWith('server-') && other.nodeId !== life.nodeId,
      )
      // A lost write: the file cut anywhere. Only while the others carry on without this server —
      // all running, contributing, and at its round or past — and no other is amnesic: with more
      // than F servers down, one that lost the model it signed leaves a round no one may sign
      // again (see server-state.ts), which is the guard working, but ends the test in a stall.
      const lastRound = life.handle.rounds.at(-1)?.round ?? 0
      const othersCarryOn = others.every(
        (other) =>
          other.handle.running() &&
          (other.handle.rounds.at(-1)?.round ?? -1) >= lastRound &&
          !(other.truncatedBefore && other.handle.rounds.length < 3),
      )
      let truncated = false
      crashesSinceTruncate++
      if (
        crashesSinceTruncate >= profile.truncateEvery &&
        othersCarryOn &&
        existsSync(stateFile(life.nodeId))
      ) {
        const size = statSync(stateFile(life.nodeId)).size
        truncateSync(stateFile(life.nodeId), Math.floor(random() * size))
        truncated = true
        crashesSinceTruncate = 0
        truncationsSoFar++
        if (profile.loseWatermarkEvery > 0 && truncationsSoFar % profile.loseWatermarkEvery === 0) {
          const watermark = join(work, 'state', `${life.nodeId}.signed`)
          if (existsSync(watermark)) {
            truncateSync(watermark, Math.floor(random() * statSync(watermark).size))
            watermarksLost++
          }
        }
      }
      const truncations = lives.filter((other) => other.truncatedBefore).length + (truncated ? 1 : 0)
      const spent = lives.filter((other) => other.failpoint !== undefined).length
      if (crashesLeft === 0 && truncations < profile.minTruncations && spent < 3 * profile.crashes)
        crashesLeft++
      // More than F down at once, all with their state: the cluster waits for their saved models.
      if (!life.killedByTest && !truncated && amnesic() === 0) {
        crashesSinceCompanion++
        const running = others.filter((other) => other.handle.running())
        if (crashesSinceCompanion >= profile.companionEvery && running.length > 0) {
          crashesSinceCompanion = 0
          const companion = running[Math.floor(random() * running.length)]!
          companion.killedByTest = true
          void companion.handle.kill()
        }
      }
      life = startLife(life.nodeId, truncated)
    }
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'phalanx-state-crash-'))
    const peerIds = await peerIdsOf(work, [...servers, ...workers])
    env = {
      PHALANX_CLUSTER: CLUSTER,
      PHALANX_SERVERS: String(servers.length),
      PHALANX_BYZANTINE_SERVERS: String(F),
      // F counted (quorums N−F), none of them Byzantine: any equivocation is an honest server's.
      PHALANX_BYZANTINE_NODE_IDS: 'worker-none',
      PHALANX_WORKERS: String(workers.length),
      PHALANX_BYZANTINE_WORKERS: '0',
      PHALANX_MEMBERS: [...peerIds].map(([nodeId, peerId]) => `${nodeId}:${peerId}`).join(','),
      PHALANX_EVAL_EVERY: String(EVAL_EVERY),
      // How long a restarted server waits for N−F models before it says it stalled; short, so a
      // stalled cluster shows in the logs while the test still runs.
      PHALANX_QUORUM_TIMEOUT_MS: '5000',
    }
  }, 60_000)

  afterAll(async () => {
    stopping = true
    await Promise.all([...current.values()].map((life) => life.handle.kill()))
    await Promise.allSettled(lifeLoops)
    // A failure's message names the logs in `work`: they must still be there to be read.
    if (work !== undefined && passed) rmSync(work, { recursive: true, force: true })
  })

  it(
    `crashes ${profile.crashes} times, truncating state, without one honest equivocation, and trains on`,
    async ({ task }) => {
      // Servers one by one (each bootstraps from those before it), then the workers.
      const firsts: Life[] = []
      for (const nodeId of servers) {
        const life = startLife(nodeId, false)
        firsts.push(life)
        addresses.set(nodeId, await life.handle.listening)
      }
      for (const nodeId of workers) {
        const life = startLife(nodeId, false)
        addresses.set(nodeId, await life.handle.listening)
      }
      lifeLoops = firsts.map((life) => serverLoop(life))
      const failed = Promise.race(lifeLoops.map((loop) => loop.then(() => new Promise<never>(() => {}))))

      // Every crash spent, every server on a life without a failpoint, then ROUNDS_AFTER_CRASHES more.
      const timeoutMs = profile.crashes * 30_000 + 120_000
      const lastRound = () => Math.max(0, ...lives.flatMap((life) => life.handle.rounds.map((r) => r.round)))
      await Promise.race([
        failed,
        waiters.until(
          () => crashesLeft === 0 && servers.every((id) => current.get(id)!.failpoint === undefined),
          timeoutMs,
          () => new Error(`crashes not done: ${crashesLeft} left; logs in ${work}`),
        ),
      ])
      const target = lastRound() + ROUNDS_AFTER_CRASHES
      // An evaluated round every server reaches (a server catching up skips rounds, evaluated
      // ones too, so each one's first evaluation at or past it is what counts).
      const evalRound = Math.ceil((target + 1) / EVAL_EVERY) * EVAL_EVERY - 1
      const evaluated = (id: string) =>
        current.get(id)!.handle.rounds.find((r) => r.round >= evalRound && r.loss !== undefined)
      await Promise.race([
        failed,
        waiters.until(
          () => servers.every((id) => evaluated(id) !== undefined),
          120_000,
          () => new Error(`round ${evalRound} not reached by every server; logs in ${work}`),
        ),
      ])
      stopping = true
      await Promise.all([...current.values()].map((life) => life.handle.kill()))

      // --- every kill happened where it was put -------------------------------------------------
      const withFailpoint = lives.filter((life) => life.failpoint !== undefined)
      expect(withFailpoint.length).toBeGreaterThanOrEqual(profile.crashes)
      const crashed = withFailpoint.filter((life) => !life.killedByTest)
      for (const life of crashed) expect(life.exit?.signal, life.failpoint).toBe('SIGKILL')
      expect(crashed.length).toBeGreaterThan(0)
      const companions = lives.filter((life) => life.killedByTest).length
      const truncations = lives.filter((life) => life.truncatedBefore).length
      expect(truncations).toBeGreaterThanOrEqual(profile.minTruncations)

      // --- no equivocation, as the receivers saw it ----------------------------------------------
      // Each life's reports count rejections since its start: its last report holds its total.
      const equivocationsCounted = lives.reduce((sum, life) => {
        const last = life.handle.rounds.at(-1)
        return sum + ((last?.rejected as Record<string, number> | undefined)?.equivocation ?? 0)
      }, 0)
      const equivocationsLogged = [...servers, ...workers].flatMap((id) =>
        logEntries(work, id).filter((entry) => entry.msg === 'equivocation detected'),
      )
      expect(equivocationsLogged).toEqual([])
      expect(equivocationsCounted).toBe(0)

      // --- … and as the signers recorded it, across all their lives -----------------------------
      let signed = 0
      for (const nodeId of servers) {
        const hashes = new Map<number, Set<string>>()
        for (const entry of logEntries(work, nodeId).filter((line) => line.msg === 'signing model')) {
          const set = hashes.get(Number(entry.round)) ?? new Set<string>()
          set.add(String(entry.hash))
          hashes.set(Number(entry.round), set)
          signed++
        }
        for (const [round, set] of hashes) expect(set.size, `${nodeId} round ${round}`).toBe(1)
      }
      expect(signed).toBeGreaterThan(0)
      const refusedFiles = servers.reduce(
        (sum, id) =>
          sum +
          logEntries(work, id).filter((line) => String(line.msg).startsWith('state file refused')).length,
        0,
      )
      expect(refusedFiles).toBeGreaterThan(0)
      const refusedSignatures = servers.reduce(
        (sum, id) =>
          sum + logEntries(work, id).filter((line) => String(line.msg).startsWith('refused to sign')).length,
        0,
      )

      // --- training reached the unfaulted run's loss --------------------------------------------
      const finals = servers.map((id) => evaluated(id)!)
      const lastEvaluated = Math.max(...finals.map((r) => r.round))
      const config = resolveConfig(
        configFromEnv({ ...fastTrainingEnv, ...env, PHALANX_ROUNDS: String(lastEvaluated + 1) }),
      )
      const reference = await runSimulation(config, { log: pino({ level: 'silent' }) })
      const unfaultedAt = (round: number) => reference.rows.find((row) => row.round === round)?.honestLoss
      const losses = finals.map((r) => ({
        nodeId: r.nodeId,
        round: r.round,
        faulted: r.loss!,
        unfaulted: unfaultedAt(r.round),
      }))
      Object.assign(task.meta, {
        profile: profileName,
        crashes: crashed.map((life) => life.failpoint),
        companions,
        watermarksLost,
        losses,
        truncations,
        refusedFiles,
        refusedSignatures,
        signed,
        evalRound,
      })
      for (const loss of losses) {
        expect(loss.unfaulted, `reference loss at round ${loss.round}`).toBeDefined()
        expect(loss.faulted, `${loss.nodeId} round ${loss.round}`).toBeLessThanOrEqual(
          loss.unfaulted! * LOSS_MARGIN,
        )
      }
      // One summary line for whoever runs it by hand.
      process.stderr.write(`node-state-crash: ${JSON.stringify(task.meta)}\n`)
      passed = true
    },
    profile.crashes * 30_000 + 300_000,
  )
})
