import { InvalidQuorumError, QuorumAbortedError, QuorumTimeoutError } from './errors.js'
import type { CollectOptions, DeliveredVector, EquivocationEvidence, VectorKind } from './types.js'

/** What the quorum helper needs from a node: what has arrived, and what arrives next. */
export interface QuorumSource {
  received(kind: VectorKind, round: number): readonly DeliveredVector[]
  onVector(listener: (vector: DeliveredVector) => void): () => void
  onEquivocation(listener: (evidence: EquivocationEvidence) => void): () => void
  isEquivocator(kind: VectorKind, round: number, sender: string): boolean
}

/**
 * The first `quorum` valid vectors of `kind` for `round` from distinct senders, in arrival
 * order. A sender caught equivocating for the round is dropped, even after it was counted.
 * Fails with `QuorumTimeoutError` (naming who did arrive) or `QuorumAbortedError`.
 */
export function collectQuorum(
  source: QuorumSource,
  kind: VectorKind,
  round: number,
  options: CollectOptions,
): Promise<DeliveredVector[]> {
  const { quorum, timeoutMs, signal } = options
  if (!Number.isInteger(quorum) || quorum < 1) {
    return Promise.reject(
      new InvalidQuorumError(`quorum must be a positive integer, got ${quorum}`, { quorum, members: 0 }),
    )
  }
  const bySender = new Map<string, DeliveredVector>()
  const take = (vector: DeliveredVector): void => {
    if (vector.kind !== kind || vector.round !== round || bySender.has(vector.sender)) return
    if (source.isEquivocator(kind, round, vector.sender)) return
    bySender.set(vector.sender, vector)
  }
  for (const vector of source.received(kind, round)) take(vector)
  if (bySender.size >= quorum) return Promise.resolve([...bySender.values()].slice(0, quorum))

  return new Promise<DeliveredVector[]>((resolve, reject) => {
    const cleanups: Array<() => void> = []
    const finish = (): void => {
      for (const cleanup of cleanups) cleanup()
    }
    const senders = (): string[] => [...bySender.keys()]
    const onAbort = (): void => {
      finish()
      reject(
        new QuorumAbortedError(
          `quorum of ${quorum} ${kind}s for round ${round} aborted with ${bySender.size} arrived`,
          { round, arrived: bySender.size, senders: senders() },
          { cause: signal?.reason },
        ),
      )
    }
    if (signal?.aborted) {
      onAbort()
      return
    }
    cleanups.push(
      source.onVector((vector) => {
        take(vector)
        if (bySender.size >= quorum) {
          finish()
          resolve([...bySender.values()].slice(0, quorum))
        }
      }),
    )
    cleanups.push(
      source.onEquivocation((evidence) => {
        if (evidence.kind === kind && evidence.round === round) bySender.delete(evidence.sender)
      }),
    )
    const timer = setTimeout(() => {
      finish()
      const arrived = senders()
      reject(
        new QuorumTimeoutError(
          `only ${arrived.length} of ${quorum} ${kind}s for round ${round} arrived within ${timeoutMs} ms` +
            (arrived.length > 0 ? ` (from ${arrived.join(', ')})` : ''),
          { kind, round, required: quorum, arrived: arrived.length, senders: arrived, timeoutMs },
        ),
      )
    }, timeoutMs)
    cleanups.push(() => clearTimeout(timer))
    if (signal !== undefined) {
      signal.addEventListener('abort', onAbort, { once: true })
      cleanups.push(() => signal.removeEventListener('abort', onAbort))
    }
  })
}
