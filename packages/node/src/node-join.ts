/**
 * Where a node without saved state starts, for the modes that exchange models over gossip
 * (median, no-anti-drift, vanilla): joined to a running cluster from the median of N−F models,
 * resumed from an agreed checkpoint, or round 0.
 */
import { isPhalanxError } from '@phalanx/errors'
import type { Logger } from 'pino'
import { describeAgreed } from './checkpointing.js'
import type { ClusterConfig } from './config.js'
import { catchUpCheckEveryMs, retransmitEveryMs } from './protocol.js'
import type { JoinContext, NodeStart } from './replication/mode.js'
import { modelMedian, serverQuorum } from './roles.js'
import type { RoundTransport, RoundVector } from './transport.js'

/**
 * Where a node without saved state starts: joined to a running cluster from the median of N−F
 * models, else resumed from the checkpoint N−F servers agree on (the whole cluster restarted),
 * else round 0 with its seeded model.
 */
export async function joinOrResume(context: JoinContext): Promise<NodeStart> {
  const { node, transport, config, log, signal, checkpoints, highestSigned, role, ready } = context
  // Looked up while the node listens for a running cluster.
  const agreed = checkpoints?.agreed()
  const clusterRound = await announcedClusterRound(node, config, signal, ready)
  // A running cluster past the checkpoint wins (its models are newer). One announcing the
  // checkpoint's round or less is the cluster restarted as a whole, its servers already resumed
  // from it (and announcing while they wait for the rest): the checkpoint is where to start.
  // The one cost: a lone server restarted (without stateDir) right after publishing the model of
  // a checkpoint round that the others still announce publishes the agreed model for that round,
  // not its own, and its peers drop it for that round as an equivocator. Resuming only past the
  // announced round instead would leave servers of a whole-cluster restart that start late (a
  // pod scheduled later) joining without publishing, short of N−F models for good.
  // A worker takes only a round from a checkpoint, and the servers it hears give it one as well
  // (a whole-cluster restart's servers announce the checkpoint's round): it joins them without
  // awaiting the lookup, which lists every checkpoint object of the run, a Byzantine server's
  // forgeries included, and so took longer the longer the run (the soak's flapping worker: 4.5 s
  // at round 60, 39 s at round 1,400).
  if (role === 'worker' && clusterRound > 0)
    return { ...(await joinRunning(transport, config, log, signal, clusterRound)), publishFirst: false }
  const resumed = await agreed
  if (resumed !== undefined && resumed.round >= clusterRound) {
    log.info(describeAgreed(resumed), 'resuming from the agreed checkpoint')
    // No running peer holds a model of this round, so the servers publish it afresh, from the
    // agreed model.
    return { round: resumed.round, model: resumed.model, publishFirst: true }
  }
  // Hearing nobody means a cluster not yet started only for a server that never signed: one whose
  // watermark names a round has been running, its peers are restarting too, and round 0 afresh
  // would be a second model for rounds it signed. It waits for N−F models of a round instead.
  if (clusterRound === 0 && highestSigned === undefined) return { round: 0, publishFirst: true }
  return { ...(await joinRunning(transport, config, log, signal, clusterRound)), publishFirst: false }
}

/**
 * How long a starting node listens for servers' announcements of a round already under way.
 * Servers announce after every round (about one a second here), so two seconds hear one.
 */
export const joinListenMs = 2_500

/**
 * The round servers are at, listening `joinListenMs` and until the node is `ready`: the highest
 * round N−F member servers have signed (announced, or published a model of;
 * `NetNode.clusterRound`), which F Byzantine servers or outsiders cannot reach alone; 0 when none
 * is heard (the cluster has not started). Read once the node can run a round, so that the join
 * starts where the cluster is then, not where it was when the window closed (the chaos suite's
 * restarted worker joined round 221 and, its dataset loaded 6 s later, started ~30 rounds behind).
 */
async function announcedClusterRound(
  node: JoinContext['node'],
  config: ClusterConfig,
  signal: AbortSignal,
  ready: JoinContext['ready'],
): Promise<number> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, joinListenMs)
    function done() {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
  signal.throwIfAborted()
  // A load that fails fails the join (and so the start-up) with its own error.
  await ready?.()
  signal.throwIfAborted()
  return node.clusterRound(serverQuorum(config)) ?? 0
}

/**
 * Joins a cluster running at `clusterRound` (a restart, a late joiner): the newest round with
 * N−F models, starting from their median (the brief's state transfer: no log).
 */
async function joinRunning(
  transport: RoundTransport,
  config: ClusterConfig,
  log: Logger,
  signal: AbortSignal,
  clusterRound: number,
): Promise<{ round: number; model: Float32Array }> {
  transport.setRound(clusterRound)
  const { round, vectors } = await newestModels(transport, config, log, signal)
  log.info(
    { clusterRound, round, from: vectors.map((v) => v.sender) },
    'joined a running cluster from the median of N−F models',
  )
  return { round, model: modelMedian(vectors.map((v) => v.vector)) }
}

/**
 * N−F models of the newest round this node can get, waiting as long as it takes (a node never
 * starts from fewer). A cluster running faster than `roundWindow` rounds per check leaves the
 * window behind: the chaos suite saw a restarted server find 2 of 3 models, give up after one
 * quorum timeout and exit. Each check moves the window to where N−F member servers signed they are.
 */
async function newestModels(
  transport: RoundTransport,
  config: ClusterConfig,
  log: Logger,
  signal: AbortSignal,
): Promise<{ round: number; vectors: RoundVector[] }> {
  const quorum = serverQuorum(config)
  let waited = 0
  for (;;) {
    try {
      return await transport.newest('model', { quorum, timeoutMs: catchUpCheckEveryMs, signal })
    } catch (error) {
      if (!isPhalanxError(error, 'quorum_timeout')) throw error
    }
    const ahead = transport.ahead?.('model', -1, quorum)
    if (ahead !== undefined) return ahead
    waited += catchUpCheckEveryMs
    // A model whose signer is gone may still be held by the peers (see `pull`).
    if (waited % retransmitEveryMs < catchUpCheckEveryMs) await transport.pull?.('model', -1)
    if (waited % config.quorumTimeoutMs < catchUpCheckEveryMs) {
      log.warn({ quorum, waitedMs: waited }, 'stalled: no round with N−F models to join from yet')
    }
  }
}
