/**
 * The attacker's side of the trust-boundary tests, in the test process: libp2p nodes built from
 * `@phalanx/net` that do what the honest code never does. An outsider holds throw-away keys; an
 * insider holds a member worker's peer key. Both can sign whatever gossip message they like and
 * hand it to any peer they are connected to as a raw gossipsub RPC (the publish API cannot forge,
 * but any peer can write to its own streams), and replay signed messages they captured.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Message, PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PhalanxError } from '@phalanx/errors'
import {
  createMembership,
  createNetNode,
  type EncrypterName,
  encodeMemberAnnouncement,
  type NetNode,
} from '@phalanx/net'
import pino from 'pino'
import { relayedFromMessage, signGossipMessage } from '../../packages/net/src/sync.js'

type RpcMessage = Awaited<ReturnType<typeof signGossipMessage>>

/** A fresh Ed25519 identity no cluster knows. */
export async function throwawayKey(): Promise<{ key: PrivateKey; peerId: string }> {
  // @libp2p/crypto nests its own copy of @libp2p/interface; the key types are the same at runtime.
  const key = (await generateKeyPair('Ed25519')) as unknown as PrivateKey
  return { key, peerId: peerIdFromPrivateKey(key).toString() }
}
/** The rogue's gossip did not reach enough peers in time: whatever it hands on would be dropped. */
export class RogueNotReadyError extends PhalanxError<
  'rogue_not_ready',
  { wanted: number; ready: number; connected: number; timeoutMs: number }
> {
  override readonly name = 'RogueNotReadyError'
  constructor(details: { wanted: number; ready: number; connected: number; timeoutMs: number }) {
    super('rogue_not_ready', details, {
      message: `rogue gossip ready towards ${details.ready} of the ${details.wanted} peers wanted (${details.connected} connected) after ${details.timeoutMs} ms`,
    })
  }
}

const ROGUE_DEFAULTS = {
  // Only a failure bound: the wait ends on the event. Generous because the machine is shared and
  // a TLS connection set-up under load takes seconds; a cluster that never lets the rogue in
  // fails the test here, by name, instead of at a count of zero.
  readyTimeoutMs: 60_000,
} as const

interface RawGossip {
  sendRpc(peer: string, rpc: { subscriptions: []; messages: RpcMessage[] }): boolean
}

export interface RogueInit {
  cluster: string
  dimension: number
  /** Multiaddrs to dial (honest nodes'). */
  bootstrap: readonly string[]
  /** A member's key file (the insider); a throw-away key when absent (an outsider). */
  keyFile?: string
  /** Peer ids the rogue treats as members, so its own validators let the cluster's traffic in. */
  members: readonly (readonly [string, 'server' | 'worker'])[]
  /** The role its own messages claim (an insider worker claiming `server`). */
  role?: 'server' | 'worker'
  epoch?: number
  /** The encrypter it prefers (the net default when absent): the cluster's, to try that one. */
  encrypter?: EncrypterName
}

export interface Rogue {
  readonly node: NetNode
  readonly peerId: string
  /** Connected peers now. */
  peers(): string[]
  /**
   * Resolves once at least `minPeers` peers have told the rogue they subscribe to the membership
   * topic and its own outbound gossip stream to each is open: before that, a raw RPC handed to a
   * peer is dropped (`sendRpc` returns false) and the attack would not be tried at all. Throws
   * `RogueNotReadyError` after `timeoutMs`.
   */
  ready(minPeers: number, options?: { timeoutMs?: number }): Promise<void>
  /**
   * Dials each address once. A dial may look complete on this side (the muxer is negotiated
   * optimistically) while the remote's gater is refusing it: what counts is the remote's refusal.
   */
  dialEach(addresses: readonly string[]): Promise<void>
  /**
   * Hands every connected peer one membership announcement per signer (each signed by that
   * signer's key, claiming `role` and `round`) as a raw RPC; resolves with how many were handed.
   */
  forgeAnnouncements(init: { signers: number; round: number; role: 'server' | 'worker' }): Promise<number>
  /** Its own announcement for `round`, through the honest publish path, claiming the node's `role`. */
  announceAs(round: number): Promise<void>
  /** Starts keeping every signed gossip message the node receives. */
  capture(): RpcMessage[]
  /** Hands `messages` to every connected peer as they were signed; resolves with how many were handed. */
  replay(messages: readonly RpcMessage[]): number
  stop(): Promise<void>
}

export async function startRogue(init: RogueInit): Promise<Rogue> {
  const keyFile = init.keyFile
  const membership = createMembership({ members: init.members, closed: false })
  const node = await createNetNode({
    cluster: init.cluster,
    role: init.role ?? 'worker',
    dimension: init.dimension,
    membership,
    logger: pino({ level: 'silent' }),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap: [...init.bootstrap],
    ...(keyFile === undefined ? {} : { keyFile }),
    ...(init.epoch === undefined ? {} : { epoch: init.epoch }),
    ...(init.encrypter === undefined ? {} : { encrypter: init.encrypter }),
  })
  await node.start()
  membership.add(node.peerId, 'worker')
  const pubsub = node.libp2p.services.pubsub
  const raw = pubsub as unknown as RawGossip
  const peers = () => node.libp2p.getConnections().map((c) => c.remotePeer.toString())
  const handToAll = (messages: RpcMessage[]): number => {
    let handed = 0
    for (const peer of new Set(peers())) {
      if (raw.sendRpc(peer, { subscriptions: [], messages })) handed += messages.length
    }
    return handed
  }
  const readyPeers = () =>
    pubsub
      .getSubscribers(node.topics.membership)
      .filter((peer) => pubsub.streamsOutbound.has(peer.toString())).length
  let stopCapture: (() => void) | undefined

  return {
    node,
    peerId: node.peerId,
    peers,
    async ready(minPeers, { timeoutMs = ROGUE_DEFAULTS.readyTimeoutMs } = {}) {
      try {
        await node.waitForSubscribers('membership', minPeers, { signal: AbortSignal.timeout(timeoutMs) })
      } catch {
        throw new RogueNotReadyError({
          wanted: minPeers,
          ready: readyPeers(),
          connected: new Set(peers()).size,
          timeoutMs,
        })
      }
    },
    async dialEach(addresses) {
      await Promise.allSettled(addresses.map((address) => node.dial(address)))
    },
    async forgeAnnouncements({ signers, round, role }) {
      const messages: RpcMessage[] = []
      const keys = await Promise.all(Array.from({ length: signers }, () => throwawayKey()))
      for (const { key, peerId: sender } of keys) {
        const data = encodeMemberAnnouncement({
          cluster: init.cluster,
          sender,
          role,
          multiaddrs: [],
          round,
          epoch: init.epoch ?? 0,
        })
        messages.push(await signGossipMessage(key, { data, topic: node.topics.membership }))
      }
      return handToAll(messages)
    },
    async announceAs(round) {
      node.setRound(round)
      await node.announce()
    },
    capture() {
      const kept: RpcMessage[] = []
      const onMessage = (event: CustomEvent<{ msg: Message }>) => {
        const fields = relayedFromMessage(event.detail.msg)
        if (fields !== undefined) kept.push(fields as RpcMessage)
      }
      pubsub.addEventListener('gossipsub:message', onMessage as never)
      stopCapture = () => pubsub.removeEventListener('gossipsub:message', onMessage as never)
      return kept
    },
    replay: (messages) => handToAll([...messages]),
    async stop() {
      stopCapture?.()
      await node.stop()
    },
  }
}
