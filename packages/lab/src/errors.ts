/** Named errors of `@phalanx/lab`: one class per condition, each carrying the values that explain it. */

/** A node of a `phalanx local` cluster died, or the cluster stopped making progress. */
export class LocalClusterError extends Error {
  override readonly name = 'LocalClusterError'
  readonly nodeId: string
  readonly code: number | null

  constructor(message: string, details: { nodeId: string; code: number | null; cause?: unknown }) {
    super(message, { cause: details.cause })
    this.nodeId = details.nodeId
    this.code = details.code
  }
}

/** A matrix file of `phalanx experiment` is malformed (not YAML, unknown key, a grid value that is not a list). */
export class MatrixError extends Error {
  override readonly name = 'MatrixError'
  readonly source: string
  readonly key: string

  constructor(message: string, details: { source: string; key: string; cause?: unknown }) {
    super(message, { cause: details.cause })
    this.source = details.source
    this.key = details.key
  }
}

/** One cell of an experiment grid is not a valid cluster config: names the cell and the field (or bound). */
export class ExperimentCellError extends Error {
  override readonly name = 'ExperimentCellError'
  readonly cellId: string
  readonly field: string

  constructor(message: string, details: { cellId: string; field: string; cause?: unknown }) {
    super(message, { cause: details.cause })
    this.cellId = details.cellId
    this.field = details.field
  }
}
