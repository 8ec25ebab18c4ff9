/**
 * The vanilla baseline: one honest server, no model exchange. With f = 0 it is the
 * single-process reference (`phalanx simulate`) distributed, bit for bit
 * (test/simulate-equivalence.test.ts).
 */
import { ClusterBoundError } from '../errors.js'
import { gossipMode } from './gossip.js'
import { replicationModeDescriptions } from './names.js'

export const vanilla = gossipMode({
  name: 'vanilla',
  description: replicationModeDescriptions.vanilla,
  antiDrift: false,
  checkBounds({ N, F }) {
    if (N !== 1 || F !== 0) {
      throw new ClusterBoundError('the vanilla baseline has exactly one honest server', 'N = 1, F = 0', {
        N,
        F,
      })
    }
  },
})
