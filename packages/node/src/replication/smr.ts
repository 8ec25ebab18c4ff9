/**
 * The state-machine-replication baseline (`smr.ts` holds the machinery): workers append their
 * gradients to a replicated JetStream log and every replica applies the same first n−f of each
 * round in log order, so replicas never exchange models and a restarted one replays the log.
 */
import { resetSmrLog, runSmrServer, runSmrWorker, smrReplicaOrder } from '../smr.js'
import type { ReplicationMode } from './mode.js'
import { replicationModeDescriptions } from './names.js'

export const smr: ReplicationMode = {
  name: 'smr',
  description: replicationModeDescriptions.smr,
  // A Byzantine replica is not tolerated (it serves a corrupted model); nothing to bound here.
  checkBounds() {},
  // Replicas receive nothing over libp2p: they only publish their model to the workers. Colluding
  // Byzantine workers still read the honest gradients of the round.
  subscriptions: (role, byzantine) =>
    role === 'server' ? [] : byzantine ? ['model', 'gradient'] : undefined,
  // The replica's loop follows the log, not the transport.
  heartbeat: false,
  // A restarted replica replays the log from its first entry.
  keepsServerState: false,
  // Replicas replay the log from its first entry: a previous run's entries must go.
  beforeRun: (config, log) => resetSmrLog({ config, nodeId: 'local', log }),
  // An SMR replica replays the log from its start instead of joining from the models' median.
  join: async () => ({ round: 0, publishFirst: true }),
  runServer: (run) =>
    runSmrServer(
      {
        config: run.config,
        nodeId: run.nodeId,
        node: run.node,
        log: run.log,
        gradientQuorum: run.gradientQuorum,
        aggregate: run.aggregate,
        learningRate: run.learningRate,
        behaviour: run.behaviour,
        onRound: run.onRound,
      },
      run.initial,
      run.config.rounds,
      run.signal,
    ),
  runWorker: (run) =>
    runSmrWorker(
      {
        config: run.config,
        nodeId: run.nodeId,
        node: run.node,
        log: run.log,
        replicas: smrReplicaOrder(run.config, run.index),
        gradient: run.gradient,
        behaviour: run.behaviour,
        onRound: run.onRound,
      },
      run.config.rounds,
      run.signal,
    ),
}
