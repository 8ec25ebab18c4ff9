/* eslint-disable import/export */
/* eslint-disable complexity */
/* eslint-disable @typescript-eslint/no-namespace */
/* eslint-disable @typescript-eslint/no-unnecessary-boolean-literal-compare */
/* eslint-disable @typescript-eslint/no-empty-interface */
/* eslint-disable import/consistent-type-specifier-style */
/* eslint-disable @typescript-eslint/no-unused-vars */

import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export enum Role {
  ROLE_UNSPECIFIED = 'ROLE_UNSPECIFIED',
  SERVER = 'SERVER',
  WORKER = 'WORKER'
}

enum __RoleValues {
  ROLE_UNSPECIFIED = 0,
  SERVER = 1,
  WORKER = 2
}

export namespace Role {
  export const codec = (): Codec<Role> => {
    return enumeration<Role>(__RoleValues)
  }
}

export enum VectorKind {
  KIND_UNSPECIFIED = 'KIND_UNSPECIFIED',
  MODEL = 'MODEL',
  GRADIENT = 'GRADIENT'
}

enum __VectorKindValues {
  KIND_UNSPECIFIED = 0,
  MODEL = 1,
  GRADIENT = 2
}

export namespace VectorKind {
  export const codec = (): Codec<VectorKind> => {
    return enumeration<VectorKind>(__VectorKindValues)
  }
}

export interface VectorMessage {
  cluster: string
  round: bigint
  sender: string
  role: Role
  kind: VectorKind
  dimension: number
  size: bigint
  hash: Uint8Array
  payload: Uint8Array
  epoch: bigint
}

export namespace VectorMessage {
  let _codec: Codec<VectorMessage>

  export const codec = (): Codec<VectorMessage> => {
    if (_codec == null) {
      _codec = message<VectorMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cluster != null && obj.cluster !== '')) {
          w.uint32(10)
          w.string(obj.cluster)
        }

        if ((obj.round != null && obj.round !== 0n)) {
          w.uint32(16)
          w.uint64(obj.round)
        }

        if ((obj.sender != null && obj.sender !== '')) {
          w.uint32(26)
          w.string(obj.sender)
        }

        if (obj.role != null && __RoleValues[obj.role] !== 0) {
          w.uint32(32)
          Role.codec().encode(obj.role, w)
        }

        if (obj.kind != null && __VectorKindValues[obj.kind] !== 0) {
          w.uint32(40)
          VectorKind.codec().encode(obj.kind, w)
        }

        if ((obj.dimension != null && obj.dimension !== 0)) {
          w.uint32(48)
          w.uint32(obj.dimension)
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(56)
          w.uint64(obj.size)
        }

        if ((obj.hash != null && obj.hash.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.hash)
        }

        if ((obj.payload != null && obj.payload.byteLength > 0)) {
          w.uint32(74)
          w.bytes(obj.payload)
        }

        if ((obj.epoch != null && obj.epoch !== 0n)) {
          w.uint32(80)
          w.uint64(obj.epoch)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cluster: '',
          round: 0n,
          sender: '',
          role: Role.ROLE_UNSPECIFIED,
          kind: VectorKind.KIND_UNSPECIFIED,
          dimension: 0,
          size: 0n,
          hash: uint8ArrayAlloc(0),
          payload: uint8ArrayAlloc(0),
          epoch: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cluster = reader.string()
              break
            }
            case 2: {
              obj.round = reader.uint64()
              break
            }
            case 3: {
              obj.sender = reader.string()
              break
            }
            case 4: {
              obj.role = Role.codec().decode(reader)
              break
            }
            case 5: {
              obj.kind = VectorKind.codec().decode(reader)
              break
            }
            case 6: {
              obj.dimension = reader.uint32()
              break
            }
            case 7: {
              obj.size = reader.uint64()
              break
            }
            case 8: {
              obj.hash = reader.bytes()
              break
            }
            case 9: {
              obj.payload = reader.bytes()
              break
            }
            case 10: {
              obj.epoch = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      })
    }

    return _codec
  }

  export const encode = (obj: Partial<VectorMessage>): Uint8Array => {
    return encodeMessage(obj, VectorMessage.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<VectorMessage>): VectorMessage => {
    return decodeMessage(buf, VectorMessage.codec(), opts)
  }
}

