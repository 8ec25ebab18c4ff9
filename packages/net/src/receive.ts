/**
 * A vector's payload received into place: the destination `Float32Array` is allocated once, from
 * the announced size (bounded by `maxPayloadBytes` before anything is allocated), each chunk is
 * copied into it as it comes off the stream, and the sha256 and the finiteness scan run on that
 * chunk while it is in cache. What the application gets is that same array.
 *
 * Every copy and pass over a fetched payload of S bytes, wire to application, above libp2p's
 * own (TCP reads, Noise decryption in place, Yamux framing as `Uint8ArrayList` views):
 *
 * | step | before (57cb4fb) | now |
 * | --- | --- | --- |
 * | stream → payload | `it-byte-stream` `read({ bytes: S })` held every chunk of the payload until the last arrived (S bytes of chunk buffers alive at once), then one copy into `new Uint8Array(S)` | each ≤ 64 KiB piece copied into the destination as it arrives (the one copy out of the stream's buffers); the chunks die young |
 * | sha256 | one pass over the whole copy after the last byte (cold in cache past a few MiB) | `createHash().update(piece)` per piece, same pass as the copy |
 * | finiteness | one pass over the whole copy after the hash (`checkPayload`) | per piece, over the coordinates it completed (a float split across two pieces is scanned once, when whole) |
 * | delivery | `vector.slice()`: a second allocation and copy of S, so the application could write into its vector | none: the delivered array is the one received into, shared with the payload store (read-only, see `DeliveredVector`) |
 *
 * Inline payloads (≤ `inlineMaxBytes`, inside the signed gossip message): before, the hash pass,
 * then `bytesToVector` for the finiteness pass (a copy when the protobuf field is not 4-byte
 * aligned), then `bytesToVector` again for the vector (a second copy), then the delivery copy;
 * now one `inspectPayload`: the hash pass, one aligned copy only when the field is misaligned,
 * one finiteness pass, no delivery copy.
 *
 * Finiteness is scanned here and only here for received vectors (`firstNonFinite`), and judged
 * with the hash in `checkReceived` (`validation.ts`): a hash mismatch is the serving peer's fault
 * and is decided first, a non-finite payload that matches the signed hash is the signer's. Nothing
 * between delivery and the application scans it again; the aggregation rules' own input check is
 * a property of those pure functions (and fused into their kernels' pass), not of the data plane.
 *
 * Float32 payloads travel little-endian. On a little-endian host the destination's bytes are the
 * wire bytes; on a big-endian one the wire bytes are kept as received (they are what this node
 * serves, and what the hash covers) and the vector is a byte-swapped copy made at the end, which is
 * then what the finiteness scan reads.
 */
import { createHash, type Hash } from 'node:crypto'
import { firstNonFinite, littleEndianHost } from './codec.js'
import { PayloadProtocolError } from './errors.js'

/** A payload as received, before anyone judged it: `checkReceived` does (`validation.ts`). */
export interface ReceivedPayload {
  /**
   * The little-endian bytes as received: what this node serves to peers that pull it from here.
   * On a little-endian host a view of `vector`'s whole buffer, offset 0.
   */
  bytes: Uint8Array
  /** The vector the application gets. */
  vector: Float32Array
  /** sha256 of `bytes`. */
  digest: Uint8Array
  /** Index of the first coordinate that is NaN or ±Infinity, or −1. */
  firstNonFinite: number
}

/** Why a payload of this size cannot be received: checked before anything is allocated. */
export function sizeProblem(size: number, maxBytes: number): string | undefined {
  if (!Number.isSafeInteger(size) || size < 0) return `payload size ${size} is not a byte count`
  if (size > maxBytes) return `payload of ${size} bytes, at most ${maxBytes}`
  if (size % 4 !== 0) return `payload of ${size} bytes is not float32`
  return undefined
}

/**
 * Receives one payload of exactly `size` bytes, chunk by chunk, into the vector it delivers.
 * `open` is the only place a fetched payload's memory is allocated.
 */
export class PayloadSink {
  readonly size: number
  readonly #bytes: Uint8Array
  /** The bytes as float32s, on a little-endian host; on a big-endian one made at `finish`. */
  readonly #vector: Float32Array | undefined
  readonly #hash: Hash = createHash('sha256')
  #received = 0
  /** Coordinates scanned for finiteness so far (little-endian hosts scan as bytes arrive). */
  #scanned = 0
  #firstNonFinite = -1

