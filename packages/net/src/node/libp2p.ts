import '../polyfill.js'
import { type GossipSub, gossipsub } from '@chainsafe/libp2p-gossipsub'
import { createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { identify } from '@libp2p/identify'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { MutableNetCounters } from '../counters.js'
import { type EncrypterName, encrypterNames } from '../encrypters.js'
import type { InvalidMessageScore } from '../score.js'
import { topicsFor } from '../topics.js'
import { wireByteMetrics } from '../wire-bytes.js'
import type { ResolvedNetNodeInit } from './init.js'

/** The libp2p node under a net node: gossipsub is the one service the other parts reach. */
export type NetLibp2p = Libp2p<{ pubsub: GossipSub }>

export interface Libp2pParts {
  privateKey: PrivateKey
  /** The application score gossipsub adds to every peer's (invalid messages handed over). */
  score: InvalidMessageScore
  /** Where the bytes every connection carries are counted (wire-bytes.ts). */
  counters: MutableNetCounters
  /** The connection gater's verdict on an encrypted connection: true refuses it. */
  refuse(peerId: PeerId, direction: 'inbound' | 'outbound'): boolean
}

/**
 * Builds (but does not start) the libp2p node of a net node and nothing else: TCP with TLS or
 * Noise (`init.encrypter` first, the other after it) and Yamux, identify, ping, bootstrap (and
 * mDNS when asked), and gossipsub with StrictSign, our validation before forwarding and the
 * score settings. What runs on it is the other parts' job.
 */
export async function buildLibp2p(init: ResolvedNetNodeInit, parts: Libp2pParts): Promise<NetLibp2p> {
  const { privateKey, score, counters, refuse } = parts
  const topics = topicsFor(init.cluster)
  // P4 (invalid deliveries) only: P1–P3 reward or punish mesh traffic volumes, and a worker never
  // publishes models, so the mesh-delivery deficit (P3) would graylist honest workers.
  const topicScore = createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0,
    firstMessageDeliveriesWeight: 0,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: init.invalidDeliveryWeight,
    invalidMessageDeliveriesDecay: init.invalidDeliveryDecay,
  })
  const withPeerIds = init.bootstrap.filter((address) => address.includes('/p2p/'))
  const peerDiscovery: NonNullable<Libp2pOptions['peerDiscovery']> = []
  if (withPeerIds.length > 0) peerDiscovery.push(bootstrap({ list: [...withPeerIds], timeout: 0 }) as never)
  if (init.mdns) peerDiscovery.push(mdns() as never)
  const libp2p = await createLibp2p({
    privateKey,
    start: false,
    addresses: { listen: [...init.listen] },
    transports: [tcp()],
    // Counts the bytes of every connection into `counters` (wire-bytes.ts).
    metrics: wireByteMetrics(counters),
    connectionEncrypters: connectionEncrypters(init.encrypter),
    streamMuxers: [
      yamux({
        maxStreamWindowSize: init.yamuxMaxStreamWindowBytes,
        // Start big too: a payload stream is short-lived and would spend its life growing a small window.
        initialStreamWindowSize: Math.min(init.yamuxMaxStreamWindowBytes, 4 * 1024 * 1024),
        // One Yamux frame (12-byte header + data) per Noise frame (at most 65 519 plaintext
        // bytes): with Yamux's 64 KiB default every frame is split into a full Noise frame and a
        // 17-byte one, doubling the per-frame cipher setup and socket writes. TLS cuts its 16 KiB
        // records in OpenSSL whatever the frame size, so one setting serves both encrypters.
        maxMessageSize: noiseMaxPlaintextBytes,
      }),
    ],
    peerDiscovery,
    connectionGater: {
      // Loopback and private addresses are where test and pod networks live.
      denyDialMultiaddr: () => false,
      denyInboundEncryptedConnection: (peerId) => refuse(peerId, 'inbound'),
      denyOutboundEncryptedConnection: (peerId) => refuse(peerId, 'outbound'),
    },
    connectionManager: {
      maxConnections: init.maxConnections,
      inboundConnectionThreshold: init.inboundConnectionThreshold,
    },
    connectionMonitor: { pingTimeout: { minTimeout: init.pingTimeoutMinMs } },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictSign',
        emitSelf: false,
        // Forward only after our own checks, including the payload fetch for announced vectors.
        asyncValidation: true,
        allowPublishToZeroTopicPeers: true,
        floodPublish: true,
        // Without it every forwarded copy of a message has its signature checked before it is
        // recognised as a duplicate: measured at ~12% of a 16-node cluster's CPU. The key is the
        // StrictSign message id (from, seqno); only validly signed messages enter this cache.
        fastMsgIdFn: fastMessageId,
        D: init.gossipMeshDegree,
        Dlo: Math.max(1, init.gossipMeshDegree - 1),
        Dhi: 2 * init.gossipMeshDegree - 1,
        // Outbound and score-kept mesh slots must fit under Dlo.
        Dout: Math.min(2, Math.floor(init.gossipMeshDegree / 2)),
        Dscore: Math.min(4, Math.max(1, init.gossipMeshDegree - 2)),
        maxInboundDataLength: init.gossipMaxInboundDataLength,
        // An announcement waits in the message cache until its payload is fetched and checked;
        // it must still be there (one window per 1 s heartbeat) when the slowest fetch ends.
        mcacheLength: Math.max(5, Math.ceil(init.payloadFetchTimeoutMs / 1000) + 2),
        scoreParams: {
          topics: {
            [topics.models]: topicScore,
            [topics.gradients]: topicScore,
            [topics.membership]: topicScore,
          },
          // Many peers share 127.0.0.1 or a pod-network NAT address; colocation is not Sybil here.
          IPColocationFactorWeight: 0,
          appSpecificScore: (peer: string) => score.score(peer),
          appSpecificWeight: 1,
        },
        scoreThresholds: {
          gossipThreshold: init.gossipScoreThreshold,
          publishThreshold: init.publishScoreThreshold,
          graylistThreshold: init.graylistScoreThreshold,
        },
      }) as never,
    },
  })
  return libp2p as unknown as NetLibp2p
}

type EncrypterFactory = NonNullable<Libp2pOptions['connectionEncrypters']>[number]

const encrypterModules: Record<EncrypterName, () => EncrypterFactory> = { tls, noise }

/**
 * The preferred encrypter first, then the other. libp2p negotiates the encrypter with
 * multistream-select, where the dialer proposes its list in order and the listener takes the
 * first it knows: a connection uses the dialer's preference whenever the listener has it, so
 * listing both costs a node nothing against peers of its own kind, and a tls node and a noise
 * node still connect (a rolling change of `encrypter` needs no flag day). Both authenticate the
 * peer key and encrypt every byte, so the fallback lowers no guarantee, only the speed.
 */
function connectionEncrypters(preferred: EncrypterName): EncrypterFactory[] {
  return [preferred, ...encrypterNames.filter((name) => name !== preferred)].map((name) =>
    encrypterModules[name](),
  )
}

let unkeyedMessages = 0
function fastMessageId(message: { from?: Uint8Array; seqno?: Uint8Array }): string {
  // Unsigned messages are refused by StrictSign anyway; give each its own key so none is
  // mistaken for a duplicate of another.
  if (message.from === undefined || message.seqno === undefined) return `unkeyed:${unkeyedMessages++}`
  return `${Buffer.from(message.from).toString('base64')}:${Buffer.from(message.seqno).toString('base64')}`
}

/** Noise transport messages are at most 65 535 bytes, 16 of them the ChaCha20-Poly1305 tag. */
const noiseMaxPlaintextBytes = 65_535 - 16