export interface MemberAnnouncement {
  cluster: string
  sender: string
  role: Role
  multiaddrs: Uint8Array[]
  round: bigint
  epoch: bigint
}

export namespace MemberAnnouncement {
  let _codec: Codec<MemberAnnouncement>

  export const codec = (): Codec<MemberAnnouncement> => {
    if (_codec == null) {
      _codec = message<MemberAnnouncement>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cluster != null && obj.cluster !== '')) {
          w.uint32(10)
          w.string(obj.cluster)
        }

        if ((obj.sender != null && obj.sender !== '')) {
          w.uint32(18)
          w.string(obj.sender)
        }

        if (obj.role != null && __RoleValues[obj.role] !== 0) {
          w.uint32(24)
          Role.codec().encode(obj.role, w)
        }

        if (obj.multiaddrs != null) {
          for (const value of obj.multiaddrs) {
            w.uint32(34)
            w.bytes(value)
          }
        }

        if ((obj.round != null && obj.round !== 0n)) {
          w.uint32(40)
          w.uint64(obj.round)
        }

        if ((obj.epoch != null && obj.epoch !== 0n)) {
          w.uint32(48)
          w.uint64(obj.epoch)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cluster: '',
          sender: '',
          role: Role.ROLE_UNSPECIFIED,
          multiaddrs: [],
          round: 0n,
          epoch: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cluster = reader.string()
              break
            }
            case 2: {
              obj.sender = reader.string()
              break
            }
            case 3: {
              obj.role = Role.codec().decode(reader)
              break
            }
            case 4: {
              if (opts.limits?.multiaddrs != null && obj.multiaddrs.length === opts.limits.multiaddrs) {
                throw new MaxLengthError('Decode error - map field "multiaddrs" had too many elements')
              }

              obj.multiaddrs.push(reader.bytes())
              break
            }
            case 5: {
              obj.round = reader.uint64()
              break
            }
            case 6: {
              obj.epoch = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      })
    }

    return _codec
  }

  export const encode = (obj: Partial<MemberAnnouncement>): Uint8Array => {
    return encodeMessage(obj, MemberAnnouncement.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<MemberAnnouncement>): MemberAnnouncement => {
    return decodeMessage(buf, MemberAnnouncement.codec(), opts)
  }
}

export interface PayloadRequest {
  cluster: string
  round: bigint
  hash: Uint8Array
}

export namespace PayloadRequest {
  let _codec: Codec<PayloadRequest>

  export const codec = (): Codec<PayloadRequest> => {
    if (_codec == null) {
      _codec = message<PayloadRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cluster != null && obj.cluster !== '')) {
          w.uint32(10)
          w.string(obj.cluster)
        }

        if ((obj.round != null && obj.round !== 0n)) {
          w.uint32(16)
          w.uint64(obj.round)
        }

        if ((obj.hash != null && obj.hash.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.hash)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cluster: '',
          round: 0n,
          hash: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cluster = reader.string()
              break
            }
            case 2: {
              obj.round = reader.uint64()
              break
            }
            case 3: {
              obj.hash = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      })
    }

    return _codec
  }

  export const encode = (obj: Partial<PayloadRequest>): Uint8Array => {
    return encodeMessage(obj, PayloadRequest.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PayloadRequest>): PayloadRequest => {
    return decodeMessage(buf, PayloadRequest.codec(), opts)
  }
}

export enum PayloadStatus {
  STATUS_UNSPECIFIED = 'STATUS_UNSPECIFIED',
  OK = 'OK',
  NOT_FOUND = 'NOT_FOUND'
}

enum __PayloadStatusValues {
  STATUS_UNSPECIFIED = 0,
  OK = 1,
  NOT_FOUND = 2
}

export namespace PayloadStatus {
  export const codec = (): Codec<PayloadStatus> => {
    return enumeration<PayloadStatus>(__PayloadStatusValues)
  }
}

