/**
 * The codes of `@phalanx/lab`, one class per condition, each carrying the values that explain it
 * (on the `@phalanx/errors` base).
 */
import { PhalanxError } from '@phalanx/errors'

export const labErrorCodes = [
  'local_cluster_failed',
  'matrix_invalid',
  'experiment_cell_invalid',
  'simulate_unsupported',
  'out_dir_unwritable',
] as const
export type LabErrorCode = (typeof labErrorCodes)[number]

/** A node of a `phalanx local` cluster died (`exitCode`, null if killed), or the cluster stopped making progress. */
export class LocalClusterError extends PhalanxError<
  'local_cluster_failed',
  { nodeId: string; exitCode: number | null }
> {
  override readonly name = 'LocalClusterError'
  declare readonly nodeId: string
  declare readonly exitCode: number | null

  constructor(message: string, details: { nodeId: string; exitCode: number | null; cause?: unknown }) {
    const { cause, ...rest } = details
    super('local_cluster_failed', rest, { message, cause })
  }
}
/** A matrix file of `phalanx experiment` is malformed (not YAML, unknown key, a grid value that is not a list). */
export class MatrixError extends PhalanxError<'matrix_invalid', { source: string; key: string }> {
  override readonly name = 'MatrixError'
  declare readonly source: string
  declare readonly key: string

  constructor(message: string, details: { source: string; key: string; cause?: unknown }) {
    const { cause, ...rest } = details
    super('matrix_invalid', rest, { message, cause })
  }
}
/** One cell of an experiment grid is not a valid cluster config: names the cell and the field (or bound). */
export class ExperimentCellError extends PhalanxError<
  'experiment_cell_invalid',
  { cellId: string; field: string }
> {
  override readonly name = 'ExperimentCellError'
  declare readonly cellId: string
  declare readonly field: string

  constructor(message: string, details: { cellId: string; field: string; cause?: unknown }) {
    const { cause, ...rest } = details
    super('experiment_cell_invalid', rest, { message, cause })
  }
}

/**
 * `phalanx simulate` cannot honour a config value (a replication mode it has no single-process
 * form of): refused before any work, rather than silently run as something else.
 */
export class SimulateUnsupportedError extends PhalanxError<
  'simulate_unsupported',
  { field: string; value: string; allowed: readonly string[] }
> {
  override readonly name = 'SimulateUnsupportedError'
  declare readonly field: string
  declare readonly value: string
  declare readonly allowed: readonly string[]

  constructor(details: { field: string; value: string; allowed: readonly string[]; why: string }) {
    const { why, ...rest } = details
    super('simulate_unsupported', rest, {
      message: `phalanx simulate cannot run ${details.field} "${details.value}": ${why} (it runs ${details.allowed.join(', ')})`,
    })
  }
}

/**
 * The `--out` directory cannot be created or written (a file in its path, no permission, a
 * read-only file system): refused before any work, so a run never ends with nowhere to put its
 * results.
 */
export class OutDirError extends PhalanxError<'out_dir_unwritable', { dir: string; reason: string }> {
  override readonly name = 'OutDirError'
  declare readonly dir: string
  declare readonly reason: string

  constructor(details: { dir: string; reason: string; cause?: unknown }) {
    const { cause, ...rest } = details
    super('out_dir_unwritable', rest, {
      message: `cannot write the out directory ${rest.dir}: ${rest.reason}`,
      cause,
    })
  }
}
