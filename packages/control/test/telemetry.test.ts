import { generateKeyPairSync, sign as signBytes, verify as verifyBytes } from 'node:crypto'
import fc from 'fast-check'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import type {
  ConnectionState,
  ControlConnection,
  PublishOutcome,
  RoundRecord,
  TelemetryEvent,
} from '../src/index.js'
import {
  clusterSubjects,
  createMetrics,
  createTelemetry,
  decode,
  encode,
  renderClusterTable,
  TelemetryEventSchema,
  telemetryStatement,
} from '../src/index.js'

/** A connection whose state the test flips; `publish` validates like the real one. */
function fakeConnection() {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
  let state: ConnectionState = 'connected'
  const listeners = new Set<(state: ConnectionState) => void>()
  const sent: TelemetryEvent[] = []
  const dropped: number[] = []
  const conn = {
    cluster: 'c',
    name: 'fake',
    subjects: clusterSubjects('c'),
    log,
    metrics: {
      invalidPayload: () => undefined,
      telemetryDropped: (n: number) => void dropped.push(n),
      natsDisconnected: () => undefined,
    },
    state: () => state,
    onStateChange: (listener: (s: ConnectionState) => void) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    publish: (kind: 'telemetry', _subject: string, payload: TelemetryEvent): PublishOutcome => {
      if (state !== 'connected') return 'not-connected'
      try {
        encode(kind, payload)
      } catch {
        return 'invalid'
      }
      sent.push(payload)
      return 'sent'
    },
  } as unknown as ControlConnection
  const setState = (next: ConnectionState) => {
    state = next
    for (const listener of listeners) listener(next)
  }
  return { conn, setState, sent, dropped, lines }
}

describe('createTelemetry', () => {
  it('publishes a node’s whole round record as the event: its identity the publisher’s, its local fields kept back', async () => {
    const { conn, sent } = fakeConnection()
    const registry = new Registry()
    const metrics = createMetrics(registry, { defaultMetrics: false })
    const telemetry = createTelemetry({ conn, nodeId: 's1', role: 'server', now: () => 99, metrics })
    const record: RoundRecord & { type: 'round' } = {
      type: 'round',
      nodeId: 'someone-else',
      role: 'worker',
      round: 5,
      roundDurationSeconds: 0.2,
      quorumWaitSeconds: 0.15,
      quorumWaitByInputSeconds: { gradients: 0.1, models: 0.05 },
      rejected: { duplicate: 2 },
      rejectedSinceStart: { duplicate: 7 },
      suspicions: [],
      drift: 0.5,
      modelNorm: 2,
      modelDistances: { p: 0.5 },
      cpuSeconds: 0.03,
      modelSenders: ['p'],
    }
    telemetry.publish(record)
    expect(sent).toEqual([
      {
        nodeId: 's1',
        role: 'server',
        round: 5,
        timestampMs: 99,
        roundDurationSeconds: 0.2,
        quorumWaitSeconds: 0.15,
        rejected: { duplicate: 2 },
        suspicions: [],
        drift: 0.5,
        modelDistances: { p: 0.5 },
      },
    ])
    // What stayed local went to the metrics.
    const ratio = (await registry.getSingleMetric('phalanx_model_drift_ratio')!.get()).values[0]?.value
    expect(ratio).toBe(0.25)
  })

  it('fills in identity and timestamp and publishes at once while connected', () => {
    const { conn, sent } = fakeConnection()
    const telemetry = createTelemetry({ conn, nodeId: 'w1', role: 'worker', now: () => 1234 })
    telemetry.publish({ round: 3, accuracy: 0.5 })
    expect(sent).toEqual([
      {
        nodeId: 'w1',
        role: 'worker',
        round: 3,
        accuracy: 0.5,
        timestampMs: 1234,
        quorumWaitSeconds: 0,
        rejected: {},
        suspicions: [],
      },
    ])
    expect(telemetry.stats()).toEqual({
      published: 1,
      buffered: 0,
      dropped: 0,
      invalid: 0,
      outages: 0,
      signFailures: 0,
    })
  })

  it.each([
    { limit: 5, during: 3, dropped: 0, delivered: [1, 2, 3, 4, 5] },
    { limit: 5, during: 8, dropped: 3, delivered: [1, 5, 6, 7, 8, 9, 10] },
    { limit: 1, during: 4, dropped: 3, delivered: [1, 5, 6] },
  ])(
    'with a buffer of $limit and $during events during an outage, drops $dropped oldest and flushes the rest in order',
    ({ limit, during, dropped, delivered }) => {
      const fake = fakeConnection()
      const telemetry = createTelemetry({ conn: fake.conn, nodeId: 's0', role: 'server', bufferLimit: limit })
      telemetry.publish({ round: 1 })
      fake.setState('disconnected')
      for (let round = 2; round < 2 + during; round += 1) telemetry.publish({ round })
      expect(telemetry.stats()).toMatchObject({ buffered: Math.min(limit, during), dropped, outages: 1 })
      fake.setState('connected')
      telemetry.publish({ round: 2 + during })
      expect(fake.sent.map((e) => e.round)).toEqual(delivered)
      expect(fake.dropped.reduce((a, b) => a + b, 0)).toBe(dropped)
      expect(fake.lines.filter((l) => String(l.msg).startsWith('NATS unavailable'))).toHaveLength(1)
      expect(fake.lines.filter((l) => String(l.msg).startsWith('NATS back'))).toEqual([
        expect.objectContaining({ flushed: Math.min(limit, during), dropped }),
      ])
    },
  )

  it('logs each of two outages once', () => {
    const fake = fakeConnection()
    const telemetry = createTelemetry({ conn: fake.conn, nodeId: 's0', role: 'server' })
    for (const outage of [1, 2]) {
      fake.setState('disconnected')
      for (let i = 0; i < 10; i += 1) telemetry.publish({ round: outage * 100 + i })
      fake.setState('connected')
    }
    expect(telemetry.stats()).toMatchObject({ outages: 2, buffered: 0, published: 20 })
    expect(fake.lines.filter((l) => String(l.msg).startsWith('NATS unavailable'))).toHaveLength(2)
  })

  it('neither buffers nor throws on an invalid event; it is counted', () => {
    const fake = fakeConnection()
    const telemetry = createTelemetry({ conn: fake.conn, nodeId: 's0', role: 'server' })
    expect(() => telemetry.publish({ round: 1, accuracy: Number.NaN })).not.toThrow()
    expect(telemetry.stats()).toMatchObject({ invalid: 1, buffered: 0, published: 0 })
  })

  it('stops flushing on connect once closed', () => {
    const fake = fakeConnection()
    const telemetry = createTelemetry({ conn: fake.conn, nodeId: 's0', role: 'server' })
    fake.setState('disconnected')
    telemetry.publish({ round: 1 })
    telemetry.close()
    fake.setState('connected')
    expect(fake.sent).toEqual([])
  })
})

