/**
 * Conversions between the application's shapes and the protobuf wire messages
 * (`wire/phalanx.proto`). Decoding never throws: it returns `undefined` for bytes that are not a
 * well-formed message, and the validation pipeline counts that as `malformed`.
 */
import { createHash } from 'node:crypto'
import { endianness } from 'node:os'
import type { MemberRole, VectorKind } from './types.js'
import {
  MemberAnnouncement,
  PayloadRequest,
  PayloadResponseHeader,
  PayloadStatus,
  RelayedMessage,
  Role,
  SyncRequest,
  VectorMessage,
  VectorKind as WireKind,
} from './wire/phalanx.generated.js'

/** Float32 payloads travel little-endian: on such a host a vector's bytes are its wire bytes. */
export const littleEndianHost = endianness() === 'LE'

/** A vector message as the validators see it: numbers instead of bigints, names instead of enums. */
export interface VectorHeader {
  cluster: string
  round: number
  sender: string
  role: MemberRole | undefined
  kind: VectorKind | undefined
  dimension: number
  size: number
  hash: Uint8Array
  /** Inline payload, or an empty array when the payload is announced for a direct fetch. */
  payload: Uint8Array
  /** The cluster's incarnation the message was signed in (0 when absent on the wire). */
  epoch: number
}

const roleToWire: Record<MemberRole, Role> = { server: Role.SERVER, worker: Role.WORKER }
const kindToWire: Record<VectorKind, WireKind> = { model: WireKind.MODEL, gradient: WireKind.GRADIENT }

function roleFromWire(role: Role): MemberRole | undefined {
  if (role === Role.SERVER) return 'server'
  if (role === Role.WORKER) return 'worker'
  return undefined
}

function kindFromWire(kind: WireKind): VectorKind | undefined {
  if (kind === WireKind.MODEL) return 'model'
  if (kind === WireKind.GRADIENT) return 'gradient'
  return undefined
}

export function encodeVectorMessage(header: VectorHeader): Uint8Array {
  return VectorMessage.encode({
    cluster: header.cluster,
    round: BigInt(header.round),
    sender: header.sender,
    role: header.role === undefined ? Role.ROLE_UNSPECIFIED : roleToWire[header.role],
    kind: header.kind === undefined ? WireKind.KIND_UNSPECIFIED : kindToWire[header.kind],
    dimension: header.dimension,
    size: BigInt(header.size),
    hash: header.hash,
    payload: header.payload,
    epoch: BigInt(header.epoch),
  })
}

export function decodeVectorMessage(bytes: Uint8Array): VectorHeader | undefined {
  let wire: VectorMessage
  try {
    // Length fields cannot over-allocate: protons checks them against the bytes actually present,
    // and gossip frames are bounded by `gossipMaxInboundDataLength`.
    wire = VectorMessage.decode(bytes)
  } catch {
    return undefined
  }
  if (
    wire.round > BigInt(Number.MAX_SAFE_INTEGER) ||
    wire.size > BigInt(Number.MAX_SAFE_INTEGER) ||
    wire.epoch > BigInt(Number.MAX_SAFE_INTEGER)
  ) {
    return undefined
  }
  return {
    cluster: wire.cluster,
    round: Number(wire.round),
    sender: wire.sender,
    role: roleFromWire(wire.role),
    kind: kindFromWire(wire.kind),
    dimension: wire.dimension,
    size: Number(wire.size),
    hash: wire.hash,
    payload: wire.payload,
    epoch: Number(wire.epoch),
  }
}

export interface MemberHello {
  cluster: string
  sender: string
  role: MemberRole | undefined
  multiaddrs: Uint8Array[]
  round: number
  epoch: number
}

export function encodeMemberAnnouncement(hello: MemberHello): Uint8Array {
  return MemberAnnouncement.encode({
    cluster: hello.cluster,
    sender: hello.sender,
    role: hello.role === undefined ? Role.ROLE_UNSPECIFIED : roleToWire[hello.role],
    multiaddrs: hello.multiaddrs,
    round: BigInt(hello.round),
    epoch: BigInt(hello.epoch),
  })
}

export function decodeMemberAnnouncement(bytes: Uint8Array): MemberHello | undefined {
  try {
    const wire = MemberAnnouncement.decode(bytes, { limits: { multiaddrs: 32 } })
    if (wire.round > BigInt(Number.MAX_SAFE_INTEGER) || wire.epoch > BigInt(Number.MAX_SAFE_INTEGER))
      return undefined
    return {
      cluster: wire.cluster,
      sender: wire.sender,
      role: roleFromWire(wire.role),
      multiaddrs: wire.multiaddrs,
      round: Number(wire.round),
      epoch: Number(wire.epoch),
    }
  } catch {
    return undefined
  }
}

