import { describe, expect, it } from 'vitest'
import {
  bytesToVector,
  decodeMemberAnnouncement,
  decodeVectorMessage,
  encodeMemberAnnouncement,
  encodeVectorMessage,
  firstNonFinite,
  sha256,
  toHex,
  vectorToBytes,
} from '../src/index.js'
import { header } from './helpers.js'

describe('wire codec', () => {
  it('round-trips a vector message', () => {
    const h = header({ round: 123_456, kind: 'gradient', role: 'worker' })
    const decoded = decodeVectorMessage(encodeVectorMessage(h))
    expect({ ...decoded, hash: [...(decoded?.hash ?? [])] }).toEqual({ ...h, hash: [...h.hash] })
  })

  it('round-trips an announcement without payload', () => {
    const h = header({ payload: new Uint8Array(0) })
    const decoded = decodeVectorMessage(encodeVectorMessage(h))
    expect(decoded?.payload.byteLength).toBe(0)
    expect(decoded?.size).toBe(32)
  })

  it.each([
    ['truncated', encodeVectorMessage(header()).subarray(0, 20)],
    ['a length past the end', Uint8Array.from([0x0a, 0x05, 0x61])],
    ['an endless varint', new Uint8Array(12).fill(0xff)],
    ['an over-long length prefix', Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 1])],
  ])('returns undefined for %s bytes', (_name, bytes) => {
    expect(decodeVectorMessage(bytes)).toBeUndefined()
  })

  it('maps unknown enum values to undefined instead of throwing', () => {
    // field 4 (role) = 7, field 5 (kind) = 9: not in the enums
    const decoded = decodeVectorMessage(Uint8Array.from([0x20, 7, 0x28, 9]))
    expect(decoded?.role).toBeUndefined()
    expect(decoded?.kind).toBeUndefined()
  })

  it('round-trips a member announcement', () => {
    const hello = {
      cluster: 'c',
      sender: 'p',
      role: 'server' as const,
      multiaddrs: [Uint8Array.from([4, 127, 0, 0, 1])],
      round: 7,
      epoch: 3,
    }
    expect(decodeMemberAnnouncement(encodeMemberAnnouncement(hello))).toEqual(hello)
  })

  it('encodes float32 little-endian and decodes from an unaligned offset', () => {
    const bytes = vectorToBytes(Float32Array.of(1, -2.5))
    expect([...bytes]).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0])
    const shifted = new Uint8Array(9)
    shifted.set(bytes, 1)
    expect([...bytesToVector(shifted.subarray(1))]).toEqual([1, -2.5])
  })

  it('gives a vector’s own memory on a little-endian host (publish copies nothing), the same wire bytes as a copy on a big-endian one', () => {
    const v = Float32Array.of(1, -2.5)
    const view = vectorToBytes(v, true)
    expect(view.buffer).toBe(v.buffer)
    const swapped = vectorToBytes(v, false)
    expect(swapped.buffer).not.toBe(v.buffer)
    expect([...swapped]).toEqual([0, 0, 0x80, 0x3f, 0, 0, 0x20, 0xc0])
    expect([...swapped]).toEqual([...view])
    // Which is why NetNode.publish tells its caller not to write into a published vector.
    v[0] = 9
    expect(bytesToVector(view)[0]).toBe(9)
  })

  it.each([
    [[1, 2, 3], -1],
    [[1, Number.NaN, 3], 1],
    [[Number.POSITIVE_INFINITY], 0],
    [[0, 0, Number.NEGATIVE_INFINITY], 2],
    [[3.4e38, -3.4e38], -1],
  ])('firstNonFinite(%j) = %i', (values, expected) => {
    expect(firstNonFinite(Float32Array.from(values))).toBe(expected)
  })

  it('hashes with sha256 (known vector)', () => {
    expect(toHex(sha256(new TextEncoder().encode('abc')))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    )
  })
})