export interface PayloadResponseHeader {
  status: PayloadStatus
  size: bigint
}

export namespace PayloadResponseHeader {
  let _codec: Codec<PayloadResponseHeader>

  export const codec = (): Codec<PayloadResponseHeader> => {
    if (_codec == null) {
      _codec = message<PayloadResponseHeader>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.status != null && __PayloadStatusValues[obj.status] !== 0) {
          w.uint32(8)
          PayloadStatus.codec().encode(obj.status, w)
        }

        if ((obj.size != null && obj.size !== 0n)) {
          w.uint32(16)
          w.uint64(obj.size)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          status: PayloadStatus.STATUS_UNSPECIFIED,
          size: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.status = PayloadStatus.codec().decode(reader)
              break
            }
            case 2: {
              obj.size = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      })
    }

    return _codec
  }

  export const encode = (obj: Partial<PayloadResponseHeader>): Uint8Array => {
    return encodeMessage(obj, PayloadResponseHeader.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<PayloadResponseHeader>): PayloadResponseHeader => {
    return decodeMessage(buf, PayloadResponseHeader.codec(), opts)
  }
}

export interface SyncRequest {
  cluster: string
  kind: VectorKind
  fromRound: bigint
}

export namespace SyncRequest {
  let _codec: Codec<SyncRequest>

  export const codec = (): Codec<SyncRequest> => {
    if (_codec == null) {
      _codec = message<SyncRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cluster != null && obj.cluster !== '')) {
          w.uint32(10)
          w.string(obj.cluster)
        }

        if (obj.kind != null && __VectorKindValues[obj.kind] !== 0) {
          w.uint32(16)
          VectorKind.codec().encode(obj.kind, w)
        }

        if ((obj.fromRound != null && obj.fromRound !== 0n)) {
          w.uint32(24)
          w.uint64(obj.fromRound)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cluster: '',
          kind: VectorKind.KIND_UNSPECIFIED,
          fromRound: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cluster = reader.string()
              break
            }
            case 2: {
              obj.kind = VectorKind.codec().decode(reader)
              break
            }
            case 3: {
              obj.fromRound = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      })
    }

    return _codec
  }

  export const encode = (obj: Partial<SyncRequest>): Uint8Array => {
    return encodeMessage(obj, SyncRequest.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SyncRequest>): SyncRequest => {
    return decodeMessage(buf, SyncRequest.codec(), opts)
  }
}

export interface RelayedMessage {
  from: Uint8Array
  data: Uint8Array
  seqno: Uint8Array
  signature: Uint8Array
  key: Uint8Array
  topic: string
}

export namespace RelayedMessage {
  let _codec: Codec<RelayedMessage>

  export const codec = (): Codec<RelayedMessage> => {
    if (_codec == null) {
      _codec = message<RelayedMessage>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.from != null && obj.from.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.from)
        }

        if ((obj.data != null && obj.data.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.data)
        }

        if ((obj.seqno != null && obj.seqno.byteLength > 0)) {
          w.uint32(26)
          w.bytes(obj.seqno)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.signature)
        }

        if ((obj.key != null && obj.key.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.key)
        }

        if ((obj.topic != null && obj.topic !== '')) {
          w.uint32(50)
          w.string(obj.topic)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          from: uint8ArrayAlloc(0),
          data: uint8ArrayAlloc(0),
          seqno: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0),
          key: uint8ArrayAlloc(0),
          topic: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.from = reader.bytes()
              break
            }
            case 2: {
              obj.data = reader.bytes()
              break
            }
            case 3: {
              obj.seqno = reader.bytes()
              break
            }
            case 4: {
              obj.signature = reader.bytes()
              break
            }
            case 5: {
              obj.key = reader.bytes()
              break
            }
            case 6: {
              obj.topic = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      })
    }

    return _codec
  }

  export const encode = (obj: Partial<RelayedMessage>): Uint8Array => {
    return encodeMessage(obj, RelayedMessage.codec())
  }

  export const decode = (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<RelayedMessage>): RelayedMessage => {
    return decodeMessage(buf, RelayedMessage.codec(), opts)
  }
}
