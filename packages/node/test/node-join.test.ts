/**
 * Where a joining node starts when its backend and dataset are still loading after its listening
 * window (a node listens first and loads in the background, node-startup.ts): the round the
 * cluster is at once the node can run it, not the one it was at when the window closed. The
 * cluster is scripted: its round moves only when the test says, and the window runs on fake timers.
 */
import pino from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { clusterConfigSchema } from '../src/config.js'
import { joinListenMs, joinOrResume } from '../src/node-join.js'
import type { JoinContext } from '../src/replication/mode.js'
import type { RoundTransport, RoundVector } from '../src/transport.js'

const d = 3

/** A running cluster at `round`: N−F servers signed it, and their models of it are there. */
function runningCluster(start: number) {
  const cluster = { round: start }
  const node = { clusterRound: () => cluster.round } as unknown as JoinContext['node']
  let windowRound = 0
  const transport = {
    selfId: 'worker-1',
    setRound: (round: number) => {
      windowRound = round
    },
    newest: async () => ({
      round: windowRound,
      vectors: Array.from(
        { length: 3 },
        (_, i): RoundVector => ({ sender: `server-${i}`, round: windowRound, vector: new Float32Array(d) }),
      ),
    }),
  } as unknown as RoundTransport
  return { cluster, node, transport }
}

/** A load the test finishes (or fails) when it chooses. */
function pendingLoad() {
  let finish!: () => void
  let fail!: (error: Error) => void
  const promise = new Promise<void>((resolve, reject) => {
    finish = resolve
    fail = reject
  })
  return { ready: () => promise, finish, fail }
}

/** joinOrResume of a node that listens to `cluster` while `load` is still going. */
function joinWhileLoading(
  role: JoinContext['role'],
  { node, transport }: ReturnType<typeof runningCluster>,
  load: ReturnType<typeof pendingLoad>,
) {
  return joinOrResume({
    config: clusterConfigSchema.parse({}),
    role,
    node,
    transport,
    log: pino({ level: 'silent' }),
    signal: new AbortController().signal,
    checkpoints: undefined,
    highestSigned: undefined,
    ready: load.ready,
  })
}

describe('joining a running cluster while the node still loads', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it.each([
    { role: 'worker' as const, loadEnds: 'after the window', movedTo: 40, starts: 40 },
    { role: 'server' as const, loadEnds: 'after the window', movedTo: 40, starts: 40 },
    { role: 'worker' as const, loadEnds: 'within the window', movedTo: 10, starts: 10 },
    { role: 'server' as const, loadEnds: 'within the window', movedTo: 10, starts: 10 },
  ])(
    'a $role whose load ends $loadEnds starts at round $starts',
    async ({ role, loadEnds, movedTo, starts }) => {
      const running = runningCluster(10)
      const load = pendingLoad()
      const join = joinWhileLoading(role, running, load)
      if (loadEnds === 'within the window') load.finish()
      await vi.advanceTimersByTimeAsync(joinListenMs)
      // The cluster runs on while the backend and dataset still load.
      running.cluster.round = movedTo
      load.finish()
      const start = await join
      expect(start.round).toBe(starts)
      expect(start.publishFirst).toBe(false)
    },
  )

  it('fails the join with the load’s own error', async () => {
    const load = pendingLoad()
    const join = joinWhileLoading('worker', runningCluster(10), load)
    const failed = expect(join).rejects.toThrow('no backend')
    await vi.advanceTimersByTimeAsync(joinListenMs)
    load.fail(new Error('no backend'))
    await failed
  })
})
