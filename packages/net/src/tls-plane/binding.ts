/**
 * Who is at the other end of a payload-plane TLS socket. The certificates are throw-away and
 * checked by no one; what authenticates is channel binding: after the handshake each side sends
 * its libp2p public key and a signature, by that key, over the socket's exported keying material
 * (RFC 5705/8446 exporter, bound to this TLS session's secrets) and its role. A signature over
 * one session's exporter is worthless on any other session, so a peer that presents another
 * peer's public key without its private key, or replays what it saw elsewhere, fails; and the
 * role byte keeps a server's binding from being reflected back as a client's.
 *
 * Frame: u16 length (big-endian), then role (1 byte), key length (u16), the public key
 * (libp2p protobuf), the signature (the rest).
 */

import type { TLSSocket } from 'node:tls'
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromPublicKey } from '@libp2p/peer-id'

export const bindingLabel = 'EXPORTER-phalanx-payload'
const bindingDomain = Buffer.from('phalanx-payload-binding/1')

export const clientRole = 1
export const serverRole = 2

/** A binding frame is a key (36 bytes for Ed25519, a few hundred for RSA) and a signature. */
export const maxBindingBytes = 2048

/** What `role` signs on this socket: the domain, the role, the exporter bound to `cluster`. */
export function bindingData(socket: TLSSocket, role: number, cluster: string): Uint8Array {
  const exported = socket.exportKeyingMaterial(32, bindingLabel, Buffer.from(cluster))
  return Buffer.concat([bindingDomain, Buffer.of(role), exported])
}

/** This side's binding frame, length prefix included. */
export async function bindingFrame(
  socket: TLSSocket,
  role: number,
  cluster: string,
  key: PrivateKey,
): Promise<Buffer> {
  const publicKey = publicKeyToProtobuf(key.publicKey as never)
  const signature = await key.sign(bindingData(socket, role, cluster))
  const head = Buffer.of(role, publicKey.length >> 8, publicKey.length & 0xff)
  const body = Buffer.concat([head, publicKey, signature])
  const frame = Buffer.alloc(2 + body.length)
  frame.writeUInt16BE(body.length, 0)
  body.copy(frame, 2)
  return frame
}

/**
 * The peer id that signed `body` (a binding frame without its length) for `role` on this
 * socket, or why the binding fails.
 */
export async function verifyBinding(
  socket: TLSSocket,
  body: Uint8Array,
  role: number,
  cluster: string,
): Promise<{ ok: true; peer: string } | { ok: false; detail: string }> {
  if (body.length < 3) return { ok: false, detail: 'binding frame too short' }
  if (body[0] !== role) return { ok: false, detail: `binding for role ${body[0]}, expected ${role}` }
  const keyLength = (body[1]! << 8) | body[2]!
  if (body.length < 3 + keyLength + 1) return { ok: false, detail: 'binding frame too short' }
  try {
    const publicKey = publicKeyFromProtobuf(body.subarray(3, 3 + keyLength))
    const signature = body.subarray(3 + keyLength)
    if (!(await publicKey.verify(bindingData(socket, role, cluster), signature)))
      return { ok: false, detail: 'binding signature does not verify' }
    return { ok: true, peer: peerIdFromPublicKey(publicKey as never as PublicKey).toString() }
  } catch (error) {
    return { ok: false, detail: `bad binding key: ${(error as Error).message}` }
  }
}
