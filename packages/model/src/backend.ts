/**
 * TensorFlow.js backend selection: native tfjs-node when its binary is installed (it cannot be
 * downloaded offline, so usually it is not), else WebAssembly (ships its .wasm in
 * node_modules; SIMD on Node 20, single-threaded: tfjs-backend-wasm 4.22 turns its threaded
 * build off whenever IS_NODE, tensorflow/tfjs#3830), else the pure-JS CPU backend.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Logger } from 'pino'
import { BackendUnavailableError } from './errors.js'
import { tfjs } from './tf.js'

/** Backends this package knows, fastest first. */
export const backendNames = ['tfjs-node', 'wasm', 'cpu'] as const
export type BackendName = (typeof backendNames)[number]

/** What was chosen, for logs and run summaries. */
export interface BackendInfo {
  readonly name: BackendName
  /** tfjs-core's own name of the backend ('tensorflow' for tfjs-node). */
  readonly tfjsName: string
  /** WASM only: whether the SIMD build was loaded. */
  readonly simd: boolean
  /** WASM only: whether the multi-threaded build was loaded. */
  readonly threads: boolean
  /** Backends tried before this one, with why each failed. */
  readonly skipped: readonly { readonly name: BackendName; readonly reason: string }[]
}

export interface BackendInit {
  /** 'auto' tries tfjs-node → wasm → cpu; a name forces that backend or fails. */
  readonly backend?: BackendName | 'auto'
  readonly logger?: Logger
}

const tfjsNames: Record<BackendName, string> = { 'tfjs-node': 'tensorflow', wasm: 'wasm', cpu: 'cpu' }

let current: BackendInfo | undefined
let pending: Promise<BackendInfo> | undefined
let pendingChoice: BackendName | 'auto' | undefined

/** The backend chosen by the last `initBackend`, or undefined before it. */
export function backendInfo(): BackendInfo | undefined {
  return current
}

/**
 * Selects and readies a backend once per process; later calls with the same choice return the
 * same info, a different forced choice switches. Logs the choice once.
 */
export function initBackend(init: BackendInit = {}): Promise<BackendInfo> {
  const choice = init.backend ?? 'auto'
  if (current !== undefined && (choice === 'auto' || choice === current.name)) return Promise.resolve(current)
  if (pending !== undefined && pendingChoice === choice) return pending
  pendingChoice = choice
  pending = select(choice).then(
    (info) => {
      current = info
      pending = undefined
      init.logger?.info(
        { backend: info.name, simd: info.simd, threads: info.threads, skipped: info.skipped },
        'tensorflow.js backend ready',
      )
      return info
    },
    (error: unknown) => {
      pending = undefined
      throw error
    },
  )
  return pending
}

async function select(choice: BackendName | 'auto'): Promise<BackendInfo> {
  const order: readonly BackendName[] = choice === 'auto' ? backendNames : [choice]
  const skipped: { name: BackendName; reason: string }[] = []
  const tf = tfjs()
  for (const name of order) {
    try {
      await register(name)
      const ok = await tf.setBackend(tfjsNames[name])
      if (!ok) throw new Error(`tf.setBackend('${tfjsNames[name]}') returned false`)
      await tf.ready()
      const isWasm = name === 'wasm'
      return {
        name,
        tfjsName: tfjsNames[name],
        simd: isWasm && tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
        threads: isWasm && tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'),
        skipped,
      }
    } catch (error) {
      const reason = error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error)
      if (choice !== 'auto') throw new BackendUnavailableError({ backend: name, reason }, { cause: error })
      skipped.push({ name, reason })
    }
  }
  throw new BackendUnavailableError({ backend: 'auto', reason: 'no backend could start' })
}

const registered = new Set<BackendName>()

async function register(name: BackendName): Promise<void> {
  if (registered.has(name)) return
  if (name === 'tfjs-node') {
    // A variable specifier keeps TypeScript from resolving the optional package at build time.
    const specifier = '@tensorflow/tfjs-node'
    await import(specifier)
  } else if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm')
    // Node cannot fetch the .wasm next to the bundle by URL: point Emscripten at the files on disk.
    const require = createRequire(import.meta.url)
    const distDir = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist')
    wasm.setWasmPaths(`${distDir}/`)
  } else {
    await import('@tensorflow/tfjs-backend-cpu')
  }
  registered.add(name)
}
