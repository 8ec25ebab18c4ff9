// Build step: bundles the compiled CLI (dist/main.js and everything it imports) into one file,
// dist/bin.js, the `phalanx` command every node process runs.
//
// Why: a node process spent ~0.9 s of CPU resolving, reading and linking ~1,500 ESM and CJS
// modules before doing anything; a cluster of 16 processes paid that 16 times, and the tests
// start hundreds of processes. One bundled file loads in a fraction of that (measured in
// docs/BENCHMARKS.md). dist/main.js stays runnable unbundled, for debugging.
//
// Kept external: TensorFlow.js (native addon and WASM files located at run time, and already
// shipped as single files) and the `mnist` package (21 MB of JSON, read only without the pack).
import { copyFile, rename } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const cliDir = fileURLToPath(new URL('..', import.meta.url))
const dist = (path) => fileURLToPath(new URL(`../dist/${path}`, import.meta.url))

await build({
  absWorkingDir: cliDir,
  entryPoints: { 'bin.tmp': 'dist/main.js' },
  outdir: 'dist',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['@tensorflow/*', 'mnist'],
  // CJS dependencies inside an ESM bundle call `require` for Node built-ins.
  banner: {
    js: "import { createRequire as __phalanxRequire } from 'node:module'; const require = __phalanxRequire(import.meta.url);",
  },
  legalComments: 'none',
  logLevel: 'warning',
})
// The embedded MNIST pack is looked up beside the running module (see model's mnist.ts).
await copyFile(
  fileURLToPath(new URL('../../model/dist/data/mnist-split.bin', import.meta.url)),
  dist('mnist-split.bin'),
)
// Renamed last, so an interrupted build never leaves a half-written command.
await rename(dist('bin.tmp.js'), dist('bin.js'))
