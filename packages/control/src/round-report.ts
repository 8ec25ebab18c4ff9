/**
 * The end-of-round record a node hands to both telemetry (published) and its metrics (observed);
 * in a file of its own so that neither of those two modules imports the other for it.
 */
import type { Suspicion } from './subjects.js'

/** What a node knows at the end of a round; identity and timestamp are filled in by the publisher. */
export interface RoundReport {
  round: number
  accuracy?: number
  loss?: number
  drift?: number
  roundDurationSeconds?: number
  /** Total time this round spent waiting for quorums (published in telemetry). */
  quorumWaitSeconds?: number
  /** The same wait split by what was awaited (recorded in `phalanx_quorum_wait_seconds{input}`). */
  quorumWaitByInputSeconds?: Readonly<Partial<Record<'models' | 'gradients', number>>>
  rejected?: Readonly<Record<string, number>>
  suspicions?: readonly Suspicion[]
  modelDistances?: Readonly<Record<string, number>>
  gradientSenders?: string[]
}
