#!/usr/bin/env node
// The file npm links as `phalanx` (node_modules/.bin/phalanx, what `npx phalanx` runs). It is in
// the repository, not built: npm links no bin whose file is missing, and `npm ci` installs before
// anything is built. It runs the built, bundled command (dist/bin.js), whose own path is the one
// node processes are started with.
import { existsSync } from 'node:fs'

const bin = new URL('../dist/bin.js', import.meta.url)
if (!existsSync(bin)) {
  console.error('phalanx: the command is not built yet: run `npm run build` at the repository root')
  process.exit(1)
}
await import(bin.href)
