import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { CheckpointInfo, ExclusionReason, MedianFn } from '../src/index.js'
import {
  checkpointObjectName,
  chooseAgreedCheckpoint,
  decodeModel,
  encodeModel,
  sha256Hex,
} from '../src/index.js'

const median: MedianFn = (models) =>
  Float32Array.from(models[0]!, (_, i) => {
    const column = models.map((m) => m[i]!).sort((a, b) => a - b)
    const mid = column.length >> 1
    return column.length % 2 === 1 ? column[mid]! : (column[mid - 1]! + column[mid]!) / 2
  })

interface Fixture {
  info: CheckpointInfo
  bytes: Uint8Array
}

/** An honest checkpoint: the stored bytes are the model, and the metadata tells the truth. */
function honest(serverId: string, round: number, model: number[], configHash = 'cfg'): Fixture {
  const bytes = encodeModel(Float32Array.from(model))
  return {
    info: {
      serverId,
      round,
      configHash,
      sha256: sha256Hex(bytes),
      dimension: model.length,
      objectName: checkpointObjectName(serverId, round),
      size: bytes.byteLength,
    },
    bytes,
  }
}

/** Stored bytes differ from what the metadata's digest vouches for (tampered or forged). */
function forgedDigest(serverId: string, round: number, claimed: number[], stored: number[]): Fixture {
  const fixture = honest(serverId, round, claimed)
  return { ...fixture, bytes: encodeModel(Float32Array.from(stored)) }
}

async function choose(
  fixtures: Fixture[],
  options: { quorum?: number; dimension?: number; servers?: string[] } = {},
) {
  const byName = new Map(fixtures.map((f) => [f.info.objectName + f.info.serverId, f.bytes]))
  return chooseAgreedCheckpoint({
    checkpoints: fixtures.map((f) => f.info),
    load: async (info) => {
      const bytes = byName.get(info.objectName + info.serverId)
      if (bytes === undefined) throw new Error('object vanished')
      return bytes
    },
    serverQuorum: options.quorum ?? 3,
    configHash: 'cfg',
    median,
    ...(options.dimension === undefined ? {} : { dimension: options.dimension }),
    // Unless a case says otherwise, every server that wrote a fixture is a member.
    servers: options.servers ?? [...new Set(fixtures.map((f) => f.info.serverId))],
  })
}

const reasons = (excluded: { serverId: string; round: number; reason: ExclusionReason }[]) =>
  excluded.map((e) => `${e.serverId}@${e.round}:${e.reason}`).sort()