describe('signed telemetry', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const signer = {
    peerId: 'peerS0',
    sign: async (statement: Uint8Array) => signBytes(null, statement, privateKey),
  }
  const verifies = (e: TelemetryEvent) =>
    verifyBytes(null, telemetryStatement(e), publicKey, Buffer.from(e.signature ?? '', 'base64url'))

  it('carries the peer id and a signature over everything but the signature, in publish order', async () => {
    const fake = fakeConnection()
    // A signer that answers out of order must not reorder the events.
    let call = 0
    const slowFirst = {
      peerId: signer.peerId,
      sign: async (statement: Uint8Array) => {
        call += 1
        if (call === 1) await new Promise((resolve) => setTimeout(resolve, 20))
        return signer.sign(statement)
      },
    }
    const telemetry = createTelemetry({ conn: fake.conn, nodeId: 's0', role: 'server', signer: slowFirst })
    for (const round of [1, 2, 3])
      telemetry.publish({ round, drift: 0.1 * round, rejected: { dimension: round } })
    await telemetry.settled()
    expect(fake.sent.map((e) => e.round)).toEqual([1, 2, 3])
    for (const sent of fake.sent) {
      expect(sent.peerId).toBe('peerS0')
      expect(verifies(sent)).toBe(true)
      // What a watcher decodes from the wire verifies too.
      const decoded = decode('telemetry', encode('telemetry', sent))
      expect(decoded.ok && verifies(decoded.value)).toBe(true)
    }
    expect(verifies({ ...fake.sent[0]!, round: 2 ** 40 })).toBe(false)
    expect(telemetry.stats()).toMatchObject({ published: 3, signFailures: 0 })
  })

  it('counts a failed signature once in the log and publishes nothing for it', async () => {
    const fake = fakeConnection()
    const failing = { peerId: 'peerS0', sign: async () => Promise.reject(new Error('key gone')) }
    const telemetry = createTelemetry({ conn: fake.conn, nodeId: 's0', role: 'server', signer: failing })
    telemetry.publish({ round: 1 })
    telemetry.publish({ round: 2 })
    await telemetry.settled()
    expect(fake.sent).toEqual([])
    expect(telemetry.stats()).toMatchObject({ published: 0, signFailures: 2 })
    expect(fake.lines.filter((l) => String(l.msg).startsWith('telemetry signing failed'))).toHaveLength(1)
  })

  it('bounds the events awaiting a signature by the buffer limit', async () => {
    const fake = fakeConnection()
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const stuck = {
      peerId: 'peerS0',
      sign: async (statement: Uint8Array) => gate.then(() => signer.sign(statement)),
    }
    const telemetry = createTelemetry({
      conn: fake.conn,
      nodeId: 's0',
      role: 'server',
      signer: stuck,
      bufferLimit: 3,
    })
    for (let round = 1; round <= 10; round += 1) telemetry.publish({ round })
    expect(telemetry.stats()).toMatchObject({ dropped: 7 })
    release()
    await telemetry.settled()
    expect(fake.sent.map((e) => e.round)).toEqual([1, 2, 3])
  })

  it('covers every field: changing any signed value breaks the signature (property)', async () => {
    const base = TelemetryEventSchema.parse({
      nodeId: 's0',
      role: 'server',
      round: 5,
      timestampMs: 1,
      quorumWaitSeconds: 0.5,
      rejected: { dimension: 2 },
      suspicions: [],
      drift: 0.25,
      peerId: 'peerS0',
    })
    const signature = Buffer.from(await signer.sign(telemetryStatement(base))).toString('base64url')
    fc.assert(
      fc.property(
        fc.record({
          round: fc.nat(),
          drift: fc.double({ min: 0, max: 1e9, noNaN: true }),
          nodeId: fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
        }),
        (changes) => {
          const changed = { ...base, ...changes, signature }
          const same =
            changes.round === base.round && changes.drift === base.drift && changes.nodeId === base.nodeId
          expect(verifies(changed)).toBe(same)
        },
      ),
    )
  })
})

