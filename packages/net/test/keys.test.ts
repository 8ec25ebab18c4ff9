import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadOrCreatePeerKey } from '../src/index.js'

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
