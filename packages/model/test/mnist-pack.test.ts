import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { buildMnistFromPackage, MNIST_SPLIT_SEED, MNIST_TRAIN_FRACTION } from '../src/data/mnist.js'
import { decodeMnistSplit, encodeMnistSplit } from '../src/data/mnist-pack.js'
import type { ClassificationDataset, DatasetSplit } from '../src/index.js'

const identity = { splitSeed: MNIST_SPLIT_SEED, trainFraction: MNIST_TRAIN_FRACTION }

describe('the packed MNIST split', () => {
  let split: DatasetSplit<ClassificationDataset>
  let packed: Uint8Array
  beforeAll(async () => {
    split = await buildMnistFromPackage()
    packed = encodeMnistSplit(split, identity)
  })

  it('decodes to exactly the split made from the package (every float32 bit, every label)', () => {
    const decoded = decodeMnistSplit(packed, identity)
    if (!decoded.ok) throw new Error(decoded.reason)
    const bytesOf = (array: Float32Array | Int32Array) =>
      Buffer.from(array.buffer, array.byteOffset, array.byteLength)
    for (const part of ['train', 'test'] as const) {
      // Byte equality: vitest's deep equality over 6 million floats takes most of a minute.
      const { features, labels, ...rest } = decoded.split[part]
      const { features: expectedFeatures, labels: expectedLabels, ...expectedRest } = split[part]
      expect(rest).toEqual(expectedRest)
      expect(bytesOf(features).equals(bytesOf(expectedFeatures))).toBe(true)
      expect(bytesOf(labels).equals(bytesOf(expectedLabels))).toBe(true)
    }
  })

  it.each([
    ['the magic', 0, 'magic'],
    ['the header length', 9, 'header'],
    ['the header', 20, 'header'],
  ])('refuses a flipped byte in %s', (_, at, reason) => {
    const bad = packed.slice()
    bad[at]! ^= 0xff
    const decoded = decodeMnistSplit(bad, identity)
    expect(decoded.ok).toBe(false)
    if (!decoded.ok)
      expect(decoded.reason).toMatch(new RegExp(`${reason}|unreadable|truncated|version|constants|counts`))
  })

  it('refuses any flipped body byte (checksum) and any truncation', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: packed.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (at, flip) => {
          const bad = packed.slice()
          bad[at]! ^= flip
          expect(decodeMnistSplit(bad, identity).ok).toBe(false)
        },
      ),
      { numRuns: 25 },
    )
    fc.assert(
      fc.property(fc.integer({ min: 0, max: packed.length - 1 }), (length) => {
        expect(decodeMnistSplit(packed.subarray(0, length), identity).ok).toBe(false)
      }),
      { numRuns: 25 },
    )
  })

  it('refuses a pack made with other split constants', () => {
    const decoded = decodeMnistSplit(packed, { ...identity, splitSeed: identity.splitSeed + 1 })
    expect(decoded).toEqual({ ok: false, reason: 'packed with other split constants' })
  })

  it('refuses to pack pixels that are not multiples of 1/1000 (the pack would not be exact)', () => {
    const features = split.test.features.slice()
    features[0] = 0.0005
    expect(() => encodeMnistSplit({ ...split, test: { ...split.test, features } }, identity)).toThrow(
      /multiple/,
    )
  })
})
