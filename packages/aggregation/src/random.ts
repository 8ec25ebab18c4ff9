/**
 * Seeded pseudo-random numbers shared by every package that must be reproducible from a
 * seed (bucketing, attacks, data partitioning). Math.random is never used for anything a
 * run's result depends on.
 */

/** A source of uniform floats in [0, 1). */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [0, bound). */
  int(bound: number): number
  /** Standard normal N(0, 1) (Box–Muller, one value per call, the pair's second is cached). */
  normal(): number
}

/**
 * sfc32 seeded through splitmix32: fast, 128 bits of state, passes PractRand to 2^38 bytes,
 * far more than any run here draws. The seed is any integer (its low 32 bits are used).
 */
export function createRandom(seed: number): Random {
  let s = seed >>> 0
  const splitmix = (): number => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
    return (z ^ (z >>> 16)) >>> 0
  }
  let a = splitmix()
  let b = splitmix()
  let c = splitmix()
  let d = splitmix()
  const nextUint32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0
    d = (d + 1) >>> 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) >>> 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) >>> 0
    return t
  }
  let spareNormal: number | undefined
  const next = (): number => nextUint32() / 4294967296
  return {
    next,
    int: (bound) => Math.floor(next() * bound),
    normal: () => {
      if (spareNormal !== undefined) {
        const value = spareNormal
        spareNormal = undefined
        return value
      }
      let u = 0
      while (u === 0) u = next()
      const v = next()
      const radius = Math.sqrt(-2 * Math.log(u))
      spareNormal = radius * Math.sin(2 * Math.PI * v)
      return radius * Math.cos(2 * Math.PI * v)
    },
  }
}

/** Fisher–Yates shuffle of 0..n-1 driven by `random`. */
export function shuffledIndices(n: number, random: Random): number[] {
  const order = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = random.int(i + 1)
    const tmp = order[i]!
    order[i] = order[j]!
    order[j] = tmp
  }
  return order
}
