import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { createServerStateStore, type ServerStateInit } from '../src/server-state.js'

const log = pino({ level: 'silent' })
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function init(overrides: Partial<ServerStateInit> = {}): ServerStateInit {
  const dir = mkdtempSync(join(tmpdir(), 'phalanx-state-'))
  dirs.push(dir)
  return { dir, cluster: 'c', nodeId: 'server-1', configHash: 'abc', dimension: 3, log, ...overrides }
}

describe('server state', () => {
  it('gives back what was saved last, both models, and leaves no temporary file', () => {
    const store = createServerStateStore(init())
    expect(store.load()).toBeUndefined()
    store.save({ next: { round: 5, model: Float32Array.of(1, 2, 3) } })
    store.save({
      next: { round: 7, model: Float32Array.of(0.5, -1, 9) },
      published: { round: 6, model: Float32Array.of(4, 5, 6) },
    })
    expect(store.load()).toEqual({
      next: { round: 7, model: Float32Array.of(0.5, -1, 9) },
      published: { round: 6, model: Float32Array.of(4, 5, 6) },
    })
    expect(existsSync(`${store.path}.tmp`)).toBe(false)
  })

  it.each([
    ['cluster', { cluster: 'other' }],
    ['nodeId', { nodeId: 'server-2' }],
    ['configHash', { configHash: 'def' }],
    ['dimension', { dimension: 4 }],
  ])('ignores a state saved under another %s', (_field, change) => {
    const first = init()
    createServerStateStore(first).save({ next: { round: 1, model: Float32Array.of(1, 2, 3) } })
    const other = { ...first, ...change }
    // Another node id is another file: nothing to load either way.
    expect(createServerStateStore(other).load()).toBeUndefined()
  })

  it.each([
    ['empty', Buffer.alloc(0)],
    ['garbage', Buffer.from('not a state file at all')],
    ['truncated', Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from('{}')])],
  ])('ignores a %s file', (_label, bytes) => {
    const store = createServerStateStore(init())
    writeFileSync(store.path, bytes)
    expect(store.load()).toBeUndefined()
  })

  it('ignores a file whose models are cut short', () => {
    const store = createServerStateStore(init())
    store.save({ next: { round: 1, model: Float32Array.of(1, 2, 3) } })
    const whole = readFileSync(store.path)
    writeFileSync(store.path, whole.subarray(0, whole.byteLength - 4))
    expect(store.load()).toBeUndefined()
  })
})
