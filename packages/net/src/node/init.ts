import type { PrivateKey } from '@libp2p/interface'
import type { Logger } from 'pino'
import { netDefaults } from '../defaults.js'
import { type EncrypterName, encrypterNames, payloadPlaneNames } from '../encrypters.js'
import { NetConfigError } from '../errors.js'
import type { MemberRole, Membership, VectorKind } from '../types.js'

export interface NetNodeInit {
  /** Cluster id: names the topics and must match in every message. */
  cluster: string
  role: MemberRole
  /** Number of float32 coordinates of every model and gradient. */
  dimension: number
  membership: Membership
  /**
   * The node's logger, naming the node (its id and role) as its caller scopes it; the net binds
   * `component` and its own `peerId`, so the caller's must bind neither.
   */
  logger: Logger
  /** Multiaddrs to listen on (default loopback, port 0). */
  listen?: readonly string[]
  /** Peers to dial at start; `/dns4/…` names work. With `/p2p/<id>`: also fed to libp2p bootstrap. */
  bootstrap?: readonly string[]
  /** First and longest wait between dials of a bootstrap address that refused (netDefaults). */
  bootstrapRetryMs?: readonly [number, number]
  mdns?: boolean
  /** The connection encrypter this node prefers; the other one stays accepted (netDefaults). */
  encrypter?: EncrypterName
  /** Peer key file: loaded, or generated and written with mode 0600. */
  keyFile?: string
  /** An explicit key (wins over `keyFile`). */
  privateKey?: PrivateKey
  /**
   * Kinds this node receives. Default by role: servers take models (for the median) and
   * gradients; workers take models only, so gradients are never pushed or pulled to them.
   */
  subscribe?: readonly VectorKind[]
  /** Round the validation window starts at (default 0). */
  round?: number
  /** The cluster's incarnation (netDefaults.epoch): messages of another epoch are refused. */
  epoch?: number
  roundWindowAhead?: number
  maxPayloadBytes?: number
  inlineMaxBytes?: number
  gossipMaxInboundDataLength?: number
  /** Gossipsub mesh degree D (Dlo = D−1, Dhi = 2D−1). */
  gossipMeshDegree?: number
  payloadFetchTimeoutMs?: number
  payloadPeerTimeoutMs?: number
  syncTimeoutMs?: number
  memberRedialMs?: number
  payloadCacheBytes?: number
  yamuxMaxStreamWindowBytes?: number
  maxPayloadStreams?: number
  /** `tls` (default) or `libp2p`: where payload bytes travel (netDefaults.payloadPlane). */
  payloadPlane?: 'tls' | 'libp2p'
  /** The TLS payload plane's listen host and port (netDefaults.payloadListen). */
  payloadListen?: { host?: string; port?: number }
  payloadHandshakeTimeoutMs?: number
  payloadRedialBackoffMs?: number
  maxUnboundPayloadSockets?: number
  invalidMessagePenalty?: number
  invalidMessageHalfLifeMs?: number
  maxScoredPeers?: number
  invalidDeliveryWeight?: number
  invalidDeliveryDecay?: number
  maxEvidence?: number
  maxEvidencePerSender?: number
  maxStreamsPerPeer?: number
  streamIdleTimeoutMs?: number
  servedBytesPerSecond?: number
  servedBurstBytes?: number
  maxRateLimitedPeers?: number
  maxConnections?: number
  inboundConnectionThreshold?: number
  pingTimeoutMinMs?: number
  /** Gives the node `NetNode.adversary`, the Byzantine-only publishing (netDefaults: off). */
  adversary?: boolean
}

/** The init with every default filled in (`netDefaults`), as every part of the node reads it. */
export type ResolvedNetNodeInit = NetNodeInit & typeof netDefaults

/** Fills in the defaults and refuses an init no node could run with (`NetConfigError`). */
export function resolveNetNodeInit(options: NetNodeInit): ResolvedNetNodeInit {
  const init = { ...netDefaults, ...stripUndefined(options) } as ResolvedNetNodeInit
  validateInit(init)
  return init
}

function validateInit(init: ResolvedNetNodeInit): void {
  const positiveIntegers = [
    'dimension',
    'maxPayloadBytes',
    'inlineMaxBytes',
    'payloadFetchTimeoutMs',
    'payloadPeerTimeoutMs',
    'syncTimeoutMs',
    'memberRedialMs',
    'maxStreamsPerPeer',
    'streamIdleTimeoutMs',
    'servedBytesPerSecond',
    'servedBurstBytes',
    'maxRateLimitedPeers',
    'maxEvidence',
    'maxEvidencePerSender',
    'payloadHandshakeTimeoutMs',
    'payloadRedialBackoffMs',
    'maxUnboundPayloadSockets',
  ] as const
  for (const field of positiveIntegers) {
    const value = init[field]
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new NetConfigError(`${field} must be a positive integer, got ${value}`, { field, value })
    }
  }
  if (!Number.isSafeInteger(init.roundWindowAhead) || init.roundWindowAhead < 0) {
    throw new NetConfigError(`roundWindowAhead must be ≥ 0, got ${init.roundWindowAhead}`, {
      field: 'roundWindowAhead',
      value: init.roundWindowAhead,
    })
  }
  if (init.dimension * 4 > init.maxPayloadBytes) {
    throw new NetConfigError(
      `dimension ${init.dimension} needs ${init.dimension * 4} bytes > maxPayloadBytes`,
      {
        field: 'dimension',
        value: init.dimension,
      },
    )
  }
  if (init.inlineMaxBytes >= init.gossipMaxInboundDataLength) {
    throw new NetConfigError(
      'inlineMaxBytes must stay below the gossip frame limit, or inline vectors cut peers off',
      {
        field: 'inlineMaxBytes',
        value: init.inlineMaxBytes,
      },
    )
  }
  if (!Number.isInteger(init.gossipMeshDegree) || init.gossipMeshDegree < 1) {
    throw new NetConfigError(`gossipMeshDegree must be an integer ≥ 1, got ${init.gossipMeshDegree}`, {
      field: 'gossipMeshDegree',
      value: init.gossipMeshDegree,
    })
  }
  if (!(encrypterNames as readonly string[]).includes(init.encrypter)) {
    throw new NetConfigError(`encrypter must be one of ${encrypterNames.join(', ')}, got ${init.encrypter}`, {
      field: 'encrypter',
      value: init.encrypter,
    })
  }
  if (!(payloadPlaneNames as readonly string[]).includes(init.payloadPlane)) {
    throw new NetConfigError(
      `payloadPlane must be one of ${payloadPlaneNames.join(', ')}, got ${init.payloadPlane}`,
      {
        field: 'payloadPlane',
        value: init.payloadPlane,
      },
    )
  }
  const port = init.payloadListen?.port
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65_535)) {
    throw new NetConfigError(`payloadListen port must be 0–65535, got ${port}`, {
      field: 'payloadListen',
      value: port,
    })
  }
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(init.cluster)) {
    throw new NetConfigError(
      `cluster id must be 1–64 of [A-Za-z0-9._-], got ${JSON.stringify(init.cluster)}`,
      {
        field: 'cluster',
        value: init.cluster,
      },
    )
  }
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
