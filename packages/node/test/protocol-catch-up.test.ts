/**
 * A server that fell behind a cluster running faster than it can check: each catch-up check
 * finds N−F models of a newer round, while the gradients of that round came (and were refused as
 * future) before its window moved, so only a pull brings them. The scripted transport below is
 * that cluster; nothing in it waits on a clock.
 */
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { runServer } from '../src/protocol.js'
import {
  QuorumTimeoutError,
  type RoundTransport,
  type RoundVector,
  type VectorKind,
} from '../src/transport.js'

const d = 3
const vectors = (round: number, count: number, prefix: string): RoundVector[] =>
  Array.from({ length: count }, (_, i) => ({ sender: `${prefix}-${i}`, round, vector: new Float32Array(d) }))

/** The cluster moves one round on at every catch-up check; gradients come only by pull, when `pullable`. */
function chasedCluster(init: { start: number; pullable: boolean }) {
  let clusterRound = init.start
  const pulled = new Set<string>()
  const calls = { ahead: 0, pulls: [] as string[] }
  const transport: RoundTransport = {
    selfId: 'server-0',
    publish: async () => {},
    setRound: () => {},
    rejected: () => ({}),
    announce: async () => {},
    republish: async () => {},
    pull: async (kind, round) => {
      calls.pulls.push(`${kind}/${round}`)
      if (init.pullable) pulled.add(`${kind}/${round}`)
    },
    ahead: (_kind, round) => {
      calls.ahead++
      const found =
        clusterRound > round
          ? { round: clusterRound, vectors: vectors(clusterRound, 3, 'server') }
          : undefined
      clusterRound++
      return found
    },
    collect: async (kind: VectorKind, round, options) => {
      if (kind === 'model') return vectors(round, options.quorum, 'server')
      if (pulled.has(`gradient/${round}`)) return vectors(round, options.quorum, 'worker')
      throw new QuorumTimeoutError({
        kind,
        round,
        quorum: options.quorum,
        senders: [],
        timeoutMs: options.timeoutMs,
      })
    },
    newest: async () => {
      throw new Error('not used')
    },
  }
  return { transport, calls }
}

async function chase(init: { start: number; pullable: boolean }, maxChecks: number) {
  const { transport, calls } = chasedCluster(init)
  const controller = new AbortController()
  const completed: number[] = []
  const run = runServer(
    {
      transport: new Proxy(transport, {
        get(target, key, receiver) {
          // Bounds the chase: a server that never completes a round is stopped after maxChecks.
          if (key === 'ahead' && calls.ahead >= maxChecks) controller.abort(new Error('still chasing'))
          return Reflect.get(target, key, receiver)
        },
      }),
      log: pino({ level: 'silent' }),
      serverQuorum: 3,
      gradientQuorum: 5,
      aggregate: (gradients) => gradients[0]!,
      median: (models) => models[0]!,
      learningRate: () => 0.1,
      antiDrift: true,
      exchangeEvery: 1,
      quorumTimeoutMs: 5_000,
      onRound: (event) => {
        completed.push(event.round)
        controller.abort(new Error('completed a round'))
      },
    },
    { round: 0, model: new Float32Array(d), publishFirst: true },
    1_000_000,
    controller.signal,
  )
  await run.catch(() => undefined)
  return { completed, calls }
}

describe('a server catching up from behind a faster cluster', () => {
  it('pulls the gradients of the round it jumped to at once, and completes that round', async () => {
    const { completed, calls } = await chase({ start: 10, pullable: true }, 50)
    expect(completed).toEqual([10])
    expect(calls.pulls[0]).toBe('gradient/10')
    // One catch-up check found round 10; no second jump was needed.
    expect(calls.ahead).toBe(1)
  })

  it('keeps pulling at every jump while the gradients stay out of reach (and never proceeds without them)', async () => {
    const { completed, calls } = await chase({ start: 10, pullable: false }, 20)
    expect(completed).toEqual([])
    const jumps = calls.pulls.filter((p) => p.startsWith('gradient/'))
    expect(jumps.length).toBeGreaterThanOrEqual(19)
  })
})
