/**
 * The state file and the signed-round watermark as an attacker (a flipped bit, a torn or lost
 * write, a file forged with a valid checksum but poisonous values) would have them: every one is
 * refused with its code and counted, a valid file round-trips, and the watermark never lets a
 * server sign a second model for a round it signed.
 */
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import fc from 'fast-check'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, ServerStateError, type ServerStateErrorCode } from '../src/errors.js'
import { parseFailpoints } from '../src/failpoints.js'
import {
  createServerStateStore,
  createSigningGuard,
  guardModelPublish,
  modelHash,
  type ServerState,
  type ServerStateInit,
  type StateLoad,
} from '../src/server-state.js'
import type { RoundTransport } from '../src/transport.js'

const log = pino({ level: 'silent' })
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function init(overrides: Partial<ServerStateInit> = {}): ServerStateInit {
  const dir = mkdtempSync(join(tmpdir(), 'phalanx-state-'))
  dirs.push(dir)
  return {
    dir,
    cluster: 'c',
    nodeId: 'server-1',
    configHash: 'abc',
    dimension: 4,
    rounds: 100,
    log,
    ...overrides,
  }
}

const state: ServerState = {
  next: { round: 8, model: Float32Array.of(1, 2, 3, 4) },
  published: { round: 7, model: Float32Array.of(0.5, -1, 9, 1e-3) },
}

/** A file in the documented layout, checksum and all, whatever header and body it is given. */
function forged(header: unknown, body: Buffer, magic = 'PHXSTATE', version = 2): Buffer {
  const headerBytes = Buffer.isBuffer(header) ? header : Buffer.from(JSON.stringify(header))
  const prefix = Buffer.alloc(20)
  prefix.write(magic, 0, 'latin1')
  prefix.writeUInt32LE(version, 8)
  prefix.writeUInt32LE(headerBytes.byteLength, 12)
  prefix.writeUInt32LE(body.byteLength, 16)
  const content = Buffer.concat([prefix, headerBytes, body])
  return Buffer.concat([content, createHash('sha256').update(content).digest()])
}

const validHeader = {
  cluster: 'c',
  nodeId: 'server-1',
  configHash: 'abc',
  dimension: 4,
  next: 8,
  published: null,
}
const floats = (...values: number[]) => Buffer.from(Float32Array.of(...values).buffer)

function refusedCode(load: StateLoad<unknown>): ServerStateErrorCode | undefined {
  if (load.status !== 'refused') return undefined
  expect(load.error).toBeInstanceOf(ServerStateError)
  return load.error.code
}

