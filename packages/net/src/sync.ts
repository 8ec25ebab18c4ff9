/**
 * Direct-stream sync (`/phalanx/sync/1.0.0`): a node stalled on a round asks a peer for the
 * vector messages of one kind that it holds from a round on, and gets them verbatim as their
 * origins signed them. Gossip keeps no history and a straggler cannot always wait for the signer
 * to re-announce: a server SIGKILLed or cut off by a partition is gone, while its model of the
 * round sits, signed, at every peer that received it. With N−F = the live servers (no slack), a
 * straggler that lacks that one model could otherwise never complete a quorum, and the cluster
 * would wait on it for good.
 *
 * A relay can withhold messages but not forge or alter one: the receiver checks each origin's
 * gossipsub signature here, then runs the same validation pipeline as for gossip.
 */
import { RPC } from '@chainsafe/libp2p-gossipsub/message'
import { randomBytes } from '@libp2p/crypto'
import type { Libp2p, Message, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import { peerIdFromMultihash, peerIdFromPrivateKey } from '@libp2p/peer-id'
import { byteStream } from 'it-byte-stream'
import * as lp from 'it-length-prefixed'
import * as Digest from 'multiformats/hashes/digest'
import type { Logger } from 'pino'
import {
  decodeRelayed,
  decodeSyncRequest,
  encodeRelayed,
  encodeSyncRequest,
  type RelayedFields,
} from './codec.js'
import { type ByteBuckets, IdleTimer, type StreamRefusal } from './limits.js'
import { readControl } from './payload.js'
import type { VectorKind } from './types.js'

export const syncProtocol = '/phalanx/sync/1.0.0'

/** gossipsub signs "libp2p-pubsub:" + the protobuf RPC.Message without signature and key. */
const signPrefix = new TextEncoder().encode('libp2p-pubsub:')

/** The bytes a gossipsub signature covers, for signing and for checking alike. */
function signedBytes(fields: { from: Uint8Array; data: Uint8Array; seqno: Uint8Array; topic: string }) {
  const encoded = RPC.Message.encode({
    from: fields.from,
    data: fields.data,
    seqno: fields.seqno,
    topic: fields.topic,
  })
  const bytes = new Uint8Array(signPrefix.byteLength + encoded.byteLength)
  bytes.set(signPrefix)
  bytes.set(encoded, signPrefix.byteLength)
  return bytes
}

/**
 * A gossipsub message signed as gossipsub signs one (StrictSign), for a node that hands it to a
 * chosen peer itself instead of publishing it to the topic.
 */
export async function signGossipMessage(
  privateKey: PrivateKey,
  fields: { data: Uint8Array; topic: string },
): Promise<RPC.Message> {
  const unsigned = {
    from: peerIdFromPrivateKey(privateKey).toMultihash().bytes,
    data: fields.data,
    seqno: randomBytes(8),
    topic: fields.topic,
  }
  // No `key`: an Ed25519 peer id carries its public key, which is what receivers check against.
  return { ...unsigned, signature: await privateKey.sign(signedBytes(unsigned)) }
}

/** The fields of a delivered gossipsub message that its origin's signature covers. */
export function relayedFromMessage(message: Message): RelayedFields | undefined {
  if (message.type !== 'signed') return undefined
  const seqno = new Uint8Array(8)
  new DataView(seqno.buffer).setBigUint64(0, message.sequenceNumber)
  return {
    from: message.from.toMultihash().bytes,
    data: message.data,
    seqno,
    signature: message.signature,
    topic: message.topic,
  }
}

/**
 * The signed gossipsub message a relayed one claims to be, or `undefined` when the origin's
 * signature does not verify (or the origin's peer id carries no public key to check it with).
 */
export async function verifyRelayed(fields: RelayedFields): Promise<Message | undefined> {
  if (fields.seqno.byteLength !== 8) return undefined
  try {
    const from = peerIdFromMultihash(Digest.decode(fields.from))
    const publicKey = from.publicKey
    if (publicKey === undefined) return undefined
    if (!(await publicKey.verify(signedBytes(fields), fields.signature))) return undefined
    return {
      type: 'signed',
      from,
      data: fields.data,
      sequenceNumber: new DataView(fields.seqno.buffer, fields.seqno.byteOffset, 8).getBigUint64(0),
      topic: fields.topic,
      signature: fields.signature,
      key: publicKey,
    }
  } catch {
    return undefined
  }
}

export interface SyncServeInit {
  cluster: string
  /** The signed messages this node delivered for `kind` from `fromRound` on, read as they are sent. */
  held(kind: VectorKind, fromRound: number): Iterable<RelayedFields>
  log: Logger
  /** No request, or a reader that stops taking bytes, for this long closes the stream (counted). */
  idleTimeoutMs: number
  /** Bytes per second per peer: the answer ends where the peer's budget does (counted). */
  buckets: ByteBuckets
  onRefused: (reason: StreamRefusal) => void
  onServed: (bytes: number) => void
}

/**
 * Answers one sync request with what this node holds, one message at a time as the stream takes
 * them (nothing is copied up front); a bad request closes the stream.
 */
export async function serveSync(stream: Stream, remotePeer: PeerId, init: SyncServeInit): Promise<void> {
  const peer = remotePeer.toString()
  const idle = new IdleTimer(init.idleTimeoutMs)
  // The sink has no signal of its own: an idle reader gets its stream aborted under it.
  const onIdle = () => stream.abort(idle.signal.reason as Error)
  idle.signal.addEventListener('abort', onIdle, { once: true })
  let sent = 0
  try {
    const request = await readControl(byteStream(stream), idle.signal)
    const decoded = request === undefined ? undefined : decodeSyncRequest(request)
    if (decoded === undefined || decoded.cluster !== init.cluster) {
      stream.abort(new Error('bad sync request'))
      return
    }
    const held = init.held(decoded.kind, decoded.fromRound)
    const frames = function* () {
      for (const message of held) {
        const frame = lp.encode.single(encodeRelayed(message))
        if (!init.buckets.take(peer, frame.byteLength)) {
          init.onRefused('rate')
          return
        }
        idle.reset()
        sent++
        init.onServed(frame.byteLength)
        yield frame
      }
    }
    idle.reset()
    await stream.sink(frames())
    init.log.debug({ peer, kind: decoded.kind, fromRound: decoded.fromRound, sent }, 'sync request served')
  } catch (error) {
    if (idle.fired) init.onRefused('idle')
    init.log.debug({ peer, err: error, idle: idle.fired, sent }, 'sync request failed')
    stream.abort(error as Error)
  } finally {
    idle.clear()
    idle.signal.removeEventListener('abort', onIdle)
  }
}

export interface SyncFetchRequest {
  cluster: string
  kind: VectorKind
  fromRound: number
  /** Largest relayed message accepted: an inline payload plus the message's own fields. */
  maxMessageBytes: number
  /** Most messages read from one peer (a peer holds a few rounds of one kind). */
  maxMessages: number
}

/** What one peer holds; never throws (a failed or malformed answer gives what arrived intact). */
export async function fetchSync(
  libp2p: Libp2p,
  peer: PeerId,
  request: SyncFetchRequest,
  signal: AbortSignal,
): Promise<RelayedFields[]> {
  let stream: Stream | undefined
  const messages: RelayedFields[] = []
  try {
    stream = await libp2p.dialProtocol(peer, syncProtocol, { signal })
    await stream.sink([lp.encode.single(encodeSyncRequest(request))])
    for await (const frame of lp.decode(stream.source, { maxDataLength: request.maxMessageBytes })) {
      signal.throwIfAborted()
      const message = decodeRelayed(frame.subarray())
      if (message === undefined || messages.length >= request.maxMessages) break
      messages.push(message)
    }
    await stream.close().catch(() => undefined)
  } catch (error) {
    stream?.abort(error as Error)
  }
  return messages
}
