/**
 * A Byzantine server stores forged checkpoints under every server's id at each of its own, at
 * rounds past the real ones, so they are what a starting node looks at first. They are refused
 * on their signature, before their objects are read: what a start costs must not grow with how
 * many forgeries the run has piled up (the soak's worker took 4 s to look up at round 60 and
 * 19 s at round 1,100 when every forged object was read first).
 */
import { describe, expect, it } from 'vitest'
import type { CheckpointInfo, MedianFn } from '../src/index.js'
import { checkpointObjectName, chooseAgreedCheckpoint, encodeModel, sha256Hex } from '../src/index.js'

const median: MedianFn = (models) =>
  Float32Array.from(models[0]!, (_, i) => models.map((m) => m[i]!).sort((a, b) => a - b)[models.length >> 1]!)

function checkpoint(
  serverId: string,
  round: number,
  value: number,
): { info: CheckpointInfo; bytes: Uint8Array } {
  const bytes = encodeModel(Float32Array.from([value, value]))
  return {
    info: {
      serverId,
      round,
      configHash: 'cfg',
      sha256: sha256Hex(bytes),
      dimension: 2,
      objectName: checkpointObjectName(serverId, round),
      size: bytes.byteLength,
      signature: `signed-by-${serverId}`,
    },
    bytes,
  }
}

describe('forged checkpoints', () => {
  it.each([1, 10, 100])(
    '%i forged rounds: refused unread, the real newest round agreed',
    async (forgedRounds) => {
      const servers = ['s0', 's1', 's2', 's3']
      const real = servers.slice(1).map((id) => checkpoint(id, 50, 1))
      const forged = Array.from({ length: forgedRounds }, (_, i) =>
        servers.map((id) => checkpoint(id, 1_000_050 + 10 * i, 9)),
      ).flat()
      const all = [...real, ...forged.map((f) => ({ ...f, info: { ...f.info, signature: 'forged' } }))]
      const read: string[] = []
      const result = await chooseAgreedCheckpoint({
        checkpoints: all.map((c) => c.info),
        load: async (info) => {
          read.push(info.objectName)
          return all.find((c) => c.info.objectName === info.objectName)!.bytes
        },
        serverQuorum: 3,
        configHash: 'cfg',
        median,
        servers,
        verify: (info) => info.signature === `signed-by-${info.serverId}`,
      })
      expect(result.agreed?.round).toBe(50)
      expect(result.excluded.filter((e) => e.reason === 'signature')).toHaveLength(forged.length)
      // Only the three real objects were read, however many forgeries came before them.
      expect(read.sort()).toEqual(real.map((c) => c.info.objectName).sort())
    },
  )
})
