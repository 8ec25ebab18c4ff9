/**
 * The end-of-round record a node hands to both telemetry (published) and its metrics (observed);
 * in a file of its own so that neither of those two modules imports the other for it.
 */
import type { RoundRecord } from './subjects.js'

/**
 * What a publisher is handed: a node's `RoundRecord` without the identity the publisher fills in
 * (node id, role) and with every field but the round optional (an absent list is empty).
 */
export type RoundReport = Pick<RoundRecord, 'round'> & Partial<Omit<RoundRecord, 'round' | 'nodeId' | 'role'>>
