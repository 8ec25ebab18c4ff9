/**
 * The probes of a real node process tell the truth: a server cut off from every peer (an
 * operator-signed chaos partition) turns not ready once it has completed no round for the stated
 * multiple of the quorum timeout, stays live all the while (waiting for a quorum is not being
 * wedged), and turns ready again once it is healed and completes a round. Real processes: three
 * servers and two workers (N−F = 3 of 3, so nobody passes a round without server-0), their own
 * nats-server, the built CLI. Waits are on probe answers and reports, never on fixed delays.
 */
import { HEALTH_DEFAULTS } from '@phalanx/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestCluster, type TestCluster } from './support/cluster.js'
import { freePorts } from './support/nats.js'
import { fastTrainingEnv } from './support/node-cluster.js'

const QUORUM_TIMEOUT_MS = 1_000
const stalledAfterMs = HEALTH_DEFAULTS.stalledAfterQuorumTimeouts * QUORUM_TIMEOUT_MS
const wedgedAfterMs = HEALTH_DEFAULTS.wedgedAfterQuorumTimeouts * QUORUM_TIMEOUT_MS
/** A failure guard only: every wait below ends on an event long before it. */
const GUARD_MS = 60_000

interface Probe {
  status: number
  body: string
}

describe('node probes follow progress', () => {
  let cluster: TestCluster
  let ops: string

  const probe = async (path: '/readyz' | '/healthz'): Promise<Probe> => {
    const response = await fetch(`${ops}${path}`)
    return { status: response.status, body: await response.text() }
  }
  /** Polls `/readyz` until `done` holds (the answer is the event); fails after the guard. */
  const readyUntil = async (done: (answer: Probe) => boolean): Promise<Probe> => {
    const deadline = Date.now() + GUARD_MS
    for (;;) {
      const answer = await probe('/readyz')
      if (done(answer)) return answer
      if (Date.now() > deadline)
        throw new Error(`/readyz never matched; last: ${answer.status} ${answer.body}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  beforeAll(async () => {
    const [opsPort] = (await freePorts(1)) as [number]
    ops = `http://127.0.0.1:${opsPort}`
    cluster = await startTestCluster({
      cluster: 'health-test',
      servers: 3,
      workers: 2,
      env: {
        PHALANX_BYZANTINE_SERVERS: '0',
        PHALANX_BYZANTINE_WORKERS: '0',
        ...fastTrainingEnv,
        PHALANX_QUORUM_TIMEOUT_MS: String(QUORUM_TIMEOUT_MS),
        PHALANX_OPS_HOST: '127.0.0.1',
      },
      nodeEnv: { 'server-0': { PHALANX_OPS_PORT: String(opsPort) } },
    })
  }, 180_000)

  afterAll(async () => {
    await cluster?.stop()
  })

  it('503 naming the stall while cut off, live throughout, 200 again once it catches up', async () => {
    await cluster.until(() => cluster.latestRound('server-0') >= 2)
    expect(await probe('/readyz')).toEqual({ status: 200, body: 'ready\n' })
    expect(await probe('/healthz')).toEqual({ status: 200, body: 'ok\n' })

    // Far longer than the test needs: the heal below is sent once the probes have been seen.
    const cut = await cluster.chaos('partition', 'server-0', '--duration-ms', String(10 * GUARD_MS))
    expect(cut.stdout.trim()).toBe('server-0 acknowledged partition')
    const notReady = await readyUntil((answer) => answer.status === 503)
    expect(notReady.body).toMatch(
      new RegExp(
        `^stalled: no round completed for \\d+ ms \\(last was round \\d+\\), more than ${HEALTH_DEFAULTS.stalledAfterQuorumTimeouts} × quorumTimeoutMs = ${stalledAfterMs} ms\\n$`,
      ),
    )
    // Waiting for a quorum, however long, is not being wedged: still live once the stall has
    // lasted past the liveness bound (the readiness body says how long it has lasted).
    const stalledMs = (answer: Probe) => Number(/for (\d+) ms/.exec(answer.body)?.[1] ?? 0)
    const longStall = await readyUntil((answer) => answer.status === 503 && stalledMs(answer) > wedgedAfterMs)
    expect(longStall.status).toBe(503)
    expect(await probe('/healthz')).toEqual({ status: 200, body: 'ok\n' })
    const stalledAt = cluster.latestRound('server-0')

    const healed = await cluster.chaos('heal', 'server-0')
    expect(healed.stdout.trim()).toBe('server-0 acknowledged heal')
    await cluster.until(() => cluster.latestRound('server-0') > stalledAt, GUARD_MS)
    expect(await readyUntil((answer) => answer.status === 200)).toEqual({ status: 200, body: 'ready\n' })
    expect(await probe('/healthz')).toEqual({ status: 200, body: 'ok\n' })
  }, 180_000)
})
