import type { Logger } from 'pino'
import { decodeVectorMessage } from '../codec.js'
import type { MutableNetCounters } from '../counters.js'
import type { InvalidMessageScore } from '../score.js'
import { fetchSync, verifyRelayed } from '../sync.js'
import { type ClusterTopics, topicOf } from '../topics.js'
import type { VectorKind } from '../types.js'
import type { Inbox } from './inbox.js'
import type { ResolvedNetNodeInit } from './init.js'
import type { NetLibp2p } from './libp2p.js'

export interface PullParts {
  libp2p: NetLibp2p
  init: ResolvedNetNodeInit
  topics: ClusterTopics
  counters: MutableNetCounters
  log: Logger
  score: InvalidMessageScore
  inbox: Inbox
}

/**
 * Asks connected peers (servers first) for the signed vectors of `kind` they hold from
 * `fromRound` on (`/phalanx/sync/…`, `../sync.ts`), and hands those this node lacks to the inbox,
 * which treats them as gossip (the origin's signature checked here first). Returns how many
 * vectors were delivered.
 */
export async function pullFromPeers(
  parts: PullParts,
  kind: VectorKind,
  fromRound: number,
  options: { signal?: AbortSignal },
): Promise<number> {
  const { libp2p, init, topics, counters, log, score, inbox } = parts
  const membership = init.membership
  const connected = [
    ...new Map(libp2p.getConnections().map((c) => [c.remotePeer.toString(), c.remotePeer])).values(),
  ].filter((peer) => membership.has(peer.toString()) || !membership.closed)
  // Servers hold both kinds of every round they are in; workers only models.
  const servers = connected.filter((peer) => membership.roleOf(peer.toString()) === 'server')
  const peers = servers.length > 0 ? servers : connected
  const timeout = AbortSignal.timeout(init.syncTimeoutMs)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
  const request = {
    cluster: init.cluster,
    kind,
    fromRound,
    // An inline payload plus the announcement's fields and the signature.
    maxMessageBytes: init.inlineMaxBytes + 4 * 1024,
    maxMessages: (init.roundWindowAhead + 2) * Math.max(1, membership.count()),
  }
  const answers = await Promise.all(
    peers.map(async (peer) => ({ peer, messages: await fetchSync(libp2p, peer, request, signal) })),
  )
  const topic = topicOf(topics, kind)
  let delivered = 0
  for (const { peer, messages } of answers) {
    for (const fields of messages) {
      if (signal.aborted) return delivered
      if (fields.topic !== topic) continue
      // Skips what this node already holds before paying for a signature check.
      const header = decodeVectorMessage(fields.data)
      if (header === undefined) continue
      if (inbox.received(kind, header.round).some((v) => v.sender === header.sender)) continue
      const message = await verifyRelayed(fields)
      if (message === undefined) {
        log.warn({ peer: peer.toString(), kind }, 'sync answer with a bad signature')
        score.penalize(peer.toString())
        continue
      }
      if (!(await inbox.admitPulled(kind, message, peer))) continue
      counters.messages_synced_total++
      delivered++
    }
  }
  if (delivered > 0) log.info({ kind, fromRound, delivered }, 'synced vectors from peers')
  return delivered
}
