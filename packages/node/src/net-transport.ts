/**
 * `RoundTransport` over `@phalanx/net`: vectors arrive already validated (membership,
 * dimension, finiteness, round window, duplicates, equivocation); this adapter only keeps
 * track of which rounds are complete so a late or restarted node can catch up.
 */
import {
  type NetAdversary,
  type NetNode,
  QuorumTimeoutError as NetQuorumTimeoutError,
  QuorumAbortedError,
} from '@phalanx/net'
import {
  type CollectOptions,
  QuorumTimeoutError,
  type RoundTransport,
  type RoundVector,
  type VectorKind,
} from './transport.js'

/**
 * The net node's own quorum errors, as the port's: a timeout becomes the port's
 * `QuorumTimeoutError` (the net one as its cause), an abort the signal's reason, as the memory
 * transport gives it. Anything else is a caller's mistake and passes unchanged.
 */
function portError(error: unknown, signal: AbortSignal | undefined): unknown {
  if (error instanceof NetQuorumTimeoutError) {
    const { round, required, senders, timeoutMs } = error.details
    return new QuorumTimeoutError(
      { kind: error.details.kind as VectorKind, round, quorum: required, senders, timeoutMs },
      { cause: error },
    )
  }
  if (error instanceof QuorumAbortedError && signal?.aborted) return signal.reason
  return error
}

export function netTransport(node: NetNode, init: { serverQuorum: number }): RoundTransport {
  const { serverQuorum } = init
  // Distinct senders per kind and round, fed by delivered vectors (the node's own included).
  const seen = new Map<string, Set<string>>()
  const waiters = new Set<() => void>()
  const pulling = new Set<VectorKind>()
  node.on('vector', (vector) => {
    const key = `${vector.kind}/${vector.round}`
    const senders = seen.get(key) ?? new Set<string>()
    senders.add(vector.sender)
    seen.set(key, senders)
    for (const wake of waiters) wake()
  })

  const newestComplete = (
    kind: VectorKind,
    quorum: number,
  ): { round: number; vectors: RoundVector[] } | undefined => {
    let best: number | undefined
    for (const [key, senders] of seen) {
      const [storedKind, roundText] = key.split('/')
      const round = Number(roundText)
      if (storedKind === kind && senders.size >= quorum && (best === undefined || round > best)) best = round
    }
    if (best === undefined) return undefined
    // An equivocator's first version counts here, as any Byzantine vector may: the median of N−F
    // models tolerates F of them. Leaving it out would strand an honest node that saw both
    // versions while its peers, which saw one, went on with it: with N−F honest servers it could
    // then never find a quorum of a later round and the cluster would wait on it for good (seen
    // under load with an equivocating server).
    const bySender = new Map<string, RoundVector>()
    for (const v of node.received(kind, best)) {
      if (!bySender.has(v.sender))
        bySender.set(v.sender, { sender: v.sender, round: v.round, vector: v.vector })
    }
    const vectors = [...bySender.values()].slice(0, quorum)
    return vectors.length >= quorum ? { round: best, vectors } : undefined
  }

  return {
    selfId: node.peerId,
    publish: async (kind, round, vector) => {
      await node.publish(kind, round, vector)
    },
    // Only a node created with `adversary` has one: an honest node's transport lacks the call.
    publishPerReceiver: node.adversary === undefined ? undefined : perReceiver(node, node.adversary),
    ahead: (kind, round, quorum) => {
      const found = newestComplete(kind, quorum)
      if (found !== undefined && found.round > round) return found
      // Too far behind to even receive the newer rounds: move the window to where the servers
      // are, so their (re-announced) vectors are accepted and a later check finds a quorum. Only
      // where N − F member servers have signed they are (announcements, or models the window
      // refused as early): up to F Byzantine servers or any number of outsiders announcing a
      // far-future round would otherwise push the window past every real message.
      const clusterRound = node.clusterRound(serverQuorum)
      if (clusterRound !== undefined && clusterRound > node.round + 1) node.setRound(clusterRound)
      return undefined
    },
    announce: () => node.announce(),
    republish: async (kind, round) => {
      await node.republish(kind, round)
    },
    // From the window's start at the earliest: older rounds would only be rejected as stale. One
    // pull per kind at a time: the caller does not wait for it, and a slow peer must not pile them up.
    pull: async (kind, round) => {
      if (pulling.has(kind)) return
      pulling.add(kind)
      try {
        await node.pull(kind, Math.max(round, node.round - 1))
      } catch {
        // Nothing new arrived; the next stall check pulls again.
      } finally {
        pulling.delete(kind)
      }
    },
    collect: async (kind, round, options: CollectOptions) => {
      const vectors = await node.collect(kind, round, options).catch((error: unknown) => {
        throw portError(error, options.signal)
      })
      return vectors.map((v) => ({ sender: v.sender, round: v.round, vector: v.vector }))
    },
    newest: (kind, options) =>
      new Promise((resolve, reject) => {
        // An already aborted signal fires no 'abort' event: without this the wait ran to its timeout.
        if (options.signal?.aborted) return reject(options.signal.reason)
        const check = () => {
          const found = newestComplete(kind, options.quorum)
          if (found === undefined) return
          cleanup()
          resolve(found)
        }
        const timer = setTimeout(() => {
          cleanup()
          const perRound: Record<string, number> = {}
          const senders = new Set<string>()
          for (const [key, ofRound] of seen) {
            const [storedKind, round] = key.split('/')
            if (storedKind !== kind) continue
            perRound[round!] = ofRound.size
            for (const sender of ofRound) senders.add(sender)
          }
          const { quorum, timeoutMs } = options
          reject(new QuorumTimeoutError({ kind, quorum, senders: [...senders], perRound, timeoutMs }))
        }, options.timeoutMs)
        const onAbort = () => {
          cleanup()
          reject(options.signal?.reason)
        }
        const cleanup = () => {
          clearTimeout(timer)
          waiters.delete(check)
          options.signal?.removeEventListener('abort', onAbort)
        }
        options.signal?.addEventListener('abort', onAbort, { once: true })
        waiters.add(check)
        check()
      }),
    setRound: (round) => {
      node.setRound(round)
      for (const key of seen.keys()) if (Number(key.split('/')[1]) < round - 1) seen.delete(key)
    },
    rejected: () => ({ ...node.rejected() }) as Record<string, number>,
  }
}

/**
 * The equivocator hands each receiver its own version and no one else. Gradients are meant for
 * servers, models for every peer. With fewer than two receivers there is no one to play against
 * another, so both versions go to everyone (the receiver sees the conflict itself).
 */
function perReceiver(
  node: NetNode,
  adversary: NetAdversary,
): NonNullable<RoundTransport['publishPerReceiver']> {
  return async (kind, round, pick) => {
    const receivers = node
      .subscribers(kind)
      .filter((peer) => kind === 'model' || node.membership.roleOf(peer) === 'server')
      .sort()
    if (receivers.length < 2) {
      await adversary.publishConflicting(kind, round, [pick(receivers[0] ?? '', 0), pick('', 1)])
      return
    }
    // One signed version per distinct vector object `pick` hands out (behaviours build each
    // version once per round), with every receiver it was picked for.
    const versions = new Map<Float32Array, string[]>()
    receivers.forEach((receiver, index) => {
      const vector = pick(receiver, index)
      versions.set(vector, [...(versions.get(vector) ?? []), receiver])
    })
    await adversary.publishTargeted(
      kind,
      round,
      [...versions].map(([vector, handedTo]) => ({ vector, receivers: handedTo })),
    )
  }
}
