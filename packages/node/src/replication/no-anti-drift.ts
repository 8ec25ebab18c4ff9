/**
 * The no-anti-drift baseline: N servers, each applies its own aggregate to its own model and
 * never takes a median, so honest servers drift apart by what each saw first.
 */
import { gossipMode } from './gossip.js'
import { replicationModeDescriptions } from './names.js'

export const noAntiDrift = gossipMode({
  name: 'no-anti-drift',
  description: replicationModeDescriptions['no-anti-drift'],
  antiDrift: false,
  // Nothing beyond F < N: without a median there is no bound on F to meet, and no protection.
  checkBounds() {},
})
