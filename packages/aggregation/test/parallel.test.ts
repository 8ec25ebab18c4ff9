/**
 * The worker-thread variants give the synchronous rules' results (bit for bit: Gram matrices
 * of coordinate ranges add up in float64, coordinate-wise kernels are per coordinate) and the
 * same named errors; workers stop on shutdown.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { bulyan, createRandom, krum, meamed, median, multiKrum, trimmedMean } from '../src/index.js'
import { createParallel } from '../src/parallel.js'

const pool = createParallel({ threads: 3 })
afterAll(() => pool.shutdown())

function gaussian(n: number, d: number, seed: number): Float32Array[] {
  const random = createRandom(seed)
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, () => random.normal()))
}

describe('parallel variants', () => {
  it.each([
    [11, 1],
    [11, 20_001],
    [32, 50_003],
  ])('match the synchronous rules (n=%d, d=%d), plain and shared inputs', async (n, d) => {
    const inputs = gaussian(n, d, n + d)
    const f = Math.floor((n - 3) / 4)
    for (const x of [inputs, pool.shareInputs(inputs)]) {
      expect([...(await pool.krum(x, { f }))]).toEqual([...krum(inputs, { f })])
      expect([...(await pool.multiKrum(x, { f }))]).toEqual([...multiKrum(inputs, { f })])
      expect([...(await pool.bulyan(x, { f }))]).toEqual([...bulyan(inputs, { f })])
      expect([...(await pool.median(x, { f }))]).toEqual([...median(inputs, { f })])
      expect([...(await pool.trimmedMean(x, { f }))]).toEqual([...trimmedMean(inputs, { f })])
      expect([...(await pool.meamed(x, { f }))]).toEqual([...meamed(inputs, { f })])
    }
  })

  it('concurrent calls do not overwrite each other’s staged inputs', async () => {
    const a = gaussian(9, 30_000, 1)
    const b = gaussian(9, 30_000, 2)
    const [ma, mb] = await Promise.all([pool.median(a), pool.median(b)])
    expect([...ma]).toEqual([...median(a)])
    expect([...mb]).toEqual([...median(b)])
  })

  it.each(['krum', 'median', 'trimmedMean'] as const)(
    '%s: same named errors as the synchronous rule',
    async (name) => {
      const inputs = gaussian(11, 40_000, 3)
      inputs[4]![35_000] = Number.NaN
      await expect(pool[name](inputs, { f: 2 })).rejects.toMatchObject({
        name: 'NonFiniteInputError',
        index: 4,
        coordinate: 35_000,
      })
      await expect(pool[name](gaussian(4, 10, 1), { f: 2 })).rejects.toMatchObject({ name: 'BoundError' })
    },
  )
})