export function encodePayloadRequest(request: {
  cluster: string
  round: number
  hash: Uint8Array
}): Uint8Array {
  return PayloadRequest.encode({ cluster: request.cluster, round: BigInt(request.round), hash: request.hash })
}

export function decodePayloadRequest(
  bytes: Uint8Array,
): { cluster: string; round: number; hash: Uint8Array } | undefined {
  try {
    const wire = PayloadRequest.decode(bytes)
    if (wire.round > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
    return { cluster: wire.cluster, round: Number(wire.round), hash: wire.hash }
  } catch {
    return undefined
  }
}

export function encodePayloadHeader(found: boolean, size: number): Uint8Array {
  return PayloadResponseHeader.encode({
    status: found ? PayloadStatus.OK : PayloadStatus.NOT_FOUND,
    size: BigInt(size),
  })
}

export function decodePayloadHeader(bytes: Uint8Array): { found: boolean; size: number } | undefined {
  try {
    const wire = PayloadResponseHeader.decode(bytes)
    if (wire.size > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
    return { found: wire.status === PayloadStatus.OK, size: Number(wire.size) }
  } catch {
    return undefined
  }
}

export function encodeSyncRequest(request: {
  cluster: string
  kind: VectorKind
  fromRound: number
}): Uint8Array {
  return SyncRequest.encode({
    cluster: request.cluster,
    kind: kindToWire[request.kind],
    fromRound: BigInt(request.fromRound),
  })
}

export function decodeSyncRequest(
  bytes: Uint8Array,
): { cluster: string; kind: VectorKind; fromRound: number } | undefined {
  try {
    const wire = SyncRequest.decode(bytes)
    const kind = kindFromWire(wire.kind)
    if (kind === undefined || wire.fromRound > BigInt(Number.MAX_SAFE_INTEGER)) return undefined
    return { cluster: wire.cluster, kind, fromRound: Number(wire.fromRound) }
  } catch {
    return undefined
  }
}

/** A gossipsub message as its origin signed it: the fields of gossipsub's RPC.Message. */
export interface RelayedFields {
  from: Uint8Array
  data: Uint8Array
  seqno: Uint8Array
  signature: Uint8Array
  topic: string
}

export function encodeRelayed(message: RelayedFields): Uint8Array {
  return RelayedMessage.encode({ ...message, key: new Uint8Array(0) })
}

export function decodeRelayed(bytes: Uint8Array): RelayedFields | undefined {
  try {
    const { from, data, seqno, signature, topic } = RelayedMessage.decode(bytes)
    return { from, data, seqno, signature, topic }
  } catch {
    return undefined
  }
}

/**
 * The little-endian bytes of a vector: on a little-endian host a view of the vector's own memory,
 * not a copy, so a published vector must not be written into afterwards (its bytes are what the
 * node serves against the signed hash; the protocol publishes a fresh vector every round). On a
 * big-endian host, a byte-swapped copy.
 */
export function vectorToBytes(vector: Float32Array, littleEndian = littleEndianHost): Uint8Array {
  if (littleEndian) return new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength)
  const bytes = new Uint8Array(vector.byteLength)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < vector.length; i++) view.setFloat32(4 * i, vector[i]!, true)
  return bytes
}

/**
 * A Float32Array over the payload bytes, copying only when they are not 4-byte aligned
 * (protobuf fields and stream chunks can start anywhere). Little-endian hosts only: received
 * payloads go through `receive.ts`, which also handles the other.
 */
export function bytesToVector(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`payload of ${bytes.byteLength} bytes is not float32`)
  if (bytes.byteOffset % 4 === 0)
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
  // Copy into a fresh buffer: `slice` on a Node Buffer would return a view of the shared pool.
  const aligned = new Uint8Array(bytes.byteLength)
  aligned.set(bytes)
  return new Float32Array(aligned.buffer)
}

export function sha256(bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Index of the first NaN or ±Infinity in [from, to), or −1. */
export function firstNonFinite(vector: Float32Array, from = 0, to = vector.length): number {
  for (let i = from; i < to; i++) {
    // v − v is 0 for finite v and NaN for NaN and ±Infinity: one branch per coordinate.
    const v = vector[i]!
    if (v - v !== 0) return i
  }
  return -1
}
