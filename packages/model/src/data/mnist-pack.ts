/**
 * The embedded MNIST split, packed at build time (`scripts/pack-mnist.js` → `dist/data/mnist-split.bin`).
 *
 * Why: every server and worker process loads MNIST, and the `mnist` package is ~21 MB of JSON
 * that costs ~260 ms of CPU to parse, then the split another ~120 ms. The pack holds the split
 * already made, so a process reads ~16 MB and converts it in ~30 ms. It is exact, not an
 * approximation: every pixel of the package is a multiple of 1/1000 (checked when packing), so
 * it is stored as round(1000·p) in a uint16 and decodes to the same float32 as the JSON path.
 *
 * Layout: magic `PHXMNST1`, u32 LE header length, JSON header, body. The header names the split
 * constants and the body's sha256: a pack built with other constants, truncated or altered is
 * refused (`decodeMnistSplit` returns the reason) and the loader falls back to the package.
 * Body: train labels (u8 × n), test labels (u8 × m), train pixels (u16 LE × 784n), test pixels.
 */
import { createHash } from 'node:crypto'
import type { ClassificationDataset, DatasetSplit } from './dataset.js'

const MAGIC = 'PHXMNST1'
const PIXELS = 28 * 28
/** Pixels are multiples of 1/SCALE in the `mnist` package. */
const SCALE = 1000
const FORMAT_VERSION = 1

export interface MnistPackIdentity {
  readonly splitSeed: number
  readonly trainFraction: number
}

interface PackHeader extends MnistPackIdentity {
  readonly version: number
  readonly train: number
  readonly test: number
  readonly sha256: string
}

export function encodeMnistSplit(
  split: DatasetSplit<ClassificationDataset>,
  identity: MnistPackIdentity,
): Uint8Array {
  const { train, test } = split
  const body = new Uint8Array(train.size + test.size + 2 * PIXELS * (train.size + test.size))
  body.set(Uint8Array.from(train.labels), 0)
  body.set(Uint8Array.from(test.labels), train.size)
  const view = new DataView(body.buffer)
  let offset = train.size + test.size
  for (const features of [train.features, test.features]) {
    for (let i = 0; i < features.length; i++, offset += 2) {
      const scaled = Math.round(features[i]! * SCALE)
      // The pack must decode to the very float32 the JSON path gives, or runs stop reproducing.
      if (Math.fround(scaled / SCALE) !== features[i])
        throw new Error(
          `pixel ${i} (${features[i]}) is not a multiple of 1/${SCALE}: cannot pack MNIST exactly`,
        )
      view.setUint16(offset, scaled, true)
    }
  }
  const header: PackHeader = {
    version: FORMAT_VERSION,
    ...identity,
    train: train.size,
    test: test.size,
    sha256: createHash('sha256').update(body).digest('hex'),
  }
  const headerBytes = new TextEncoder().encode(JSON.stringify(header))
  const out = new Uint8Array(MAGIC.length + 4 + headerBytes.length + body.length)
  out.set(new TextEncoder().encode(MAGIC), 0)
  new DataView(out.buffer).setUint32(MAGIC.length, headerBytes.length, true)
  out.set(headerBytes, MAGIC.length + 4)
  out.set(body, MAGIC.length + 4 + headerBytes.length)
  return out
}

export type DecodedMnistPack =
  | { readonly ok: true; readonly split: DatasetSplit<ClassificationDataset> }
  | { readonly ok: false; readonly reason: string }

/** The split the pack holds, or why it is refused (never throws on bad bytes). */
export function decodeMnistSplit(bytes: Uint8Array, identity: MnistPackIdentity): DecodedMnistPack {
  const refuse = (reason: string): DecodedMnistPack => ({ ok: false, reason })
  if (bytes.length < MAGIC.length + 4 || new TextDecoder().decode(bytes.subarray(0, MAGIC.length)) !== MAGIC)
    return refuse('not an MNIST pack (magic)')
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(
    MAGIC.length,
    true,
  )
  const bodyStart = MAGIC.length + 4 + headerLength
  if (headerLength > 4096 || bodyStart > bytes.length) return refuse('truncated header')
  let header: PackHeader
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(MAGIC.length + 4, bodyStart))) as PackHeader
  } catch {
    return refuse('unreadable header')
  }
  if (header.version !== FORMAT_VERSION)
    return refuse(`format version ${header.version}, not ${FORMAT_VERSION}`)
  if (header.splitSeed !== identity.splitSeed || header.trainFraction !== identity.trainFraction)
    return refuse('packed with other split constants')
  const { train, test } = header
  if (!Number.isSafeInteger(train) || !Number.isSafeInteger(test) || train <= 0 || test <= 0)
    return refuse('bad sample counts')
  const body = bytes.subarray(bodyStart)
  if (body.length !== (train + test) * (1 + 2 * PIXELS))
    return refuse(`body of ${body.length} bytes, wrong size`)
  if (createHash('sha256').update(body).digest('hex') !== header.sha256) return refuse('checksum mismatch')
  const labelsOf = (from: number, count: number) => {
    const labels = Int32Array.from(body.subarray(from, from + count))
    return labels.every((label) => label < 10) ? labels : undefined
  }
  const featuresOf = (from: number, count: number) => {
    const scaled = uint16LittleEndian(body.subarray(from, from + 2 * PIXELS * count))
    const features = new Float32Array(scaled.length)
    for (let i = 0; i < scaled.length; i++) {
      if (scaled[i]! > SCALE) return undefined
      features[i] = scaled[i]! / SCALE
    }
    return features
  }
  const trainLabels = labelsOf(0, train)
  const testLabels = labelsOf(train, test)
  const trainFeatures = featuresOf(train + test, train)
  const testFeatures = featuresOf(train + test + 2 * PIXELS * train, test)
  if (!trainLabels || !testLabels || !trainFeatures || !testFeatures) return refuse('values out of range')
  const dataset = (name: string, features: Float32Array, labels: Int32Array): ClassificationDataset => ({
    name,
    task: 'classification',
    classes: 10,
    size: labels.length,
    featureShape: [28, 28, 1],
    features,
    labels,
  })
  return {
    ok: true,
    split: {
      train: dataset('mnist/train', trainFeatures, trainLabels),
      test: dataset('mnist/test', testFeatures, testLabels),
    },
  }
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/** The bytes as u16 LE values: one aligned copy on little-endian machines, a DataView pass elsewhere. */
function uint16LittleEndian(bytes: Uint8Array): Uint16Array {
  // `new Uint8Array(bytes)` copies (a Buffer's own `slice` would share, and misalign, its pool).
  if (littleEndian) return new Uint16Array(new Uint8Array(bytes).buffer)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Uint16Array.from({ length: bytes.length / 2 }, (_, i) => view.getUint16(2 * i, true))
}
