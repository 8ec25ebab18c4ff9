export type { Random } from './random.js'
export { createRandom, shuffledIndices } from './random.js'
