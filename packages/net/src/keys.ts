import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { KeyFileError } from './errors.js'

/**
 * The node's Ed25519 identity from `path`, or a new one written there (mode 0600, atomically) so
 * that a restarted node — a StatefulSet pod, say — keeps its peer id and its membership.
 */
export async function loadOrCreatePeerKey(path: string): Promise<{ key: PrivateKey; created: boolean }> {
  let bytes: Uint8Array | undefined
  try {
    bytes = await readFile(path)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new KeyFileError(`cannot read peer key file ${path}`, { path }, { cause: error })
    }
  }
  if (bytes !== undefined) {
    try {
      // @libp2p/crypto nests its own copy of @libp2p/interface; the key types are the same at runtime.
      return { key: privateKeyFromProtobuf(bytes) as unknown as PrivateKey, created: false }
    } catch (error) {
      throw new KeyFileError(`${path} is not a libp2p private key`, { path }, { cause: error })
    }
  }
  const generated = await generateKeyPair('Ed25519')
  const key = generated as unknown as PrivateKey
  try {
    await mkdir(dirname(path), { recursive: true })
    // Write then rename: a crash mid-write must not leave a truncated key that fails next start.
    const temporary = `${path}.${process.pid}.tmp`
    await writeFile(temporary, privateKeyToProtobuf(generated), { mode: 0o600 })
    await chmod(temporary, 0o600)
    await rename(temporary, path)
  } catch (error) {
    throw new KeyFileError(`cannot write peer key file ${path}`, { path }, { cause: error })
  }
  return { key, created: true }
}

/**
 * Whether `signature` over `data` was made by the key of `peerId` (an Ed25519 peer id carries its
 * public key). False for anything malformed: a claim no one can check is no proof.
 */
export async function verifyPeerSignature(
  peerId: string,
  data: Uint8Array,
  signature: Uint8Array,
): Promise<boolean> {
  try {
    const publicKey = peerIdFromString(peerId).publicKey
    return publicKey === undefined ? false : await publicKey.verify(data, signature)
  } catch {
    return false
  }
}
