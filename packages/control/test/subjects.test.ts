import { describe, expect, it } from 'vitest'
import type { PayloadKind } from '../src/index.js'
import {
  clusterSubjects,
  decode,
  encode,
  parseNatsServers,
  payloadSchemas,
  RoundRecordSchema,
  roundRecordLocalFields,
  TelemetryEventSchema,
} from '../src/index.js'

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))

const telemetry = {
  nodeId: 's0',
  role: 'server',
  round: 4,
  timestampMs: 1_700_000_000_000,
  quorumWaitSeconds: 0.25,
  rejected: { dimension: 2 },
  suspicions: [
    { suspect: 'peerX', reason: 'equivocation', round: 4, evidence: { a: 'sig1', b: ['sig2', 3] } },
  ],
}
const member = {
  peerId: '12D3KooWabc',
  nodeId: 'w1',
  role: 'worker',
  multiaddrs: ['/ip4/127.0.0.1/tcp/9000'],
}

describe('payload schemas', () => {
  it.each<[PayloadKind, unknown]>([
    ['telemetry', telemetry],
    ['telemetry', { ...telemetry, accuracy: 0.93, drift: 0.001, loss: 0.3, roundDurationSeconds: 1.2 }],
    ['member', member],
    ['membership', { kind: 'admit', member, revision: 3 }],
    ['membership', { kind: 'evict', peerId: '12D3KooWabc', revision: 4 }],
    ['chaos', { kind: 'kill' }],
    ['chaos', { kind: 'corrupt', attack: 'alie', options: { z: 1.5 } }],
    ['chaos', { kind: 'partition', durationMs: 2000 }],
    ['chaosReply', { ok: true, nodeId: 'w1', kind: 'pause' }],
    [
      'chaosReply',
      { ok: false, nodeId: 'w1', kind: 'pause', error: { name: 'ChaosDisabledError', message: 'no' } },
    ],
    [
      'checkpoint',
      { serverId: 's0', round: 1, configHash: 'h', sha256: 'a'.repeat(64), dimension: 3, objectName: 'x' },
    ],
  ])('%s accepts %j and round-trips it', (kind, payload) => {
    const decoded = decode(kind, encode(kind, payload as never))
    expect(decoded).toEqual({ ok: true, value: payloadSchemas[kind].parse(payload) })
  })

  it.each<[PayloadKind, unknown, string]>([
    ['telemetry', { ...telemetry, round: -1 }, 'round'],
    ['telemetry', { ...telemetry, round: 1.5 }, 'round'],
    ['telemetry', { ...telemetry, accuracy: 1.2 }, 'accuracy'],
    ['telemetry', { ...telemetry, drift: Number.POSITIVE_INFINITY }, 'drift'],
    ['telemetry', { ...telemetry, role: 'client' }, 'role'],
    ['telemetry', { ...telemetry, nodeId: 'a.b' }, 'nodeId'],
    ['telemetry', { ...telemetry, rejected: { dimension: -1 } }, 'rejected'],
    ['member', { ...member, peerId: 'x y' }, 'peerId'],
    ['chaos', { kind: 'explode' }, 'kind'],
    ['chaos', { kind: 'partition', durationMs: 0 }, 'durationMs'],
    ['chaos', { kind: 'corrupt', options: {} }, 'attack'],
    [
      'checkpoint',
      { serverId: 's0', round: 1, configHash: 'h', sha256: 'nothex', dimension: 3, objectName: 'x' },
      'sha256',
    ],
  ])('%s rejects %j (problem in %s)', (kind, payload, field) => {
    let thrown: unknown
    try {
      encode(kind, payload as never)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toMatchObject({ name: 'InvalidPayloadError', kind })
    expect((thrown as { issues: string[] }).issues.join(' ')).toContain(field)
    const decoded = decode(kind, bytes(payload))
    expect(decoded.ok).toBe(false)
  })

  it.each([
    ['not JSON', new TextEncoder().encode('{round: 1')],
    ['not UTF-8', Uint8Array.of(0xff, 0xfe, 0x00)],
    ['JSON null', bytes(null)],
  ])('decode reports %s as an InvalidPayloadError without throwing', (_, data) => {
    const result = decode('telemetry', data)
    expect(result.ok).toBe(false)
    expect(!result.ok && result.error.name).toBe('InvalidPayloadError')
  })
})

describe('clusterSubjects', () => {
  it('puts everything under phalanx.<cluster> and names the buckets after the cluster', () => {
    const s = clusterSubjects('lab-1')
    expect([
      s.telemetry('w3'),
      s.telemetryAll,
      s.membership,
      s.chaos('s0'),
      s.checkpoints,
      s.membersBucket,
      s.checkpointsBucket,
      s.log('gradients').subject,
      s.log('gradients').stream,
    ]).toEqual([
      'phalanx.lab-1.telemetry.w3',
      'phalanx.lab-1.telemetry.*',
      'phalanx.lab-1.membership',
      'phalanx.lab-1.chaos.s0',
      'phalanx.lab-1.checkpoints',
      'phalanx-lab-1-members',
      'phalanx-lab-1-checkpoints',
      'phalanx.lab-1.log.gradients',
      'phalanx-lab-1-gradients',
    ])
  })

  it.each(['a.b', 'a*', '>', '', 'sp ace', 'x'.repeat(129)])(
    'rejects the cluster id %j by name',
    (cluster) => {
      expect(() => clusterSubjects(cluster)).toThrow(
        expect.objectContaining({ name: 'InvalidSubjectTokenError' }),
      )
    },
  )

  it.each(['w.1', '*', 'w>'])('rejects the node id %j in a subject', (nodeId) => {
    expect(() => clusterSubjects('c').chaos(nodeId)).toThrow(
      expect.objectContaining({ name: 'InvalidSubjectTokenError', field: 'nodeId' }),
    )
  })
})

describe('parseNatsServers', () => {
  it.each([
    { input: 'nats://127.0.0.1:4222', servers: ['nats://127.0.0.1:4222'], creds: {} },
    { input: '127.0.0.1:4222', servers: ['nats://127.0.0.1:4222'], creds: {} },
    {
      input: 'nats://phalanx:s%3Acret@nats.phalanx.svc:4222',
      servers: ['nats://nats.phalanx.svc:4222'],
      creds: { user: 'phalanx', pass: 's:cret' },
    },
    { input: 'nats://t0ken@h:4222', servers: ['nats://h:4222'], creds: { token: 't0ken' } },
    {
      input: 'nats://u:p@a:4222,nats://b:4222',
      servers: ['nats://a:4222', 'nats://b:4222'],
      creds: { user: 'u', pass: 'p' },
    },
    {
      input: ['nats://a:1', 'nats://u:p@b:2'],
      servers: ['nats://a:1', 'nats://b:2'],
      creds: { user: 'u', pass: 'p' },
    },
  ])('$input → servers without credentials', ({ input, servers, creds }) => {
    const parsed = parseNatsServers(input)
    expect(parsed).toEqual({ servers, ...creds })
    expect(JSON.stringify(parsed.servers)).not.toMatch(/@/)
  })
})

describe('the round record', () => {
  it('is the telemetry event without the publisher’s fields, with the local ones', () => {
    const published = Object.keys(TelemetryEventSchema.shape).filter(
      (key) => !['timestampMs', 'peerId', 'signature'].includes(key),
    )
    expect(Object.keys(RoundRecordSchema.shape).sort()).toEqual(
      [...published, ...Object.keys(roundRecordLocalFields)].sort(),
    )
    // Its types are the telemetry schema's: a negative round is refused by both.
    const { timestampMs: _, ...record } = telemetry
    expect(RoundRecordSchema.safeParse(record).success).toBe(true)
    expect(RoundRecordSchema.safeParse({ ...record, round: -1 }).success).toBe(false)
  })
})
