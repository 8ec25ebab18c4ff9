/**
 * What every `RoundTransport` must do, whatever carries the vectors: one suite, run against the
 * in-memory bus (`memory-transport.test.ts`) and the net adapter over real libp2p nodes
 * (`net-transport-contract.test.ts`). The protocol is written against these behaviours only.
 *
 * Left out on purpose, because the adapters differ there by design: the round window (the net
 * node refuses rounds before `round − 1` and after `round + W`; the bus keeps every round), who
 * sees an equivocation (the bus shares one store, so every member sees both versions; the net
 * node hands each receiver its own) and `pull`, `republish` and `announce`, which only the net
 * adapter has (a network loses messages; the bus does not).
 */
import { isPhalanxError } from '@phalanx/errors'
import { afterEach, describe, expect, it } from 'vitest'
import type { RoundTransport, RoundVector, VectorKind } from '../src/transport.js'

export const contractDimension = 4

/** Three servers and two workers on one data plane, each member's transport, ready to use. */
export interface ContractCluster {
  readonly servers: readonly RoundTransport[]
  readonly workers: readonly RoundTransport[]
  /** Stops whatever the cluster runs (nodes, sockets); called after every test. */
  close(): Promise<void>
}

export interface ContractOptions {
  /**
   * How long a wait that must time out is given. Only the waits for what never comes use it, so
   * it bounds how long those tests take, not whether they pass.
   */
  readonly shortTimeoutMs: number
  /** How long a wait for what does come may take before the test fails. */
  readonly longTimeoutMs: number
}

/** A distinct vector per sender and round, so that a test can tell whose it got. */
export function vectorOf(member: number, round: number): Float32Array {
  return Float32Array.from({ length: contractDimension }, (_, i) => member * 100 + round * 10 + i)
}

const bySender = (vectors: readonly RoundVector[]) =>
  Object.fromEntries(vectors.map((v) => [v.sender, { round: v.round, vector: [...v.vector] }]))

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected the promise to reject')
}

