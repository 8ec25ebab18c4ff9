/**
 * A node process's join/resume phase: where it starts. A server's own saved state first (a
 * restarted server goes on from where it stopped, whether or not N−F others are there to join
 * from, catching up from their median if the cluster moved on); otherwise its replication mode
 * decides (`ReplicationMode.join`). Ends with the `started` report, once the backend and the
 * dataset of a node that computes are ready.
 */

import type { StartedNode } from './node-startup.js'
import type { NodeStart } from './replication/mode.js'

export async function startingPoint(started: StartedNode): Promise<NodeStart> {
  const { config, node, log, signal, mode, stateStore, signing } = started
  const context = {
    config,
    role: started.role,
    node,
    transport: started.transport,
    log,
    signal,
    checkpoints: started.checkpoints,
    highestSigned: signing?.highestSigned,
    // A joining node picks its round once it can run it (node-join.ts).
    ready: started.computes ? started.tensors : undefined,
  }
  const saved = stateStore?.load()
  const start = saved
    ? { round: saved.next.round, model: saved.next.model, publishFirst: true }
    : await mode.join(context)
  signing?.started({
    ...start,
    resumedFromState: saved !== undefined,
    heardRound: node.clusterRound(config.byzantineServers + 1) ?? start.round,
  })
  // A node that computes does not start without its backend and data (loading since it listened).
  const tensors = started.computes ? await started.tensors() : undefined
  // The end of its own start-up (test/node-lazy-load.test.ts waits for it): what follows waits for peers.
  log.info({ round: start.round, backend: tensors?.backend.name ?? null }, 'start-up done')
  if (saved) {
    log.info(
      { round: saved.next.round, published: saved.published?.round, path: stateStore?.path },
      "resuming from this server's saved state",
    )
  } else {
    await mode.beforeFirstPublish?.(context, start)
  }
  // Announced again so that peers one round behind, which may lack it, can finish that round.
  if (saved?.published) {
    await started.serverTransport.publish('model', saved.published.round, saved.published.model)
  }
  started.report({
    type: 'started',
    nodeId: started.nodeId,
    round: start.round,
    ...(tensors === undefined ? {} : { backend: tensors.backend.name }),
  })
  return start
}
