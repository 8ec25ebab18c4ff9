/**
 * What the modes that exchange models over gossip share (median, no-anti-drift, vanilla): they
 * join a running cluster from the median of N−F models, and run the round protocol of
 * `protocol.ts`; they differ in their bounds and in whether a server takes the median of the
 * models it receives (anti-drift).
 */
import { joinOrResume } from '../node-join.js'
import { runServer, runWorker } from '../protocol.js'
import { gradientQuorum, modelMedian, serverQuorum } from '../roles.js'
import type { ClusterShape, ReplicationMode } from './mode.js'
import type { ReplicationModeName } from './names.js'

export interface GossipModeInit {
  name: ReplicationModeName
  description: string
  /** Whether a server takes the median of N−F models before its step (false: its own model). */
  antiDrift: boolean
  checkBounds(shape: ClusterShape): void
}

export function gossipMode(init: GossipModeInit): ReplicationMode {
  return {
    name: init.name,
    description: init.description,
    checkBounds: init.checkBounds,
    // Colluding Byzantine workers read the honest gradients of the round before they send.
    subscriptions: (role, byzantine) => (role === 'worker' && byzantine ? ['model', 'gradient'] : undefined),
    heartbeat: true,
    keepsServerState: true,
    join: joinOrResume,
    async beforeFirstPublish({ config, role, node, signal }, start) {
      // A server back from its saved state rejoins a running cluster (or one whose servers all
      // restart): its peers redial it at their own pace, and what they miss of its first publish
      // they get from its re-announcements and pulls. Waiting for a full set of subscribers then
      // hung a restarted server for good in the chaos suite, so only a fresh start waits (this hook
      // is not called after a resume from saved state).
      if (!start.publishFirst) return
      // Everyone the quorums need must hear the first round: wait until enough peers subscribe
      // before the first publish (gossip has no history).
      const peersNeeded = role === 'server' ? serverQuorum(config) - 1 + gradientQuorum(config) : 1
      await node.waitForSubscribers(role === 'server' ? 'model' : 'gradient', Math.max(1, peersNeeded), {
        signal,
      })
    },
    runServer: (run) =>
      runServer(
        {
          transport: run.transport,
          log: run.log,
          serverQuorum: serverQuorum(run.config),
          gradientQuorum: run.gradientQuorum,
          aggregate: run.aggregate,
          senderRank: run.senderRank,
          median: modelMedian,
          learningRate: run.learningRate,
          antiDrift: init.antiDrift,
          exchangeEvery: run.config.exchangeEvery,
          quorumTimeoutMs: run.config.quorumTimeoutMs,
          behaviour: run.behaviour,
          onRound: run.onRound,
        },
        run.start.model === undefined
          ? { round: 0, model: run.initial, publishFirst: true }
          : // Joining a running cluster, it may have published this round before it restarted: a
            // second, different model would be equivocation, so it publishes from the next round on.
            { round: run.start.round, model: run.start.model, publishFirst: run.start.publishFirst },
        run.config.rounds,
        run.signal,
      ),
    runWorker: (run) => {
      const honestWorkers = run.config.workers - run.config.byzantineWorkers
      return runWorker(
        {
          transport: run.transport,
          log: run.log,
          serverQuorum: serverQuorum(run.config),
          median: modelMedian,
          gradient: run.gradient,
          quorumTimeoutMs: run.config.quorumTimeoutMs,
          // Colluding attackers read about half the honest gradients: enough for the mean and
          // spread, early enough to land in the servers' first n−f.
          collusionQuorum: Math.max(2, Math.ceil(honestWorkers / 2)),
          behaviour: run.behaviour,
          onRound: run.onRound,
        },
        run.start.round,
        run.config.rounds,
        run.signal,
      )
    },
  }
}
