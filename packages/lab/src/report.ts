/**
 * What a run leaves behind in `--out DIR`: `summary.json`, `rounds.csv` (one row per round; both
 * defined in `outputs.ts`, documented in docs/OUTPUTS.md) and `report.html` (drawn by
 * `report-html.ts`); `run-report.ts` writes the three. `checkOutDir` is what a command does with
 * its `--out` before any work.
 */
import { accessSync, constants, mkdirSync } from 'node:fs'
import { OutDirError } from './errors.js'
import { type RoundRow, roundColumns } from './outputs.js'

export function roundsCsv(rows: readonly RoundRow[]): string {
  const lines = [roundColumns.join(',')]
  for (const row of rows) lines.push(roundColumns.map((column) => formatCell(row[column])).join(','))
  return `${lines.join('\n')}\n`
}

function formatCell(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return ''
  return Number.isInteger(value) ? String(value) : value.toPrecision(6)
}

/**
 * Creates `dir` if needed and checks this process may write into it: what a command does with its
 * `--out` before any work, so that a run of an hour does not fail at its end for a typo'd path.
 */
export function checkOutDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true })
    accessSync(dir, constants.W_OK | constants.X_OK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    const reason =
      code === 'ENOTDIR' || code === 'EEXIST'
        ? 'a file is in the way (not a directory)'
        : code === 'EACCES' || code === 'EPERM'
          ? 'permission denied'
          : code === 'EROFS'
            ? 'read-only file system'
            : ((error as Error).message ?? String(error))
    throw new OutDirError({ dir, reason, cause: error })
  }
}
