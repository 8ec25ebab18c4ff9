/**
 * TensorFlow.js core, loaded at its first use instead of when this package is imported. Most
 * processes that import the package never run a tensor op: the `phalanx local` parent, a
 * Byzantine server (it never evaluates), `phalanx --help` and the control commands want its
 * names, datasets and parameter layouts only, and loading tfjs-core costs them CPU at start-up
 * (measured in docs/BENCHMARKS.md, "Start-up"). Its Node entry (`dist/tf-core.node.js`) is
 * CommonJS, so `require` loads it synchronously, and it is the very module instance the
 * backends' own `require('@tensorflow/tfjs-core')` gets, so there is one engine either way.
 */
import { createRequire } from 'node:module'
import type * as Tf from '@tensorflow/tfjs-core'

let loaded: typeof Tf | undefined

/** tfjs-core, loaded once per process at the first call. */
export function tfjs(): typeof Tf {
  loaded ??= createRequire(import.meta.url)('@tensorflow/tfjs-core') as typeof Tf
  return loaded
}
