// Build step: packs the embedded MNIST split next to the compiled loader (see
// src/data/mnist-pack.ts for why and how). Written to a temporary file and renamed, so a
// killed build never leaves a half-written pack (which the loader would refuse anyway).
import { rename, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { MNIST_PACK_URL, packEmbeddedMnist } from '../dist/data/mnist.js'

const target = fileURLToPath(MNIST_PACK_URL)
const temporary = `${target}.${process.pid}.tmp`
await writeFile(temporary, await packEmbeddedMnist())
await rename(temporary, target)
