/**
 * docs/OUTPUTS.md cannot drift from what a run writes: its tables are the ones rendered from the
 * schemas of `summary.json` and `rounds.csv` (packages/lab/src/outputs.ts), field for field and
 * word for word. `npx tsx scripts/outputs-doc.ts` brings it up to date.
 */
import { readFileSync } from 'node:fs'
import { roundColumns, runSummarySchema } from '@phalanx/lab'
import { describe, expect, it } from 'vitest'
import { outputsDocPath, withOutputsTables } from '../outputs-doc.js'

const doc = readFileSync(outputsDocPath, 'utf8')

describe('docs/OUTPUTS.md', () => {
  it('holds the tables rendered from the schemas (run `npx tsx scripts/outputs-doc.ts` when not)', () => {
    expect(doc).toBe(withOutputsTables(doc))
  })

  it.each([...roundColumns])('documents the rounds.csv column %s', (column) => {
    expect(doc).toContain(`| \`${column}\` |`)
  })

  it.each(Object.keys(runSummarySchema.shape))('documents the summary.json field %s', (field) => {
    expect(doc).toContain(`| \`${field}\` |`)
  })
})
