/**
 * `@phalanx/net` — the libp2p data plane of Phalanx: a node factory (TCP, TLS or Noise, Yamux,
 * identify, ping, gossipsub with StrictSign), signed wire messages, the validation pipeline that
 * runs before anyone sees a message, membership, large-payload transfer over direct streams and
 * the quorum helper.
 *
 * @example
 * ```ts
 * import pino from 'pino'
 * import { createMembership, createNetNode } from '@phalanx/net'
 *
 * const membership = createMembership({ members: [[serverId, 'server'], [workerId, 'worker']] })
 * const node = await createNetNode({
 *   cluster: 'demo', role: 'server', dimension: 1_000_000, membership,
 *   logger: pino(), keyFile: '/var/lib/phalanx/peer.key', bootstrap: ['/dns4/server-0/tcp/4001/p2p/12D3…'],
 * })
 * await node.start()
 * await node.publish('model', 0, theta)
 * const gradients = await node.collect('gradient', 0, { quorum: n - f, timeoutMs: 30_000 })
 * ```
 */
import './polyfill.js'

export { type AnnouncementVerdict, checkAnnouncement, ServerRounds } from './announcement.js'
export {
  bytesToVector,
  decodeMemberAnnouncement,
  decodeVectorMessage,
  encodeMemberAnnouncement,
  encodeVectorMessage,
  firstNonFinite,
  type MemberHello,
  sha256,
  toHex,
  type VectorHeader,
  vectorToBytes,
} from './codec.js'
export { MutableNetCounters, type NetCounters } from './counters.js'
export { type NetDefaults, netDefaults } from './defaults.js'
export {
  type EncrypterName,
  encrypterDescriptions,
  encrypterNames,
  type PayloadPlaneName,
  payloadPlaneDescriptions,
  payloadPlaneNames,
} from './encrypters.js'
export {
  DimensionMismatchError,
  InvalidQuorumError,
  KeyFileError,
  NetConfigError,
  type NetErrorCode,
  NodeNotStartedError,
  netErrorCodes,
  PayloadProtocolError,
  PayloadTooLargeError,
  QuorumAbortedError,
  QuorumTimeoutError,
  StreamIdleError,
} from './errors.js'
export { loadOrCreatePeerKey, verifyPeerSignature } from './keys.js'
export {
  ByteBuckets,
  IdleTimer,
  type StreamRefusal,
  StreamSlots,
  streamRefusals,
} from './limits.js'
export { createMembership, type MembershipInit } from './membership.js'
export type { NetAdversary } from './node/adversary.js'
export type { NetEvents } from './node/events.js'
export type { NetNodeInit } from './node/init.js'
export { createNetNode, type NetNode } from './node/net-node.js'
export type { PublishReceipt } from './node/publish.js'
export { payloadProtocol } from './payload.js'
export { collectQuorum, type QuorumSource } from './quorum.js'
export { InvalidMessageScore } from './score.js'
export { type ClusterTopics, topicOf, topicsFor } from './topics.js'
export {
  type CollectOptions,
  type DeliveredVector,
  type EquivocationEvidence,
  type MemberRole,
  type Membership,
  publisherRoleOf,
  type RejectedMessage,
  type RejectReason,
  rejectReasons,
  type SignedMessageEvidence,
  type VectorKind,
} from './types.js'
export {
  type Accepted,
  checkMessage,
  checkPayload,
  type IncomingMessage,
  isRelayFault,
  isSignerFault,
  type Rejected,
  RoundLedger,
  type ValidationContext,
  type Verdict,
  validateVectorMessage,
} from './validation.js'