  private constructor(size: number, littleEndian: boolean) {
    this.size = size
    this.#bytes = new Uint8Array(size)
    this.#vector = littleEndian ? new Float32Array(this.#bytes.buffer, 0, size / 4) : undefined
  }

  /**
   * A sink for a payload of `size` bytes, or why there cannot be one (not a multiple of 4, over
   * `maxBytes`): then nothing was allocated. `littleEndian` is the host's, for tests of the other.
   */
  static open(size: number, maxBytes: number, littleEndian = littleEndianHost): PayloadSink | string {
    return sizeProblem(size, maxBytes) ?? new PayloadSink(size, littleEndian)
  }

  get received(): number {
    return this.#received
  }

  /** Copies one chunk into place and hashes and scans it; refuses bytes past `size`. */
  write(chunk: Uint8Array): void {
    if (chunk.byteLength > this.size - this.#received)
      throw new PayloadProtocolError(`more than the ${this.size} bytes announced`)
    this.#bytes.set(chunk, this.#received)
    this.#advance(chunk)
  }

  /**
   * The destination's next at most `max` bytes, for a reader that reads straight into place
   * (the TLS plane's socket): no copy at all, then `commit` what it wrote there.
   */
  window(max: number): Uint8Array {
    return this.#bytes.subarray(this.#received, Math.min(this.size, this.#received + max))
  }

  /** Takes the `length` bytes written at the start of `window()` as received: hashes and scans them. */
  commit(length: number): void {
    if (!Number.isSafeInteger(length) || length < 0 || length > this.size - this.#received)
      throw new PayloadProtocolError(`more than the ${this.size} bytes announced`)
    this.#advance(this.#bytes.subarray(this.#received, this.#received + length))
  }

  #advance(chunk: Uint8Array): void {
    this.#hash.update(chunk)
    this.#received += chunk.byteLength
    if (this.#vector !== undefined && this.#firstNonFinite < 0) {
      const whole = this.#received >>> 2
      const bad = firstNonFinite(this.#vector, this.#scanned, whole)
      this.#scanned = whole
      if (bad >= 0) this.#firstNonFinite = bad
    }
  }

  /** The payload, once all `size` bytes are in. */
  finish(): ReceivedPayload {
    if (this.#received !== this.size)
      throw new PayloadProtocolError(`${this.#received} of ${this.size} bytes received`)
    const digest = this.#hash.digest()
    if (this.#vector !== undefined)
      return { bytes: this.#bytes, vector: this.#vector, digest, firstNonFinite: this.#firstNonFinite }
    const vector = swappedVector(this.#bytes)
    return { bytes: this.#bytes, vector, digest, firstNonFinite: firstNonFinite(vector) }
  }
}

/**
 * An inline payload (a view into the signed gossip message) as a received one: one hash pass,
 * a view of the bytes as the vector when they are 4-byte aligned (else one aligned copy: protobuf
 * fields start anywhere), one finiteness pass. `bytes.byteLength` must be a multiple of 4.
 */
export function inspectPayload(bytes: Uint8Array, littleEndian = littleEndianHost): ReceivedPayload {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`payload of ${bytes.byteLength} bytes is not float32`)
  const digest = createHash('sha256').update(bytes).digest()
  let vector: Float32Array
  if (!littleEndian) vector = swappedVector(bytes)
  else if (bytes.byteOffset % 4 === 0)
    vector = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
  else {
    // A fresh buffer: `slice` on a Node Buffer would return a view of its shared pool.
    const aligned = new Uint8Array(bytes.byteLength)
    aligned.set(bytes)
    vector = new Float32Array(aligned.buffer)
  }
  return { bytes, vector, digest, firstNonFinite: firstNonFinite(vector) }
}

/** Little-endian float32 bytes as a native vector on a big-endian host (a copy). */
function swappedVector(bytes: Uint8Array): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const vector = new Float32Array(bytes.byteLength / 4)
  for (let i = 0; i < vector.length; i++) vector[i] = view.getFloat32(4 * i, true)
  return vector
}
