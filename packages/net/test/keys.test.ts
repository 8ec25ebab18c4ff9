import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadOrCreatePeerKey, verifyPeerSignature } from '../src/index.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phalanx-keys-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('loadOrCreatePeerKey', () => {
  it('creates a 0600 key file (and its directory) once, then loads the same identity', async () => {
    const path = join(dir, 'nested', 'peer.key')
    const created = await loadOrCreatePeerKey(path)
    expect(created.created).toBe(true)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    const loaded = await loadOrCreatePeerKey(path)
    expect(loaded.created).toBe(false)
    expect(peerIdFromPrivateKey(loaded.key).toString()).toBe(peerIdFromPrivateKey(created.key).toString())
    expect(loaded.key.type).toBe('Ed25519')
    expect((await readFile(path)).byteLength).toBeGreaterThan(32)
  })

  it.each([
    ['garbage', Buffer.from('not a key')],
    ['empty', Buffer.alloc(0)],
  ])('refuses a %s key file with KeyFileError instead of replacing it', async (_name, bytes) => {
    const path = join(dir, 'peer.key')
    await writeFile(path, bytes)
    const error = await loadOrCreatePeerKey(path).catch((e: unknown) => e)
    expect((error as Error).name).toBe('KeyFileError')
    expect(error).toMatchObject({ path })
    expect(await readFile(path)).toEqual(bytes)
  })

  it('reports an unreadable path with KeyFileError', async () => {
    const error = await loadOrCreatePeerKey(dir).catch((e: unknown) => e) // a directory
    expect((error as Error).name).toBe('KeyFileError')
  })
})

describe('verifyPeerSignature', () => {
  const data = new TextEncoder().encode('phalanx-checkpoint/1\nround 10')

  it.each([
    ['the signer’s own peer id and the signed data', 'signer', data, true],
    ['another peer id', 'other', data, false],
    ['other data', 'signer', new TextEncoder().encode('phalanx-checkpoint/1\nround 11'), false],
    ['a malformed peer id', 'not-a-peer-id', data, false],
  ] as const)('with %s says %s', async (_case, who, checked, expected) => {
    const signer = await loadOrCreatePeerKey(join(dir, 'signer.key'))
    const other = await loadOrCreatePeerKey(join(dir, 'other.key'))
    const peerIds = {
      signer: peerIdFromPrivateKey(signer.key).toString(),
      other: peerIdFromPrivateKey(other.key).toString(),
      'not-a-peer-id': 'not-a-peer-id',
    }
    const signature = await signer.key.sign(data)
    expect(await verifyPeerSignature(peerIds[who], checked, signature)).toBe(expected)
  })

  it('refuses a signature that is not one', async () => {
    const signer = await loadOrCreatePeerKey(join(dir, 'signer.key'))
    const peerId = peerIdFromPrivateKey(signer.key).toString()
    expect(await verifyPeerSignature(peerId, data, new Uint8Array([1, 2, 3]))).toBe(false)
  })
})
