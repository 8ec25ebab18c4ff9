/**
 * Real libp2p nodes over loopback in one test process: three members (0 and 1 servers, 2 a
 * worker) and strangers (3 and up), with keys made once per file, and the gossip-level moves a
 * Byzantine peer makes (handing over signed messages on the stream it holds).
 */
import type { RPC } from '@chainsafe/libp2p-gossipsub/message'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import pino from 'pino'
import { afterEach, beforeAll } from 'vitest'
import {
  createMembership,
  createNetNode,
  encodeVectorMessage,
  type MemberRole,
  type NetNode,
  sha256,
  type VectorKind,
  vectorToBytes,
} from '../src/index.js'

export const liveDimension = 8

export interface LiveNodes {
  /** Peer keys by index; filled before the first test. */
  readonly keys: PrivateKey[]
  readonly ids: string[]
  /** Starts node `index` at `round` (stopped after each test); members form an open set by default. */
  start(index: number, options: { round: number; closed?: boolean; epoch?: number }): Promise<NetNode>
  /** Stops `node` now (a crash's effect on the data plane), so that its key can start again. */
  stop(node: NetNode): Promise<void>
}

/** Keys for `count` nodes (at least the three members), and every started node stopped after each test. */
export function liveNodes(cluster: string, count: number): LiveNodes {
  const keys: PrivateKey[] = []
  const ids: string[] = []
  let started: NetNode[] = []
  beforeAll(async () => {
    keys.push(
      ...((await Promise.all(
        Array.from({ length: count }, () => generateKeyPair('Ed25519')),
      )) as unknown as PrivateKey[]),
    )
    ids.push(...keys.map((key) => peerIdFromPrivateKey(key).toString()))
  })
  afterEach(async () => {
    await Promise.all(started.map((node) => node.stop()))
    started = []
  })
  return {
    keys,
    ids,
    async start(index, options) {
      const members: Array<[string, MemberRole]> = [
        [ids[0]!, 'server'],
        [ids[1]!, 'server'],
        [ids[2]!, 'worker'],
      ]
      const node = await createNetNode({
        cluster,
        role: index === 2 ? 'worker' : 'server',
        dimension: liveDimension,
        // Open by default: the mode in which strangers may connect at all.
        membership: createMembership({ members, closed: options.closed ?? false }),
        logger: pino({ level: 'silent' }),
        privateKey: keys[index]!,
        round: options.round,
        ...(options.epoch === undefined ? {} : { epoch: options.epoch }),
      })
      started.push(node)
      await node.start()
      return node
    },
    async stop(node) {
      await node.stop()
      started = started.filter((other) => other !== node)
    },
  }
}

/** A signed-content vector message (inline payload `base, base+1, …`) as `sender` would encode it. */
export function liveVectorData(
  cluster: string,
  kind: VectorKind,
  sender: string,
  overrides: { round: number; epoch?: number; base?: number },
): Uint8Array {
  const payload = vectorToBytes(
    Float32Array.from({ length: liveDimension }, (_, i) => (overrides.base ?? 1) + i),
  )
  return encodeVectorMessage({
    cluster,
    round: overrides.round,
    sender,
    role: kind === 'model' ? 'server' : 'worker',
    kind,
    dimension: liveDimension,
    size: payload.byteLength,
    hash: sha256(payload),
    payload,
    epoch: overrides.epoch ?? 0,
  })
}

/** Hands `messages` to `to` on the gossip stream `from` already holds, as a relay would forward them. */
export function handOver(from: NetNode, to: NetNode, messages: RPC.Message[]): boolean {
  const gossip = from.libp2p.services.pubsub as unknown as {
    sendRpc(peer: string, rpc: { subscriptions: []; messages: RPC.Message[] }): boolean
  }
  return gossip.sendRpc(to.peerId, { subscriptions: [], messages })
}

/** Resolves at the first gossipsub heartbeat of `node` at which `condition` holds (or at once). */
export function atHeartbeat(node: NetNode, condition: () => boolean): Promise<void> {
  const pubsub = node.libp2p.services.pubsub
  return new Promise((resolve) => {
    const check = () => {
      if (!condition()) return
      pubsub.removeEventListener('gossipsub:heartbeat', check)
      resolve()
    }
    pubsub.addEventListener('gossipsub:heartbeat', check)
    check()
  })
}

/** Resolves after `count` more gossipsub heartbeats of `node` (the guard of a wait for what must not come). */
export function heartbeats(node: NetNode, count: number): Promise<void> {
  let seen = 0
  return atHeartbeat(node, () => ++seen > count)
}

/** `b` dials `a` and both see the other subscribed to `topic`. */
export async function connected(
  a: NetNode,
  b: NetNode,
  topic: 'model' | 'membership' = 'model',
): Promise<void> {
  await b.dial(a.multiaddrs()[0]!)
  await Promise.all([a.waitForSubscribers(topic, 1), b.waitForSubscribers(topic, 1)])
}