describe('state file', () => {
  it('round-trips a valid state, leaves no temporary file, and counts nothing refused', () => {
    const store = createServerStateStore(init())
    store.save(state)
    expect(store.inspect()).toEqual({ status: 'loaded', value: state })
    expect(existsSync(`${store.path}.tmp`)).toBe(false)
    expect(store.counters.state_files_refused_total).toBe(0)
  })

  it('round-trips any finite state (property)', () => {
    const settings = init()
    const store = createServerStateStore(settings)
    fc.assert(
      fc.property(
        fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 1, max: 100 }),
        fc.boolean(),
        (values, next, withPublished) => {
          const model = Float32Array.from(values)
          const saved: ServerState = {
            next: { round: next, model },
            ...(withPublished ? { published: { round: next - 1, model: model.map((v) => -v) } } : {}),
          }
          store.save(saved)
          expect(store.load()).toEqual(saved)
        },
      ),
      { numRuns: 100 },
    )
  })

  // Where a flipped byte lands decides which check names it; every one is refused.
  it.each<[string, (bytes: Buffer) => number, ServerStateErrorCode[]]>([
    ['the magic', () => 0, ['state_bad_magic']],
    ['the version', () => 8, ['state_bad_version']],
    ['the header length', () => 12, ['state_truncated', 'state_bad_length', 'state_bad_header']],
    ['the body length', () => 16, ['state_truncated', 'state_bad_length']],
    ['the header', () => 30, ['state_checksum_mismatch']],
    ['the first model', (bytes) => bytes.byteLength - 32 - 20, ['state_checksum_mismatch']],
    ['the last model byte', (bytes) => bytes.byteLength - 33, ['state_checksum_mismatch']],
    ['the checksum', (bytes) => bytes.byteLength - 1, ['state_checksum_mismatch']],
  ])('refuses a file with a byte flipped in %s, by code, and counts it', (_where, offsetOf, codes) => {
    const store = createServerStateStore(init())
    store.save(state)
    const bytes = readFileSync(store.path)
    bytes[offsetOf(bytes)]! ^= 0x10
    writeFileSync(store.path, bytes)
    expect(codes).toContain(refusedCode(store.inspect()))
    expect(store.load()).toBeUndefined()
    expect(store.counters.state_files_refused_total).toBe(2)
  })

  it('refuses a byte flipped anywhere, any bit (property)', () => {
    const store = createServerStateStore(init())
    store.save(state)
    const whole = readFileSync(store.path)
    fc.assert(
      fc.property(fc.nat({ max: whole.byteLength - 1 }), fc.integer({ min: 1, max: 255 }), (offset, mask) => {
        const bytes = Buffer.from(whole)
        bytes[offset]! ^= mask
        writeFileSync(store.path, bytes)
        expect(refusedCode(store.inspect())).toBeDefined()
      }),
      { numRuns: 300 },
    )
  })

  it('refuses truncation at every offset as state_truncated (a torn or lost write)', () => {
    const store = createServerStateStore(init())
    store.save(state)
    const whole = readFileSync(store.path)
    for (let length = 0; length < whole.byteLength; length++) {
      writeFileSync(store.path, whole.subarray(0, length))
      expect(refusedCode(store.inspect()), `cut at ${length}`).toBe('state_truncated')
    }
    expect(store.counters.state_files_refused_total).toBe(whole.byteLength)
  })

  it('refuses bytes appended after the frame', () => {
    const store = createServerStateStore(init())
    store.save(state)
    writeFileSync(store.path, Buffer.concat([readFileSync(store.path), Buffer.from([0])]))
    expect(refusedCode(store.inspect())).toBe('state_bad_length')
  })

  // The values the issue found accepted, now in files whose checksum is valid: only the range
  // and finiteness checks stand between them and an honest server resuming Byzantine.
  it.each<[string, unknown, Buffer, ServerStateErrorCode]>([
    ['a NaN in the model', validHeader, floats(Number.NaN, 2, 3, 4), 'state_non_finite'],
    ['an Infinity in the model', validHeader, floats(1, Number.POSITIVE_INFINITY, 3, 4), 'state_non_finite'],
    ['next = −5', { ...validHeader, next: -5 }, floats(1, 2, 3, 4), 'state_bad_header'],
    ['next = 1e300', { ...validHeader, next: 1e300 }, floats(1, 2, 3, 4), 'state_bad_header'],
    ['next = "x"', { ...validHeader, next: 'x' }, floats(1, 2, 3, 4), 'state_bad_header'],
    ['next = 2.5', { ...validHeader, next: 2.5 }, floats(1, 2, 3, 4), 'state_bad_header'],
    [
      'next beyond the configured rounds',
      { ...validHeader, next: 101 },
      floats(1, 2, 3, 4),
      'state_bad_header',
    ],
    [
      'published not next − 1',
      { ...validHeader, published: 3 },
      floats(1, 2, 3, 4, 1, 2, 3, 4),
      'state_bad_header',
    ],
    ['an unknown header field', { ...validHeader, extra: 1 }, floats(1, 2, 3, 4), 'state_bad_header'],
    ['a dimension of 0', { ...validHeader, dimension: 0 }, Buffer.alloc(0), 'state_bad_header'],
    ['a body one model short', { ...validHeader, published: 7 }, floats(1, 2, 3, 4), 'state_bad_length'],
    ['a header that is not JSON', Buffer.from('{not json'), floats(1, 2, 3, 4), 'state_bad_header'],
  ])('refuses a checksummed file with %s', (_label, header, body, code) => {
    const store = createServerStateStore(init())
    writeFileSync(store.path, forged(header, body))
    expect(refusedCode(store.inspect())).toBe(code)
  })

  it.each<[string, Buffer, ServerStateErrorCode]>([
    [
      'the version-1 format',
      Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('{}')]),
      'state_bad_magic',
    ],
    ['garbage', Buffer.from('not a state file at all'), 'state_bad_magic'],
    ['a future format version', forged(validHeader, floats(1, 2, 3, 4), 'PHXSTATE', 3), 'state_bad_version'],
    ['a watermark in its place', forged(validHeader, floats(1, 2, 3, 4), 'PHXSIGNW'), 'state_bad_magic'],
  ])('refuses %s', (_label, bytes, code) => {
    const store = createServerStateStore(init())
    writeFileSync(store.path, bytes)
    expect(refusedCode(store.inspect())).toBe(code)
  })

  it.each([
    ['cluster', { cluster: 'other' }],
    ['configHash', { configHash: 'def' }],
    ['dimension', { dimension: 5 }],
  ])('calls a file of another %s foreign, not corrupt, and does not count it', (field, change) => {
    const first = init()
    createServerStateStore(first).save(state)
    const other = createServerStateStore({ ...first, ...change })
    expect(other.inspect()).toEqual({ status: 'foreign', field })
    expect(other.counters.state_files_refused_total).toBe(0)
  })

  it("never reads another node's file (its own name is its node id)", () => {
    const first = init()
    createServerStateStore(first).save(state)
    expect(createServerStateStore({ ...first, nodeId: 'server-2' }).inspect()).toEqual({ status: 'none' })
  })

  it('refuses to save a non-finite model and keeps the last good file', () => {
    const store = createServerStateStore(init())
    store.save(state)
    expect(() => store.save({ next: { round: 9, model: Float32Array.of(1, Number.NaN, 3, 4) } })).toThrow(
      expect.objectContaining({ code: 'state_non_finite' }),
    )
    expect(store.load()).toEqual(state)
  })
})

