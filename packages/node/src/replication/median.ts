/** The default protocol: every server takes the median of the N−F server models it receives. */
import { ClusterBoundError } from '../errors.js'
import { gossipMode } from './gossip.js'
import { replicationModeDescriptions } from './names.js'

export const median = gossipMode({
  name: 'median',
  description: replicationModeDescriptions.median,
  antiDrift: true,
  checkBounds({ N, F }) {
    if (N - F < 2 * F + 1) {
      throw new ClusterBoundError('the model median cannot tolerate F Byzantine servers', 'N−F ≥ 2F+1', {
        N,
        F,
      })
    }
  },
})
