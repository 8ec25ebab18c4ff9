import { Writable } from 'node:stream'
import * as tf from '@tensorflow/tfjs-core'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { backendInfo, initBackend } from '../src/index.js'

function capturingLogger() {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line))
      done()
    },
  })
  return { logger: pino({ level: 'info' }, stream), lines }
}

/** Whether the native backend can load here (it cannot without network at install time). */
async function tfjsNodeLoads(): Promise<boolean> {
  try {
    const specifier = '@tensorflow/tfjs-node'
    await import(specifier)
    return true
  } catch {
    return false
  }
}

describe('backend selection', () => {
  it('auto falls back past an absent tfjs-node to wasm, logs the choice once and exposes it', async () => {
    expect(backendInfo()).toBeUndefined()
    const { logger, lines } = capturingLogger()
    const info = await initBackend({ backend: 'auto', logger })
    const again = await initBackend({ backend: 'auto', logger })
    expect(again).toBe(info)
    expect(backendInfo()).toBe(info)
    if (await tfjsNodeLoads()) {
      expect(info.name).toBe('tfjs-node')
    } else {
      expect(info.name).toBe('wasm')
      expect(info.skipped.map((s) => s.name)).toEqual(['tfjs-node'])
      // Node 20 runs the SIMD build; tfjs-backend-wasm never enables its threaded build under Node.
      expect({ simd: info.simd, threads: info.threads }).toEqual({ simd: true, threads: false })
    }
    expect(tf.getBackend()).toBe(info.tfjsName)
    const ready = lines.filter((line) => line.msg === 'tensorflow.js backend ready')
    expect(ready).toHaveLength(1)
    expect(ready[0]).toMatchObject({ backend: info.name })
  })

  it('forcing a backend switches to it', async () => {
    const cpu = await initBackend({ backend: 'cpu' })
    expect(cpu.name).toBe('cpu')
    expect(tf.getBackend()).toBe('cpu')
    const wasm = await initBackend({ backend: 'wasm' })
    expect(wasm.name).toBe('wasm')
    expect(tf.getBackend()).toBe('wasm')
  })

  it('forcing an unavailable backend → BackendUnavailableError naming it', async (context) => {
    if (await tfjsNodeLoads()) context.skip()
    await expect(initBackend({ backend: 'tfjs-node' })).rejects.toMatchObject({
      name: 'BackendUnavailableError',
      details: { backend: 'tfjs-node' },
    })
    expect(tf.getBackend()).toBe('wasm')
  })
})