describe('signed-round watermark', () => {
  const a = Float32Array.of(1, 2, 3, 4)
  const b = Float32Array.of(1, 2, 3, 5)

  it('never signs a second model for a round, across restarts, and counts each refusal', () => {
    const settings = init()
    const first = createSigningGuard(settings)
    expect(first.loaded).toBe('none')
    expect(first.authorize(5, a)).toBe(true)
    // The process dies; the next one reads the watermark.
    const second = createSigningGuard(settings)
    expect(second.loaded).toBe('loaded')
    expect(second.highestSigned).toBe(5)
    expect(second.authorize(5, b)).toBe(false)
    expect(second.authorize(4, b)).toBe(false)
    // The same statement again is no equivocation (a server resumed from its state republishes it).
    expect(second.authorize(5, a)).toBe(true)
    expect(second.authorize(6, b)).toBe(true)
    // The round before the highest is remembered too: its model may be re-announced.
    expect(createSigningGuard(settings).authorize(5, a)).toBe(true)
    expect(createSigningGuard(settings).authorize(5, b)).toBe(false)
    expect(second.counters.signatures_refused_total).toBe(2)
  })

  it('no sequence of restarts and attempts signs two models for one round (property)', () => {
    const models = [a, b, Float32Array.of(0, 0, 0, 0)]
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.record({ restart: fc.constant(true) }),
            fc.record({ round: fc.nat({ max: 6 }), model: fc.nat({ max: models.length - 1 }) }),
          ),
          { maxLength: 40 },
        ),
        (steps) => {
          const settings = init()
          let guard = createSigningGuard(settings)
          const signed = new Map<number, string>()
          for (const step of steps) {
            if ('restart' in step) {
              guard = createSigningGuard(settings)
              continue
            }
            const model = models[step.model]!
            if (!guard.authorize(step.round, model)) continue
            const earlier = signed.get(step.round)
            expect(earlier === undefined || earlier === modelHash(model)).toBe(true)
            signed.set(step.round, modelHash(model))
          }
          rmSync(settings.dir, { recursive: true, force: true })
        },
      ),
      { numRuns: 100 },
    )
  })

  it('a corrupt watermark is refused and counted; joined amnesic, it stays silent past what the cluster announces', () => {
    const settings = init()
    createSigningGuard(settings).authorize(5, a)
    const path = join(settings.dir, 'server-1.signed')
    const bytes = readFileSync(path)
    bytes[bytes.byteLength - 40]! ^= 1
    writeFileSync(path, bytes)
    const guard = createSigningGuard(settings)
    expect(guard.loaded).toBe('refused')
    expect(guard.counters.watermark_files_refused_total).toBe(1)
    guard.started({ round: 4, publishFirst: false, resumedFromState: false, heardRound: 5 })
    expect([5, 6].map((round) => guard.authorize(round, b))).toEqual([false, false])
    expect(guard.authorize(7, b)).toBe(true)
  })

  it.each([
    ['resumed from its state', { round: 6, publishFirst: true, resumedFromState: true }],
    ['starting the cluster at round 0', { round: 0, publishFirst: true, resumedFromState: false }],
  ])('adds no silence when %s', (_label, start) => {
    const guard = createSigningGuard(init())
    guard.started({ ...start, heardRound: 9 })
    expect(guard.authorize(start.round, a)).toBe(true)
  })

  it('drops a refused model publish and passes everything else through', async () => {
    const published: [string, number][] = []
    const transport = {
      publish: async (kind: string, round: number) => void published.push([kind, round]),
    } as unknown as RoundTransport
    const guard = createSigningGuard(init())
    const guarded = guardModelPublish(transport, guard)
    await guarded.publish('model', 3, a)
    await guarded.publish('model', 3, b)
    await guarded.publish('gradient', 3, b)
    expect(published).toEqual([
      ['model', 3],
      ['gradient', 3],
    ])
  })
})

describe('failpoints', () => {
  it.each(['', undefined, '  '])('are off when PHALANX_FAILPOINTS is %j', (text) => {
    expect(() => parseFailpoints(text).hit('after-save')).not.toThrow()
  })

  it.each([
    'after-save',
    'nowhere:crash@1',
    'after-save:crash@0',
    'after-save:panic@2',
    'after-save:crash@x',
  ])('refuse the malformed entry %j by name', (text) => {
    expect(() => parseFailpoints(text)).toThrow(ConfigError)
  })
})
