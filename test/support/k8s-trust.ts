/**
 * The trust model of the manifests, checked offline: who the nodes will accept as what.
 *
 * - member-set: every node's config lists the same closed member set, exactly the N servers
 *   `server-0…server-(N−1)`, and each server pod holds (in a mounted Secret, `<nodeId>.key`) the
 *   pinned libp2p key whose peer id that set names it by; a server without one would generate a
 *   key no other node accepts;
 * - operator-key: a valid PHALANX_OPERATOR_PUBLIC_KEY, without which every admit, evict and chaos
 *   record is refused;
 * - worker-admission: a worker the member set does not list (a Deployment's pods: random names,
 *   keys made at start) can only become one by its own signed join, so it and every server need
 *   PHALANX_WORKER_ADMISSION=open (the servers are the ones that accept the joins).
 */
import { operatorPublicKeyObject } from '@phalanx/control'
import type { ClusterConfig } from '@phalanx/node'
import { peerIdOfKey } from '../../deploy/peer-keys.js'
import type { ManifestIssue } from './k8s-issues.js'
import { type PlannedContainer, type PlannedPod, plannedMounts } from './k8s-pods.js'
import type { K8sObject } from './k8s-render.js'

export interface TrustedNode {
  pod: PlannedPod
  container: PlannedContainer
  config: ClusterConfig
}

/** `<nodeId>:<peerId>` entries as node id → peer id (a node id listed twice keeps every entry). */
function entriesOf(members: readonly string[]): [string, string][] {
  return members.map((entry) => {
    const separator = entry.indexOf(':')
    return [entry.slice(0, separator), entry.slice(separator + 1)]
  })
}

/** The peer id of the pinned key a pod mounts as `<nodeId>.key` from a Secret, or why there is none. */
function pinnedPeerId(
  pod: PlannedPod,
  nodeId: string,
  objects: K8sObject[],
): { peerId: string } | { problem: string } {
  for (const container of pod.containers) {
    for (const mount of plannedMounts(pod, container, objects)) {
      const bytes = mount.source === 'secret' ? mount.files[`${nodeId}.key`] : undefined
      if (bytes === undefined) continue
      try {
        return { peerId: peerIdOfKey(bytes) }
      } catch (error) {
        return { problem: `${nodeId}.key is not a libp2p private key (${(error as Error).message})` }
      }
    }
  }
  return { problem: `no pinned key: no container mounts ${nodeId}.key from a Secret` }
}

export function checkTrust(nodes: readonly TrustedNode[], objects: K8sObject[]): ManifestIssue[] {
  const issues: ManifestIssue[] = []
  const add = (rule: ManifestIssue['rule'], node: TrustedNode, message: string) =>
    issues.push({ rule, object: `${node.pod.name}/${node.container.spec.name}`, message })
  const mains = nodes.filter((node) => node.container.phase === 'main')
  const first = mains[0]
  for (const node of mains) {
    const { config } = node
    const nodeId = config.nodeId ?? node.pod.name
    const entries = entriesOf(config.members)
    const servers = entries.filter(([id]) => id.startsWith('server-')).map(([id]) => id)
    const expected = Array.from({ length: config.servers }, (_, i) => `server-${i}`)
    if (JSON.stringify([...servers].sort()) !== JSON.stringify(expected)) {
      add(
        'member-set',
        node,
        `PHALANX_MEMBERS lists servers [${servers.join(', ')}]: the closed member set needs exactly ${expected.join(', ')} (N=${config.servers}), each by its pinned peer id`,
      )
    }
    if (
      first !== undefined &&
      node !== first &&
      config.members.join(',') !== first.config.members.join(',')
    ) {
      add(
        'member-set',
        node,
        `PHALANX_MEMBERS differs from ${first.pod.name}'s: the nodes would disagree on roles`,
      )
    }
    if (config.operatorPublicKey === undefined) {
      add(
        'operator-key',
        node,
        'no PHALANX_OPERATOR_PUBLIC_KEY: every admit, evict and chaos record would be refused',
      )
    } else {
      try {
        operatorPublicKeyObject(config.operatorPublicKey)
      } catch (error) {
        add('operator-key', node, `PHALANX_OPERATOR_PUBLIC_KEY: ${(error as Error).message}`)
      }
    }
    if (nodeId.startsWith('server-')) {
      const named = entries.find(([id]) => id === nodeId)?.[1]
      const pinned = pinnedPeerId(node.pod, nodeId, objects)
      if ('problem' in pinned) add('member-set', node, `${nodeId}: ${pinned.problem}`)
      else if (named !== undefined && named !== pinned.peerId) {
        add(
          'member-set',
          node,
          `${nodeId}'s pinned key is peer ${pinned.peerId}, but PHALANX_MEMBERS names ${nodeId} as ${named}`,
        )
      }
    }
  }
  // Workers the member set cannot name join by themselves: they and the servers must allow it.
  const joining = mains.filter(
    (node) =>
      node.pod.name.startsWith('worker-') &&
      !entriesOf(node.config.members).some(([id]) => id === (node.config.nodeId ?? node.pod.name)),
  )
  if (joining.length > 0) {
    for (const node of mains) {
      if (node.config.workerAdmission === 'open') continue
      const who = node.pod.name.startsWith('worker-')
        ? 'this worker is not in PHALANX_MEMBERS and cannot register itself'
        : `this server would refuse the joins of ${joining.length} workers PHALANX_MEMBERS does not list (${joining[0]!.pod.name}, …)`
      add('worker-admission', node, `PHALANX_WORKER_ADMISSION is ${node.config.workerAdmission}: ${who}`)
    }
  }
  return issues
}
