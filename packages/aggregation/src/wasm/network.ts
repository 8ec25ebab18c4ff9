/**
 * Batcher's odd–even merge sorting network for any n (built for the next power of two; a
 * comparator touching a position ≥ n compares against +∞ and is dropped), pruned to the
 * comparators that can still change one of the `needed` output positions.
 */
export function comparatorNetwork(n: number, needed: readonly number[]): [number, number][] {
  let size = 1
  while (size < n) size *= 2
  const full: [number, number][] = []
  for (let p = 1; p < size; p *= 2) {
    for (let k = p; k >= 1; k = Math.floor(k / 2)) {
      for (let j = k % p; j <= size - 1 - k; j += 2 * k) {
        for (let i = 0; i <= Math.min(k - 1, size - j - k - 1); i++) {
          if (Math.floor((i + j) / (2 * p)) === Math.floor((i + j + k) / (2 * p))) {
            const a = i + j
            const b = i + j + k
            if (b < n) full.push([a, b])
          }
        }
      }
    }
  }
  // Walking backwards: a comparator matters when one of its outputs is needed later, and
  // then both of its inputs are.
  const live = new Set(needed)
  const kept: [number, number][] = []
  for (let c = full.length - 1; c >= 0; c--) {
    const [a, b] = full[c]!
    if (live.has(a) || live.has(b)) {
      live.add(a)
      live.add(b)
      kept.push([a, b])
    }
  }
  return kept.reverse()
}
