import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { IDX_DEFAULTS, readIdx } from '../src/index.js'

const tmp = mkdtempSync(join(tmpdir(), 'phalanx-idx-limit-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

/** An IDX header of unsigned bytes for `count` one-dimensional elements. */
function idxHeader(count: number): Uint8Array {
  const header = new Uint8Array(8)
  header.set([0, 0, 8, 1])
  new DataView(header.buffer).setUint32(4, count, false)
  return header
}

describe('IDX decompression limit', () => {
  it('refuses a gzip bomb (a few KB inflating past the limit) with DatasetTooLargeError, the default limit included', () => {
    // A well-formed header claiming what follows, so only the size can refuse it. Gzip members
    // concatenate: one MiB of zeros deflates to about 1 KB, repeated past the limit.
    const mib = 1024 * 1024
    const members = Math.ceil(IDX_DEFAULTS.maxBytes / mib) + 1
    const first = new Uint8Array(mib)
    first.set(idxHeader(members * mib - 8))
    const zeros = gzipSync(new Uint8Array(mib), { level: 9 })
    const bomb = Buffer.concat([
      gzipSync(first, { level: 9 }),
      ...Array.from({ length: members - 1 }, () => zeros),
    ])
    expect(bomb.byteLength).toBeLessThan(mib)
    const path = join(tmp, 'bomb.gz')
    writeFileSync(path, bomb)
    expect(() => readIdx(path)).toThrow(
      expect.objectContaining({
        name: 'DatasetTooLargeError',
        details: { path, maxBytes: IDX_DEFAULTS.maxBytes, compressed: true },
      }),
    )
    // The same bytes under a limit they fit in are a valid IDX file: the limit alone refused them.
    expect(readIdx(path, { maxBytes: members * mib }).dims).toEqual([members * mib - 8])
  })

  it.each([
    { what: 'gzipped', encode: (bytes: Uint8Array) => new Uint8Array(gzipSync(bytes)), compressed: true },
    { what: 'plain', encode: (bytes: Uint8Array) => bytes, compressed: false },
  ])('a $what file one byte over maxBytes is refused, one at it is read', ({ what, encode, compressed }) => {
    const count = 100
    const bytes = new Uint8Array(8 + count)
    bytes.set(idxHeader(count))
    const path = join(tmp, `limit-${what}`)
    writeFileSync(path, encode(bytes))
    expect(readIdx(path, { maxBytes: bytes.byteLength }).dims).toEqual([count])
    expect(() => readIdx(path, { maxBytes: bytes.byteLength - 1 })).toThrow(
      expect.objectContaining({
        name: 'DatasetTooLargeError',
        details: expect.objectContaining({ compressed }),
      }),
    )
  })
})