describe('chooseAgreedCheckpoint (N = 4, F = 1, quorum N−F = 3)', () => {
  it.each<{
    name: string
    fixtures: Fixture[]
    round: number | undefined
    model?: number[]
    servers?: string[]
    excluded: string[]
  }>([
    {
      name: 'takes the coordinate-wise median of three honest checkpoints',
      fixtures: [honest('s0', 5, [1, 10]), honest('s1', 5, [2, 30]), honest('s2', 5, [3, 20])],
      round: 5,
      model: [2, 20],
      servers: ['s0', 's1', 's2'],
      excluded: [],
    },
    {
      name: 'a Byzantine model with a valid digest is outvoted by the median, not chosen',
      fixtures: [
        honest('s0', 5, [1, 10]),
        honest('s1', 5, [2, 30]),
        honest('s2', 5, [3, 20]),
        honest('s3', 5, [1e6, -1e6]),
      ],
      round: 5,
      model: [2.5, 15],
      servers: ['s0', 's1', 's2', 's3'],
      excluded: [],
    },
    {
      name: 'a newer round vouched for by one server alone is ignored',
      fixtures: [
        honest('s0', 5, [1, 1]),
        honest('s1', 5, [1, 1]),
        honest('s2', 5, [1, 1]),
        honest('s3', 9, [666, 666]),
      ],
      round: 5,
      model: [1, 1],
      servers: ['s0', 's1', 's2'],
      excluded: [],
    },
    {
      name: 'forged checkpoints under honest names (bad digest) cannot make a newer round',
      fixtures: [
        honest('s0', 5, [1, 1]),
        honest('s1', 5, [2, 2]),
        honest('s2', 5, [3, 3]),
        honest('s3', 6, [666, 666]),
        forgedDigest('s0', 6, [1, 1], [666, 666]),
        forgedDigest('s1', 6, [2, 2], [666, 666]),
      ],
      round: 5,
      model: [2, 2],
      servers: ['s0', 's1', 's2'],
      excluded: ['s0@6:digest', 's1@6:digest'],
    },
    {
      name: 'wrong config hash, wrong dimension and non-finite values are each excluded',
      fixtures: [
        honest('s0', 7, [1, 1]),
        honest('s1', 7, [1, 1], 'cfg-old'),
        honest('s2', 7, [1, 1, 1]),
        honest('s3', 7, [Number.NaN, 1]),
        honest('s0', 6, [4, 4]),
        honest('s1', 6, [5, 5]),
        honest('s2', 6, [6, 6]),
      ],
      round: 6,
      model: [5, 5],
      servers: ['s0', 's1', 's2'],
      excluded: ['s1@7:config-hash', 's2@7:dimension', 's3@7:non-finite'],
    },
    {
      name: 'metadata lying about the dimension is caught from the byte count',
      fixtures: [
        honest('s0', 3, [1, 1]),
        honest('s1', 3, [1, 1]),
        honest('s2', 3, [1, 1]),
        { ...honest('s3', 3, [9, 9]), info: { ...honest('s3', 3, [9, 9]).info, dimension: 3 } },
      ],
      round: 3,
      model: [1, 1],
      servers: ['s0', 's1', 's2'],
      excluded: ['s3@3:dimension'],
    },
    {
      name: "a checkpoint filed under another server's object name is excluded",
      fixtures: [
        honest('s0', 2, [1]),
        honest('s1', 2, [1]),
        honest('s2', 2, [1]),
        {
          ...honest('s3', 2, [9]),
          info: { ...honest('s3', 2, [9]).info, objectName: checkpointObjectName('s0', 2) },
        },
      ],
      round: 2,
      model: [1],
      servers: ['s0', 's1', 's2'],
      excluded: ['s3@2:name-mismatch'],
    },
    {
      name: 'fewer than N−F verified checkpoints in every round: nothing agreed',
      fixtures: [honest('s0', 5, [1]), honest('s1', 5, [1]), forgedDigest('s2', 5, [1], [2])],
      round: undefined,
      excluded: ['s2@5:digest'],
    },
    { name: 'an empty bucket: nothing agreed', fixtures: [], round: undefined, excluded: [] },
  ])('$name', async ({ fixtures, round, model, servers, excluded }) => {
    const result = await choose(fixtures)
    expect(result.agreed?.round).toBe(round)
    if (model !== undefined) expect(Array.from(result.agreed!.model)).toEqual(model)
    if (servers !== undefined) expect(result.agreed!.serverIds).toEqual(servers)
    expect(reasons(result.excluded)).toEqual(excluded)
  })

  it('excludes servers outside the given membership, and unreadable objects', async () => {
    const fixtures = [
      honest('s0', 4, [1]),
      honest('s1', 4, [2]),
      honest('s2', 4, [3]),
      honest('intruder', 4, [9]),
    ]
    const result = await choose([...fixtures, { ...honest('s3', 4, [2]), bytes: undefined as never }], {
      servers: ['s0', 's1', 's2', 's3'],
    })
    expect(result.agreed?.serverIds).toEqual(['s0', 's1', 's2'])
    expect(reasons(result.excluded)).toEqual(['intruder@4:unknown-server', 's3@4:unreadable'])
  })

  it('excludes checkpoints the verify callback rejects (e.g. a bad signature)', async () => {
    const fixtures = [honest('s0', 1, [1]), honest('s1', 1, [2]), honest('s2', 1, [3]), honest('s3', 1, [4])]
    const result = await chooseAgreedCheckpoint({
      checkpoints: fixtures.map((f) => f.info),
      load: async (info) => fixtures.find((f) => f.info.serverId === info.serverId)!.bytes,
      serverQuorum: 3,
      configHash: 'cfg',
      median,
      servers: ['s0', 's1', 's2', 's3'],
      verify: (info) => info.serverId !== 's3',
    })
    expect(result.agreed?.serverIds).toEqual(['s0', 's1', 's2'])
    expect(reasons(result.excluded)).toEqual(['s3@1:signature'])
  })

  it('uses an explicit expected dimension over the majority', async () => {
    const fixtures = [honest('s0', 1, [1, 1]), honest('s1', 1, [1, 1]), honest('s2', 1, [1, 1])]
    const result = await choose(fixtures, { dimension: 3 })
    expect(result.agreed).toBeUndefined()
    expect(reasons(result.excluded)).toEqual(['s0@1:dimension', 's1@1:dimension', 's2@1:dimension'])
  })

  it.each([0, -1, 1.5])('rejects serverQuorum %d by name', async (quorum) => {
    await expect(choose([], { quorum })).rejects.toMatchObject({ name: 'CheckpointQuorumError' })
  })

  it('rejects a median function that returns the wrong dimension, by name', async () => {
    const fixtures = [honest('s0', 1, [1, 2]), honest('s1', 1, [1, 2]), honest('s2', 1, [1, 2])]
    await expect(
      chooseAgreedCheckpoint({
        checkpoints: fixtures.map((f) => f.info),
        load: async (info) => fixtures.find((f) => f.info.serverId === info.serverId)!.bytes,
        serverQuorum: 3,
        configHash: 'cfg',
        median: () => new Float32Array(1),
        servers: ['s0', 's1', 's2'],
      }),
    ).rejects.toMatchObject({ name: 'MedianResultError', expectedDimension: 2, actualDimension: 1 })
  })

  it('only reads the models of the round it settles on', async () => {
    const fixtures = [6, 5].flatMap((round) => ['s0', 's1', 's2'].map((s) => honest(s, round, [round])))
    const loaded: string[] = []
    const result = await chooseAgreedCheckpoint({
      checkpoints: fixtures.map((f) => f.info),
      load: async (info) => {
        loaded.push(info.objectName)
        return fixtures.find((f) => f.info.objectName === info.objectName)!.bytes
      },
      serverQuorum: 3,
      configHash: 'cfg',
      median,
      servers: ['s0', 's1', 's2'],
    })
    expect(result.agreed?.round).toBe(6)
    expect(loaded.sort()).toEqual(['s0', 's1', 's2'].map((s) => checkpointObjectName(s, 6)))
  })
})

describe('model encoding', () => {
  it('round-trips any float32 vector through little-endian bytes', () => {
    fc.assert(
      fc.property(fc.float32Array({ maxLength: 64 }), (values) => {
        const decoded = decodeModel(encodeModel(values))
        return decoded.length === values.length && decoded.every((v, i) => Object.is(v, values[i]))
      }),
    )
  })

  it('writes little-endian IEEE 754 (1.0 is 00 00 80 3f)', () => {
    expect(Array.from(encodeModel(Float32Array.of(1)))).toEqual([0x00, 0x00, 0x80, 0x3f])
  })

  it('reads a vector from an unaligned view', () => {
    const buffer = new Uint8Array(9)
    buffer.set(encodeModel(Float32Array.of(1.5, -2)), 1)
    expect(Array.from(decodeModel(buffer.subarray(1)))).toEqual([1.5, -2])
  })

  it('rejects a byte count that is not a whole number of floats', () => {
    expect(() => decodeModel(new Uint8Array(5))).toThrow(RangeError)
  })
})
