import { describe, expect, it } from 'vitest'
import { configHash } from '../src/checkpointing.js'
import { resolveConfig } from '../src/config.js'
import { forgedCheckpointLead, forgedCheckpoints } from '../src/roles.js'

const base = resolveConfig({ model: 'linear', dataset: 'synthetic', nodeId: 'server-1' })

describe('configHash', () => {
  it.each([
    ['nodeId', { nodeId: 'server-2' }],
    ['rounds', { rounds: 5000 }],
    ['listen', { listen: ['/ip4/127.0.0.1/tcp/9000'] }],
    ['opsPort', { opsPort: 9464 }],
    ['natsUrl', { natsUrl: 'nats://10.0.0.1:4222' }],
    ['checkpointEvery', { checkpointEvery: 3 }],
  ])('ignores the per-node or run-length field %s', (_field, change) => {
    expect(configHash(resolveConfig({ ...base, ...change }))).toBe(configHash(base))
  })

  it.each([
    ['cluster', { cluster: 'other' }],
    ['seed', { seed: 2 }],
    ['learningRate', { learningRate: 0.1 }],
    ['rule', { rule: 'median' }],
    ['servers', { servers: 7, byzantineServers: 2 }],
    ['model', { model: 'logistic' }],
    ['signFlipScale', { signFlipScale: 10 }],
    ['alieZ', { alieZ: 100 }],
  ])('changes with the training field %s', (_field, change) => {
    expect(configHash(resolveConfig({ ...base, ...change }))).not.toBe(configHash(base))
  })
})

describe('forgedCheckpoints', () => {
  const honest = { round: 20, model: Float32Array.from([0.5, -1, 0]) }
  const serverIds = ['s0', 's1', 's2', 's3']

  it.each([
    ['none', [honest]],
    ['crash', []],
  ] as const)('a Byzantine server with attack %s stores %j', (serverAttack, expected) => {
    expect(forgedCheckpoints(resolveConfig({ ...base, serverAttack }))(honest, serverIds)).toEqual(expected)
  })

  it.each(['reversed', 'shift', 'random'] as const)(
    'with attack %s it stores a far-off model for the round, and for a far newer round under every server’s name',
    (serverAttack) => {
      const stored = forgedCheckpoints(resolveConfig({ ...base, serverAttack }))(honest, serverIds)
      expect(stored.map(({ serverId, round }) => ({ serverId, round }))).toEqual([
        { serverId: undefined, round: 20 },
        ...serverIds.map((serverId) => ({ serverId, round: 20 + forgedCheckpointLead })),
      ])
      for (const { model } of stored) {
        expect(model.every((value, i) => Math.abs(value - honest.model[i]!) > 10)).toBe(true)
      }
    },
  )
})
