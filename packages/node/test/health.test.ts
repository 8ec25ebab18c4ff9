import { describe, expect, it } from 'vitest'
import {
  createHealth,
  HEALTH_DEFAULTS,
  type HealthState,
  healthLimits,
  liveness,
  readiness,
  withHeartbeat,
} from '../src/health.js'

const quorumTimeoutMs = 1_000
const limits = healthLimits(quorumTimeoutMs)
const stalled = HEALTH_DEFAULTS.stalledAfterQuorumTimeouts * quorumTimeoutMs
const wedged = HEALTH_DEFAULTS.wedgedAfterQuorumTimeouts * quorumTimeoutMs

const state = (overrides: Partial<HealthState>): HealthState => ({
  phase: 'running',
  lastProgressAt: 0,
  lastRound: 7,
  lastBeatAt: 0,
  paused: false,
  ...overrides,
})

describe('readiness', () => {
  it.each([
    { what: 'starting', state: state({ phase: 'starting' }), now: 0, expected: /^starting: no round yet$/ },
    { what: 'a round just completed', state: state({}), now: 10, expected: true },
    { what: 'at the stall bound exactly', state: state({}), now: stalled, expected: true },
    {
      what: 'one ms past the stall bound',
      state: state({}),
      now: stalled + 1,
      expected: new RegExp(
        `^stalled: no round completed for ${stalled + 1} ms \\(last was round 7\\), more than 2 × quorumTimeoutMs = ${stalled} ms$`,
      ),
    },
    {
      what: 'stalled before its first round',
      state: state({ lastRound: undefined }),
      now: stalled + 5,
      expected: /\(none since start\)/,
    },
    {
      what: 'stalled while paused (says so)',
      state: state({ paused: true }),
      now: stalled + 1,
      expected: /paused by a chaos command$/,
    },
    {
      what: 'still beating but no round (waiting for a quorum)',
      state: state({ lastBeatAt: 1e9 }),
      now: 1e9,
      expected: /^stalled/,
    },
    { what: 'finished training long ago', state: state({ phase: 'finished' }), now: 1e9, expected: true },
  ])('$what → $expected', ({ state, now, expected }) => {
    const verdict = readiness(state, limits, now)
    if (expected instanceof RegExp) expect(verdict).toMatch(expected)
    else expect(verdict).toBe(true)
  })
})

describe('liveness', () => {
  it.each([
    { what: 'starting (loading, joining)', state: state({ phase: 'starting' }), now: 1e9, expected: true },
    { what: 'a fresh beat', state: state({ lastBeatAt: 100 }), now: 200, expected: true },
    {
      what: 'waiting for a quorum: beats, no rounds',
      state: state({ lastBeatAt: 1e9 - 1 }),
      now: 1e9,
      expected: true,
    },
    { what: 'at the wedge bound exactly', state: state({}), now: wedged, expected: true },
    {
      what: 'one ms past the wedge bound',
      state: state({}),
      now: wedged + 1,
      expected: new RegExp(
        `^wedged: the round loop has not turned for ${wedged + 1} ms, more than 5 × quorumTimeoutMs = ${wedged} ms$`,
      ),
    },
    { what: 'paused by a chaos command', state: state({ paused: true }), now: 1e9, expected: true },
    { what: 'finished training', state: state({ phase: 'finished' }), now: 1e9, expected: true },
  ])('$what → $expected', ({ state, now, expected }) => {
    const verdict = liveness(state, limits, now)
    if (expected instanceof RegExp) expect(verdict).toMatch(expected)
    else expect(verdict).toBe(true)
  })

  it('the stall bound comes before the wedge bound: a stalled node is taken out of service before it is restarted', () => {
    expect(limits.stalledAfterMs).toBeLessThan(limits.wedgedAfterMs)
  })
})

describe('createHealth', () => {
  function clocked(init: { heartbeat?: boolean; paused?: () => boolean } = {}) {
    let time = 0
    const health = createHealth({ quorumTimeoutMs, now: () => time, ...init })
    return { health, advance: (ms: number) => (time += ms) }
  }

  it('walks starting → ready → stalled → ready again at the next round → finished', () => {
    const { health, advance } = clocked()
    expect(health.ready()).toBe('starting: no round yet')
    advance(60_000)
    expect(health.live()).toBe(true)
    health.started()
    expect(health.ready()).toBe(true)
    health.roundCompleted(0)
    advance(stalled + 1)
    expect(health.ready()).toMatch(/^stalled: .*last was round 0/)
    health.roundCompleted(1)
    expect(health.ready()).toBe(true)
    health.finished()
    advance(1e9)
    expect([health.ready(), health.live()]).toEqual([true, true])
  })

  it('beats keep it live while no round completes; silence past the bound does not', () => {
    const { health, advance } = clocked()
    health.started()
    for (let i = 0; i < 10; i++) {
      advance(quorumTimeoutMs)
      health.beat()
    }
    expect(health.live()).toBe(true)
    expect(health.ready()).toMatch(/^stalled/)
    advance(wedged + 1)
    expect(health.live()).toMatch(/^wedged/)
    health.beat()
    expect(health.live()).toBe(true)
  })

  it.each([
    { what: 'a loop without data-plane beats (SMR)', init: { heartbeat: false } },
    { what: 'a node paused by a chaos command', init: { paused: () => true } },
  ])('$what is never judged wedged', ({ init }) => {
    const { health, advance } = clocked(init)
    health.started()
    advance(1e9)
    expect(health.live()).toBe(true)
  })
})

describe('withHeartbeat', () => {
  it('beats when a method is called and again when its promise settles, rejections included', async () => {
    const beats: string[] = []
    let release!: () => void
    const target = {
      name: 'transport',
      sync: (x: number) => x + 1,
      wait: () =>
        new Promise<string>((resolve) => {
          release = () => resolve('done')
        }),
      fail: async () => {
        throw new Error('QuorumTimeoutError')
      },
    }
    const wrapped = withHeartbeat(target, () => beats.push('beat'))
    expect(wrapped.name).toBe('transport')
    expect(beats).toEqual([])
    expect(wrapped.sync(1)).toBe(2)
    expect(beats).toHaveLength(1)
    const waiting = wrapped.wait()
    expect(beats).toHaveLength(2)
    release()
    await expect(waiting).resolves.toBe('done')
    expect(beats).toHaveLength(3)
    await expect(wrapped.fail()).rejects.toThrow('QuorumTimeoutError')
    expect(beats).toHaveLength(5)
  })
})
