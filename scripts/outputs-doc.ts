/**
 * docs/OUTPUTS.md's column-by-column tables, rendered from the schemas of what a run writes
 * (`packages/lab/src/outputs.ts`). `npx tsx scripts/outputs-doc.ts` rewrites the generated
 * sections in place; scripts/test/outputs-doc.test.ts fails while the file is not current.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { outputsMarkers, outputsTables } from '@phalanx/lab'

export const outputsDocPath = fileURLToPath(new URL('../docs/OUTPUTS.md', import.meta.url))

/** `doc` with each generated table replaced by the current one. */
export function withOutputsTables(doc: string): string {
  let text = doc
  for (const [file, table] of Object.entries(outputsTables())) {
    const [begin, end] = outputsMarkers(file)
    const from = text.indexOf(begin)
    const to = text.indexOf(end)
    if (from < 0 || to < from) throw new Error(`docs/OUTPUTS.md has no "${begin}" … "${end}" section`)
    text = `${text.slice(0, from + begin.length)}\n${table}\n${text.slice(to)}`
  }
  return text
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(outputsDocPath, withOutputsTables(readFileSync(outputsDocPath, 'utf8')))
}