export function describeRoundTransport(
  name: string,
  make: () => Promise<ContractCluster>,
  options: ContractOptions,
): void {
  const { shortTimeoutMs, longTimeoutMs } = options
  describe(`RoundTransport contract: ${name}`, () => {
    let cluster: ContractCluster | undefined
    afterEach(async () => {
      await cluster?.close()
      cluster = undefined
    })
    const start = async () => {
      cluster = await make()
      return cluster
    }
    const wait = (quorum: number) => ({ quorum, timeoutMs: longTimeoutMs })
    const publishModels = (servers: readonly RoundTransport[], round: number) =>
      Promise.all(servers.map((server, s) => server.publish('model', round, vectorOf(s, round))))

    it('delivers every server model of a round to every member, its own included', async () => {
      const { servers, workers } = await start()
      await publishModels(servers, 0)
      const expected = Object.fromEntries(
        servers.map((server, s) => [server.selfId, { round: 0, vector: [...vectorOf(s, 0)] }]),
      )
      for (const member of [...servers, ...workers]) {
        expect(bySender(await member.collect('model', 0, wait(servers.length)))).toEqual(expected)
      }
    })

    it('delivers every worker gradient of a round to every server', async () => {
      const { servers, workers } = await start()
      await Promise.all(workers.map((worker, w) => worker.publish('gradient', 0, vectorOf(10 + w, 0))))
      const expected = Object.fromEntries(
        workers.map((worker, w) => [worker.selfId, { round: 0, vector: [...vectorOf(10 + w, 0)] }]),
      )
      for (const server of servers) {
        expect(bySender(await server.collect('gradient', 0, wait(workers.length)))).toEqual(expected)
      }
    })

    it('resolves a collect started before the vectors are published once the quorum is in', async () => {
      const { servers, workers } = await start()
      const collected = workers[0]!.collect('model', 1, wait(servers.length))
      await publishModels(servers, 1)
      const vectors = await collected
      expect(vectors.map((v) => v.sender).sort()).toEqual(servers.map((s) => s.selfId).sort())
      expect(vectors.every((v) => v.round === 1)).toBe(true)
    })

    it('gives exactly `quorum` vectors, from distinct senders', async () => {
      const { servers, workers } = await start()
      await publishModels(servers, 0)
      // All three arrived: the later collect with quorum 2 must still give two.
      await workers[0]!.collect('model', 0, wait(servers.length))
      const two = await workers[0]!.collect('model', 0, wait(2))
      expect(two).toHaveLength(2)
      expect(new Set(two.map((v) => v.sender)).size).toBe(2)
    })

    it('keeps what arrived: a second collect of the same round gets the same vectors', async () => {
      const { servers, workers } = await start()
      await publishModels(servers, 0)
      const first = await workers[1]!.collect('model', 0, wait(servers.length))
      const again = await workers[1]!.collect('model', 0, wait(servers.length))
      expect(bySender(again)).toEqual(bySender(first))
    })

    it('times out with QuorumTimeoutError (code quorum_timeout) naming the senders that did arrive', async () => {
      const { servers, workers } = await start()
      const [s0, s1] = servers
      await s0!.publish('model', 0, vectorOf(0, 0))
      await s1!.publish('model', 0, vectorOf(1, 0))
      // Both are in before the wait that cannot complete starts.
      await workers[0]!.collect('model', 0, wait(2))
      const error = await rejection(
        workers[0]!.collect('model', 0, { quorum: servers.length, timeoutMs: shortTimeoutMs }),
      )
      expect(isPhalanxError(error, 'quorum_timeout')).toBe(true)
      expect(error).toMatchObject({
        name: 'QuorumTimeoutError',
        details: { kind: 'model', round: 0, quorum: servers.length, timeoutMs: shortTimeoutMs },
      })
      expect([...(error as { senders: string[] }).senders].sort()).toEqual([s0!.selfId, s1!.selfId].sort())
    })

    it.each<[string, VectorKind, number]>([
      ['another round', 'model', 1],
      ['another kind', 'gradient', 0],
    ])('keeps kinds and rounds apart: models of round 0 do not count for %s', async (_, kind, round) => {
      const { servers } = await start()
      await publishModels(servers, 0)
      await servers[0]!.collect('model', 0, wait(servers.length))
      const error = await rejection(
        servers[0]!.collect(kind, round, { quorum: 1, timeoutMs: shortTimeoutMs }),
      )
      expect(isPhalanxError(error, 'quorum_timeout')).toBe(true)
      expect(error).toMatchObject({ details: { kind, round, senders: [] } })
    })

    it('counts a sender once, however often it publishes the same vector', async () => {
      const { servers, workers } = await start()
      const [s0, s1] = servers
      await s0!.publish('model', 0, vectorOf(0, 0))
      await s0!.publish('model', 0, vectorOf(0, 0))
      await s1!.publish('model', 0, vectorOf(1, 0))
      await workers[0]!.collect('model', 0, wait(2))
      const error = await rejection(workers[0]!.collect('model', 0, { quorum: 3, timeoutMs: shortTimeoutMs }))
      expect(isPhalanxError(error, 'quorum_timeout')).toBe(true)
      expect((error as { senders: string[] }).senders).toHaveLength(2)
    })

    it('refuses to publish a vector of another dimension (dimension_mismatch)', async () => {
      const { servers } = await start()
      const error = await rejection(servers[0]!.publish('model', 0, new Float32Array(contractDimension + 1)))
      expect(isPhalanxError(error, 'dimension_mismatch')).toBe(true)
      expect(error).toMatchObject({ expected: contractDimension, actual: contractDimension + 1 })
    })

    it('finds the newest round with a quorum (newest, ahead)', async () => {
      const { servers, workers } = await start()
      await publishModels(servers, 0)
      await publishModels(servers, 1)
      await workers[0]!.collect('model', 1, wait(servers.length))
      const newest = await workers[0]!.newest('model', wait(servers.length))
      expect(newest.round).toBe(1)
      expect(newest.vectors.map((v) => v.sender).sort()).toEqual(servers.map((s) => s.selfId).sort())
      const ahead = workers[0]!.ahead?.('model', 0, servers.length)
      expect(ahead?.round).toBe(1)
      expect(workers[0]!.ahead?.('model', 1, servers.length)).toBeUndefined()
    })

    it('times out a newest with no round complete: quorum_timeout without a round', async () => {
      const { servers, workers } = await start()
      await servers[0]!.publish('model', 0, vectorOf(0, 0))
      await workers[0]!.collect('model', 0, wait(1))
      const error = await rejection(
        workers[0]!.newest('model', { quorum: servers.length, timeoutMs: shortTimeoutMs }),
      )
      expect(isPhalanxError(error, 'quorum_timeout')).toBe(true)
      expect(error).toMatchObject({ details: { kind: 'model', quorum: servers.length, perRound: { 0: 1 } } })
      expect((error as { round?: number }).round).toBeUndefined()
    })

    it.each(['collect', 'newest'] as const)(
      'rejects an aborted %s with the signal’s reason, not a timeout',
      async (wait) => {
        const { workers } = await start()
        const reason = new Error('stopping')
        const pending = new AbortController()
        const call = (signal: AbortSignal) =>
          wait === 'collect'
            ? workers[0]!.collect('model', 0, { quorum: 3, timeoutMs: longTimeoutMs, signal })
            : workers[0]!.newest('model', { quorum: 3, timeoutMs: longTimeoutMs, signal })
        const waiting = rejection(call(pending.signal))
        pending.abort(reason)
        expect(await waiting).toBe(reason)
        // A signal aborted before the call: rejected at once, not after the timeout.
        expect(await rejection(call(AbortSignal.abort(reason)))).toBe(reason)
      },
    )

    it('never delivers a non-finite vector, and counts it as non_finite', async () => {
      const { servers, workers } = await start()
      const poisoned = vectorOf(0, 0)
      poisoned[1] = Number.NaN
      await servers[0]!.publish('model', 0, poisoned)
      // From the same sender on the same stream after it: once round 1 is in, round 0's was judged.
      await servers[0]!.publish('model', 1, vectorOf(0, 1))
      await workers[0]!.collect('model', 1, wait(1))
      expect(workers[0]!.rejected().non_finite).toBeGreaterThanOrEqual(1)
      const error = await rejection(workers[0]!.collect('model', 0, { quorum: 1, timeoutMs: shortTimeoutMs }))
      expect(isPhalanxError(error, 'quorum_timeout')).toBe(true)
    })
  })
}
