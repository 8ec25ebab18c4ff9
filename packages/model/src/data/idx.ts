/**
 * Fashion-MNIST from IDX files (as Debian's `dataset-fashion-mnist` installs them, gzipped;
 * plain files are read too). Format: big-endian magic 0x0000 08 <ndims>, then ndims uint32
 * sizes, then unsigned bytes.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { DatasetFileMissingError, DatasetTooLargeError, IdxFormatError } from '../errors.js'
import type { ClassificationDataset, DatasetSplit } from './dataset.js'

/** Where Debian's package puts the files. */
export const FASHION_MNIST_DEFAULT_DIR = '/usr/share/datasets/fashion-mnist'
export const FASHION_MNIST_INSTALL_HINT = 'apt-get install dataset-fashion-mnist'

export interface FashionMnistInit {
  /** Directory holding train-images-idx3-ubyte(.gz) and the three other files. */
  readonly dir?: string
  /** Keep only the first samples of each set (for quick runs); all by default. */
  readonly trainLimit?: number
  readonly testLimit?: number
}

interface IdxArray {
  readonly dims: readonly number[]
  readonly data: Uint8Array
}

export const IDX_DEFAULTS = {
  /**
   * The most bytes an IDX file may hold once decompressed: 4 times Fashion-MNIST's largest file
   * (the training images, 47 MB), so a dataset of its shape fits while a gzip bomb (a few KB that
   * inflate to gigabytes) is refused before it takes the process's memory.
   */
  maxBytes: 192 * 1024 * 1024,
} as const

export interface ReadIdxOptions {
  /** Refuse a file holding, or decompressing to, more bytes than this (DatasetTooLargeError). */
  readonly maxBytes?: number
}

/** Parses an IDX file of unsigned bytes; gzip is detected from its magic bytes, not the name. */
export function readIdx(path: string, options: ReadIdxOptions = {}): IdxArray {
  const maxBytes = options.maxBytes ?? IDX_DEFAULTS.maxBytes
  // A plain file that large is refused unread; a gzipped one is refused while it inflates.
  if (statSync(path).size > maxBytes) throw new DatasetTooLargeError({ path, maxBytes, compressed: false })
  let bytes: Uint8Array = readFileSync(path)
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes, { maxOutputLength: maxBytes })
    } catch (error) {
      if ((error as { code?: unknown }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new DatasetTooLargeError({ path, maxBytes, compressed: true }, { cause: error })
      }
      throw new IdxFormatError({ path, problem: 'corrupt gzip stream' }, { cause: error })
    }
  }
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) {
    throw new IdxFormatError({ path, problem: 'missing the 0x0000 magic prefix' })
  }
  if (bytes[2] !== 0x08) {
    throw new IdxFormatError({
      path,
      problem: `element type 0x${bytes[2]!.toString(16)} is not unsigned byte (0x08)`,
    })
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const ndims = bytes[3]!
  const header = 4 + 4 * ndims
  if (bytes.length < header)
    throw new IdxFormatError({ path, problem: `truncated header for ${ndims} dimensions` })
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false))
  const count = dims.reduce((a, b) => a * b, 1)
  if (bytes.length - header !== count) {
    throw new IdxFormatError({
      path,
      problem: `header dims ${dims.join('×')} need ${count} bytes of data, file has ${bytes.length - header}`,
    })
  }
  return { dims, data: bytes.subarray(header) }
}

function locate(dir: string, base: string): string {
  const tried = [join(dir, `${base}.gz`), join(dir, base)]
  const found = tried.find((path) => existsSync(path))
  if (found === undefined) {
    throw new DatasetFileMissingError({
      dataset: 'fashion-mnist',
      path: tried[0]!,
      tried,
      install: FASHION_MNIST_INSTALL_HINT,
    })
  }
  return found
}

function loadPair(dir: string, prefix: 'train' | 't10k', limit: number | undefined): ClassificationDataset {
  const imagesPath = locate(dir, `${prefix}-images-idx3-ubyte`)
  const labelsPath = locate(dir, `${prefix}-labels-idx1-ubyte`)
  const images = readIdx(imagesPath)
  const labels = readIdx(labelsPath)
  if (images.dims.length !== 3) {
    throw new IdxFormatError({
      path: imagesPath,
      problem: `expected 3 dimensions, found ${images.dims.length}`,
    })
  }
  if (labels.dims.length !== 1 || labels.dims[0] !== images.dims[0]) {
    throw new IdxFormatError({
      path: labelsPath,
      problem: `expected ${images.dims[0]} labels to match ${imagesPath}, found dims ${labels.dims.join('×')}`,
    })
  }
  const [count, rows, cols] = images.dims as [number, number, number]
  const size = Math.min(count, limit ?? count)
  const pixels = rows * cols
  const features = new Float32Array(size * pixels)
  for (let i = 0; i < features.length; i++) features[i] = images.data[i]! / 255
  const labelValues = new Int32Array(size)
  for (let i = 0; i < size; i++) {
    const label = labels.data[i]!
    if (label > 9)
      throw new IdxFormatError({ path: labelsPath, problem: `label ${label} at index ${i} is not in 0–9` })
    labelValues[i] = label
  }
  return {
    name: `fashion-mnist/${prefix === 'train' ? 'train' : 'test'}`,
    task: 'classification',
    classes: 10,
    size,
    featureShape: [rows, cols, 1],
    features,
    labels: labelValues,
  }
}

/** Loads Fashion-MNIST's official 60,000/10,000 split (or its first samples, with limits). */
export function loadFashionMnist(init: FashionMnistInit = {}): DatasetSplit<ClassificationDataset> {
  const dir = init.dir ?? FASHION_MNIST_DEFAULT_DIR
  return { train: loadPair(dir, 'train', init.trainLimit), test: loadPair(dir, 't10k', init.testLimit) }
}
