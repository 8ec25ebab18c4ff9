import fc from 'fast-check'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { MemoryBus } from '../src/memory-transport.js'
import { aggregationOrder, runServer, runWorker, type ServerBehaviour } from '../src/protocol.js'

// Small stand-ins for the GARs so this file tests the protocol alone: coordinate-wise median.
const median = (vectors: readonly Float32Array[]): Float32Array => {
  const d = vectors[0]!.length
  const out = new Float32Array(d)
  for (let j = 0; j < d; j++) {
    const column = vectors.map((v) => v[j]!).sort((a, b) => a - b)
    const mid = column.length >> 1
    out[j] = column.length % 2 ? column[mid]! : (column[mid - 1]! + column[mid]!) / 2
  }
  return out
}

const silent = pino({ level: 'silent' })
const target = Float32Array.from([1, -2, 3, 0.5])
// Quadratic loss ½‖θ − θ*‖²: the gradient at θ is θ − θ*; each worker adds a fixed bias so
// honest gradients differ a little, as stochastic ones would.
const workerGradient = (bias: number) => (params: Float32Array) =>
  params.map((value, i) => value - target[i]! + bias * (i % 2 ? 1 : -1))

interface ClusterOptions {
  antiDrift: boolean
  byzantineServer?: ServerBehaviour
  rounds: number
}

async function runCluster(options: ClusterOptions) {
  const servers = 4
  const byzantineServers = 1
  const workers = 5
  const bus = new MemoryBus(target.length)
  const controller = new AbortController()
  const finals = new Map<string, Float32Array>()
  const drifts: number[] = []
  const perRound = new Map<number, Map<string, Float32Array>>()
  const serverRuns = Array.from({ length: servers }, (_, s) => {
    const id = `server-${s}`
    const behaviour = s === 0 ? options.byzantineServer : undefined
    return runServer(
      {
        transport: bus.join(id),
        log: silent,
        serverQuorum: servers - byzantineServers,
        gradientQuorum: workers,
        aggregate: median,
        median,
        learningRate: () => 0.2,
        antiDrift: options.antiDrift,
        exchangeEvery: 1,
        quorumTimeoutMs: 5_000,
        ...(behaviour ? { behaviour } : {}),
        onRound: (event, model) => {
          if (s === 0) return
          const models = perRound.get(event.round) ?? new Map<string, Float32Array>()
          models.set(id, model)
          perRound.set(event.round, models)
          if (models.size === servers - 1) {
            const honest = [...models.values()]
            let max = 0
            for (const a of honest)
              for (const b of honest) max = Math.max(max, Math.hypot(...a.map((v, i) => v - b[i]!)))
            drifts.push(max)
          }
        },
      },
      { round: 0, model: new Float32Array(target.length).fill(s === 0 ? 0 : s * 0.5), publishFirst: true },
      options.rounds,
      controller.signal,
    ).then((result) => finals.set(id, result.model))
  })
  const workerRuns = Array.from({ length: workers }, (_, w) =>
    runWorker(
      {
        transport: bus.join(`worker-${w}`),
        log: silent,
        serverQuorum: servers - byzantineServers,
        median,
        gradient: workerGradient(0.01 * (w - 2)),
        quorumTimeoutMs: 5_000,
        collusionQuorum: 1,
      },
      0,
      options.rounds,
      controller.signal,
    ),
  )
  await Promise.all([...serverRuns, ...workerRuns])
  return { finals, drifts }
}

const distance = (a: Float32Array, b: Float32Array) => Math.hypot(...a.map((v, i) => v - b[i]!))

describe('round protocol over an in-memory bus', () => {
  it('honest servers converge to the optimum and agree, despite a Byzantine server sending huge models', async () => {
    const huge: ServerBehaviour = { publishModel: (_r, model) => model.map(() => 1e6) }
    const { finals, drifts } = await runCluster({ antiDrift: true, byzantineServer: huge, rounds: 40 })
    for (const s of [1, 2, 3]) expect(distance(finals.get(`server-${s}`)!, target)).toBeLessThan(0.05)
    // After the first exchange every honest server starts from a median of the same three
    // honest-or-bounded models, so they differ only by which 3 of 4 models each saw first.
    expect(Math.max(...drifts.slice(5))).toBeLessThan(0.05)
  })

  it('without the median exchange, honest servers that start apart stay apart', async () => {
    const { drifts } = await runCluster({ antiDrift: false, rounds: 10 })
    // Different starting points (0.5, 1.0, 1.5 per coordinate) contract only by (1 − η)^r.
    expect(drifts.at(-1)!).toBeGreaterThan(0.1)
  })

  it('a worker that cannot reach the model quorum stalls and logs it, never going on with fewer', async () => {
    const bus = new MemoryBus(2)
    const warnings: unknown[] = []
    const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(JSON.parse(line)) })
    const server = bus.join('server-0')
    const worker = bus.join('worker-0')
    await server.publish('model', 0, Float32Array.from([1, 1]))
    const controller = new AbortController()
    let gradientsSent = 0
    const run = runWorker(
      {
        transport: worker,
        log,
        serverQuorum: 3,
        median,
        gradient: (params) => {
          gradientsSent++
          return params
        },
        quorumTimeoutMs: 100,
        collusionQuorum: 1,
      },
      0,
      5,
      controller.signal,
    )
    await expect.poll(() => warnings.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2)
    controller.abort(new Error('test over'))
    await expect(run).rejects.toThrow('test over')
    expect(gradientsSent).toBe(0)
    expect(warnings[0]).toMatchObject({ round: 0, kind: 'model', quorum: 3 })
  })

  it('an equivocating server is dropped for that round and its two models are not both used', async () => {
    const bus = new MemoryBus(1)
    const a = bus.join('a')
    const b = bus.join('b')
    await a.publishPerReceiver!('model', 0, (_receiver, index) => Float32Array.of(index))
    await b.publish('model', 0, Float32Array.of(7))
    const got = await b.collect('model', 0, { quorum: 1, timeoutMs: 1_000 })
    expect(got.map((v) => v.sender)).toEqual(['b'])
    expect(b.rejected().equivocation).toBeGreaterThan(0)
  })
})

describe('aggregationOrder', () => {
  const vector = (sender: string) => ({ sender, round: 0, vector: new Float32Array(0) })
  const ranks: Record<string, number> = { peerC: 0, peerA: 1, peerB: 2 }

  it.each([
    // arrival order, rank, aggregation order
    [['peerB', 'peerA', 'peerC'], undefined, ['peerA', 'peerB', 'peerC']],
    [['peerB', 'peerA', 'peerC'], (sender: string) => ranks[sender]!, ['peerC', 'peerA', 'peerB']],
    // Equal ranks (senders outside the configured members) fall back to the peer id.
    [['peerZ', 'peerC', 'peerY'], (sender: string) => ranks[sender] ?? 9, ['peerC', 'peerY', 'peerZ']],
  ])('%j ranked by %s is aggregated as %j', (arrival, rank, expected) => {
    expect(aggregationOrder(arrival.map(vector), rank).map((g) => g.sender)).toEqual(expected)
  })

  it('does not depend on the arrival order', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: 0, max: 3 }),
        (senders, modulus) => {
          const rank = (sender: string) => (modulus === 0 ? 0 : sender.length % modulus)
          const once = aggregationOrder(senders.map(vector), rank).map((g) => g.sender)
          const reversed = aggregationOrder(senders.map(vector).reverse(), rank).map((g) => g.sender)
          return once.join('\u0000') === reversed.join('\u0000') && once.length === senders.length
        },
      ),
    )
  })
})
