/**
 * A worker's wiring, whatever its replication mode: its shard (label-flipped for that attack),
 * its gradient function with momentum, its (Byzantine or chaos-wrapped) behaviour and its round
 * reports. The loop itself is the mode's (`ReplicationMode.runWorker`).
 */
import { type ClassificationDataset, type Dataset, flipLabels, partition } from '@phalanx/model'
import { workerBehaviours } from './byzantine.js'
import type { StartedNode } from './node-startup.js'
import { honestWorker, type RoundEvent } from './protocol.js'
import type { NodeStart } from './replication/mode.js'
import { workerBehaviour, workerGradient } from './roles.js'

export async function runWorkerRole(started: StartedNode, start: NodeStart): Promise<void> {
  const { config, byzantine, chaos, signal, index } = started
  const { data } = await started.tensors()
  const shards = partition(data.train, { scheme: 'iid', workers: config.workers, seed: config.seed })
  let shard: Dataset = shards[index % shards.length]!
  if (byzantine && workerBehaviours[config.workerAttack].poisonsShard && shard.task === 'classification') {
    shard = flipLabels(shard as ClassificationDataset, {})
  }
  const round = await started.mode.runWorker({
    config,
    nodeId: started.nodeId,
    index,
    node: started.node,
    transport: started.transport,
    log: started.log,
    signal,
    start,
    gradient: workerGradient(started.model, shard, {
      batchSize: config.batchSize,
      momentum: config.momentum,
      seed: config.seed * 1_000_003 + index,
    }),
    behaviour: chaos.workerBehaviour(byzantine ? workerBehaviour(config, index) : honestWorker),
    onRound: (event: RoundEvent) => {
      started.report(started.roundRecord(event))
      return chaos.betweenRounds(signal)
    },
  })
  started.report({ type: 'done', nodeId: started.nodeId, round })
}
