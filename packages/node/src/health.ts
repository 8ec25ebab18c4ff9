/**
 * What a node's probes answer (`/readyz`, `/healthz`), decided from what the node did and when:
 *
 * - **ready** while it makes progress: it has started its rounds and completed one (or started)
 *   less than `stalledAfterQuorumTimeouts` quorum timeouts ago, or it finished training. A node
 *   cut off from its quorum, or in a cluster that cannot form one, turns not ready with a reason
 *   that names how long and the bound, and ready again at its next completed round.
 * - **live** while its round loop turns: the loop touches the data plane at least once per quorum
 *   timeout even while it waits for a quorum (every wait is sliced, see protocol.ts), so a
 *   heartbeat that has not moved for `wedgedAfterQuorumTimeouts` quorum timeouts is a loop stuck
 *   in an await that never settles, or a CPU-bound step that never ends. Waiting for a quorum, or
 *   being paused by a chaos command, is not a liveness failure: a restart would not help it.
 *   A blocked event loop answers no probe at all, which the kubelet counts as a failure by itself.
 *
 * `readiness` and `liveness` are pure functions of a `HealthState` and the time; `createHealth`
 * keeps the state for a node process.
 */

export const HEALTH_DEFAULTS = {
  /**
   * Not ready after this many quorum timeouts without a completed round. A round that has its
   * inputs takes far less than one quorum timeout (30 s by default against rounds of about a
   * second); a node past two has missed a quorum for good once and is at least one timeout into
   * the next, so it is stalled, not slow. Kubernetes then takes it out of Service endpoints only.
   */
  stalledAfterQuorumTimeouts: 2,
  /**
   * Not live after this many quorum timeouts without a heartbeat. The round loop beats at least
   * once per quorum timeout while it waits; five leaves room for the steps between beats (an
   * aggregation, an evaluation, a state file written) on a loaded machine, yet restarts a wedged
   * node within minutes at the default (150 s, then the probe's failure threshold).
   */
  wedgedAfterQuorumTimeouts: 5,
} as const

export type HealthPhase = 'starting' | 'running' | 'finished'

export interface HealthState {
  phase: HealthPhase
  /** When the node started its rounds, or last completed one (ms, the clock of `now`). */
  lastProgressAt: number
  /** The last round it completed; undefined before the first. */
  lastRound: number | undefined
  /** When the round loop last showed it turns (a data-plane call, a completed round). */
  lastBeatAt: number
  /** Paused by a chaos command: deliberately waiting, so not a liveness failure. */
  paused: boolean
}

export interface HealthLimits {
  quorumTimeoutMs: number
  stalledAfterMs: number
  wedgedAfterMs: number
}

export function healthLimits(
  quorumTimeoutMs: number,
  multiples: { stalledAfterQuorumTimeouts?: number; wedgedAfterQuorumTimeouts?: number } = {},
): HealthLimits {
  const stalled = multiples.stalledAfterQuorumTimeouts ?? HEALTH_DEFAULTS.stalledAfterQuorumTimeouts
  const wedged = multiples.wedgedAfterQuorumTimeouts ?? HEALTH_DEFAULTS.wedgedAfterQuorumTimeouts
  return {
    quorumTimeoutMs,
    stalledAfterMs: stalled * quorumTimeoutMs,
    wedgedAfterMs: wedged * quorumTimeoutMs,
  }
}

const multipleOf = (ms: number, limits: HealthLimits) =>
  `${ms / limits.quorumTimeoutMs} × quorumTimeoutMs = ${ms} ms`

/** true, or why the node is not ready (the body of `/readyz`'s 503). */
export function readiness(state: HealthState, limits: HealthLimits, now: number): true | string {
  if (state.phase === 'starting') return 'starting: no round yet'
  if (state.phase === 'finished') return true
  const idleMs = now - state.lastProgressAt
  if (idleMs <= limits.stalledAfterMs) return true
  const last = state.lastRound === undefined ? 'none since start' : `last was round ${state.lastRound}`
  return `stalled: no round completed for ${idleMs} ms (${last}), more than ${multipleOf(limits.stalledAfterMs, limits)}${state.paused ? '; paused by a chaos command' : ''}`
}

/** true, or why the node is not live (the body of `/healthz`'s 503). */
export function liveness(state: HealthState, limits: HealthLimits, now: number): true | string {
  if (state.phase !== 'running' || state.paused) return true
  const silentMs = now - state.lastBeatAt
  if (silentMs <= limits.wedgedAfterMs) return true
  return `wedged: the round loop has not turned for ${silentMs} ms, more than ${multipleOf(limits.wedgedAfterMs, limits)}`
}

export interface NodeHealth {
  /** The round loop starts (after loading, joining or resuming). */
  started(): void
  roundCompleted(round: number): void
  /** The round loop shows it turns (called around every data-plane call, see `withHeartbeat`). */
  beat(): void
  /** Training is over: the node only serves its last vectors until stopped. */
  finished(): void
  ready(): true | string
  live(): true | string
}

export interface NodeHealthInit {
  quorumTimeoutMs: number
  /**
   * Whether the round loop's data-plane calls beat (`withHeartbeat`). false for a loop that waits
   * elsewhere (the SMR baseline reads its log directly): liveness is then not judged.
   */
  heartbeat?: boolean
  /** Whether a chaos command paused the node. */
  paused?: () => boolean
  now?: () => number
}

export function createHealth(init: NodeHealthInit): NodeHealth {
  const now = init.now ?? Date.now
  const limits = healthLimits(init.quorumTimeoutMs)
  const state: HealthState = {
    phase: 'starting',
    lastProgressAt: now(),
    lastRound: undefined,
    lastBeatAt: now(),
    paused: false,
  }
  const judgeLiveness = init.heartbeat ?? true
  const current = (): HealthState => ({ ...state, paused: init.paused?.() ?? false })
  return {
    started() {
      if (state.phase !== 'starting') return
      state.phase = 'running'
      state.lastProgressAt = now()
      state.lastBeatAt = state.lastProgressAt
    },
    roundCompleted(round) {
      state.lastRound = round
      state.lastProgressAt = now()
      state.lastBeatAt = state.lastProgressAt
    },
    beat() {
      state.lastBeatAt = now()
    },
    finished() {
      state.phase = 'finished'
    },
    ready: () => readiness(current(), limits, now()),
    live: () => (judgeLiveness ? liveness(current(), limits, now()) : true),
  }
}

/**
 * `target` with every method call reported to `beat`, once when called and once when its promise
 * settles: a round loop waiting for a quorum calls the transport at least once per quorum
 * timeout, so these beats are what tells waiting from wedged.
 */
export function withHeartbeat<T extends object>(target: T, beat: () => void): T {
  return new Proxy(target, {
    get(object, key) {
      const value: unknown = Reflect.get(object, key, object)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        beat()
        const result: unknown = value.apply(object, args)
        if (result instanceof Promise) return result.finally(beat)
        return result
      }
    },
  })
}