const event = (overrides: Partial<TelemetryEvent>): TelemetryEvent => ({
  nodeId: 's0',
  role: 'server',
  round: 1,
  timestampMs: 10_000,
  quorumWaitSeconds: 0,
  rejected: {},
  suspicions: [],
  ...overrides,
})

describe('renderClusterTable', () => {
  it('shows the latest event per node, servers first, with aligned columns', () => {
    const table = renderClusterTable(
      [
        event({ nodeId: 'w1', role: 'worker', round: 7, accuracy: 0.9123, timestampMs: 9_000 }),
        event({
          nodeId: 's1',
          round: 7,
          drift: 0.00012346,
          quorumWaitSeconds: 1.5,
          rejected: { round: 1, dimension: 3 },
        }),
        event({ nodeId: 's1', round: 6, drift: 9 }),
        event({
          nodeId: 's0',
          round: 8,
          loss: 0.25,
          suspicions: [{ suspect: 's3', reason: 'equivocation', round: 8, evidence: {} }],
        }),
      ],
      { nowMs: 12_500 },
    )
    expect(table).toBe(
      [
        'NODE  ROLE    ROUND  ACCURACY  LOSS  DRIFT      QUORUM_WAIT_S  REJECTED                 SUSPECTS         AGE_S',
        's0    server  8      -         0.25  -          0.000          0                        s3:equivocation  2.5',
        's1    server  7      -         -     0.0001235  1.500          4 (dimension:3,round:1)  -                2.5',
        'w1    worker  7      91.2%     -     -          0.000          0                        -                3.5',
      ].join('\n'),
    )
  })

  it('keeps the newer of two events of the same round', () => {
    const table = renderClusterTable([
      event({ round: 2, timestampMs: 2, accuracy: 0.2 }),
      event({ round: 2, timestampMs: 3, accuracy: 0.3 }),
    ])
    expect(table.split('\n')[1]).toContain('30.0%')
  })

  it('says so when there is nothing to show', () => {
    expect(renderClusterTable([])).toBe('no telemetry yet')
  })
})
