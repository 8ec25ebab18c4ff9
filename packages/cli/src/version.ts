/** The package's version, read from its package.json (beside `src/` and `dist/` alike). */
import { readFileSync } from 'node:fs'

export const cliVersion = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version
