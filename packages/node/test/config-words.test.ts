import { describe, expect, it } from 'vitest'
import { clusterConfigSchema } from '../src/config.js'
import { allowedText, closestName, fieldShape } from '../src/config-words.js'

describe('closestName', () => {
  it.each([
    ['rulee', ['rule', 'rounds'], 'rule'],
    ['krumm', ['krum', 'multiKrum'], 'krum'],
    ['byzantine-servers', ['byzantineServers', 'servers'], 'byzantineServers'],
    ['BYZANTINE_WORKERS', ['byzantineWorkers'], 'byzantineWorkers'],
    ['WORKRS', ['WORKERS', 'SERVERS'], 'WORKERS'],
    // Transposed letters are one edit.
    ['seeed', ['seed'], 'seed'],
    ['rlue', ['rule'], 'rule'],
    // Nothing near: no suggestion rather than a wild one.
    ['zzz', ['rule', 'seed', 'out'], undefined],
    ['nonsense', ['rule', 'servers', 'workers'], undefined],
  ] as const)('%s among %j → %s', (word, candidates, expected) => {
    expect(closestName(word, candidates)).toBe(expected)
  })
})

describe('what a field allows, in words, from its schema', () => {
  const shape = (field: keyof typeof clusterConfigSchema.shape) =>
    fieldShape(clusterConfigSchema.shape[field])

  it.each([
    ['servers', 'a whole number from 1 to 64'],
    ['learningRate', 'a number above 0 and at most 100'],
    ['momentum', 'a number from 0 to 0.999'],
    ['alieZ', 'a number from -100 to 100'],
    ['hiddenShiftSign', 'one of against-mean, negative, positive'],
    ['workerAdmission', 'one of closed, open'],
    ['preAggregation', 'a comma-separated list of nnm, bucketing, arc, clip'],
    ['chaos', 'true or false'],
    ['listen', 'a comma-separated list'],
    ['datasetPath', 'text'],
  ] as const)('%s: %s', (field, words) => {
    expect(allowedText(shape(field))).toBe(words)
  })
})
