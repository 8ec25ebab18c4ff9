/**
 * One error class per condition. Each names what is wrong in its message and carries the
 * values that explain it, so a caller (or a test) can branch on `name` and report `details`.
 */

interface ErrorOptionsWithCause {
  readonly cause?: unknown
}

abstract class ModelPackageError<Details extends object> extends Error {
  readonly details: Details
  constructor(message: string, details: Details, options?: ErrorOptionsWithCause) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.details = details
  }
}

/** A flat parameter vector whose length is not the model's parameter count. */
export class ParameterLengthError extends ModelPackageError<{
  readonly model: string
  readonly expected: number
  readonly actual: number
}> {
  constructor(details: { model: string; expected: number; actual: number }, options?: ErrorOptionsWithCause) {
    super(
      `model ${details.model} has ${details.expected} parameters but the vector has ${details.actual}`,
      details,
      options,
    )
    this.name = 'ParameterLengthError'
  }
}

/** A batch or dataset whose features, labels or task do not fit the model. */
export class BatchShapeError extends ModelPackageError<{
  readonly model: string
  readonly problem: string
  readonly expected: unknown
  readonly actual: unknown
}> {
  constructor(
    details: { model: string; problem: string; expected: unknown; actual: unknown },
    options?: ErrorOptionsWithCause,
  ) {
    super(
      `batch does not fit model ${details.model}: ${details.problem} (expected ${String(details.expected)}, got ${String(details.actual)})`,
      details,
      options,
    )
    this.name = 'BatchShapeError'
  }
}

/** A model name that is not in the registry. */
export class UnknownModelError extends ModelPackageError<{
  readonly model: string
  readonly known: readonly string[]
}> {
  constructor(details: { model: string; known: readonly string[] }) {
    super(`unknown model "${details.model}"; known models: ${details.known.join(', ')}`, details)
    this.name = 'UnknownModelError'
  }
}

/** A dataset name that is not in the registry. */
export class UnknownDatasetError extends ModelPackageError<{
  readonly dataset: string
  readonly known: readonly string[]
}> {
  constructor(details: { dataset: string; known: readonly string[] }) {
    super(`unknown dataset "${details.dataset}"; known datasets: ${details.known.join(', ')}`, details)
    this.name = 'UnknownDatasetError'
  }
}

/** An IDX file (Fashion-MNIST) that is not on disk, neither plain nor gzipped. */
export class DatasetFileMissingError extends ModelPackageError<{
  readonly dataset: string
  readonly path: string
  readonly tried: readonly string[]
  readonly install: string
}> {
  constructor(details: { dataset: string; path: string; tried: readonly string[]; install: string }) {
    super(
      `${details.dataset} file missing: ${details.path} (tried ${details.tried.join(', ')}); install it with \`${details.install}\` or set the dataset directory`,
      details,
    )
    this.name = 'DatasetFileMissingError'
  }
}

/** A file that exists but is not a well-formed IDX file of the expected kind. */
export class IdxFormatError extends ModelPackageError<{
  readonly path: string
  readonly problem: string
}> {
  constructor(details: { path: string; problem: string }, options?: ErrorOptionsWithCause) {
    super(`${details.path} is not a valid IDX file: ${details.problem}`, details, options)
    this.name = 'IdxFormatError'
  }
}

/** A dataset file that is (or decompresses to) more bytes than the loader accepts: a gzip bomb, or the wrong file. */
export class DatasetTooLargeError extends ModelPackageError<{
  readonly path: string
  readonly maxBytes: number
  readonly compressed: boolean
}> {
  constructor(
    details: { path: string; maxBytes: number; compressed: boolean },
    options?: ErrorOptionsWithCause,
  ) {
    super(
      `${details.path} ${details.compressed ? 'decompresses to' : 'holds'} more than ${details.maxBytes} bytes, the most a dataset file may hold`,
      details,
      options,
    )
    this.name = 'DatasetTooLargeError'
  }
}

/** A TensorFlow.js backend that was forced by configuration but cannot start here. */
export class BackendUnavailableError extends ModelPackageError<{
  readonly backend: string
  readonly reason: string
}> {
  constructor(details: { backend: string; reason: string }, options?: ErrorOptionsWithCause) {
    super(`TensorFlow.js backend "${details.backend}" is unavailable: ${details.reason}`, details, options)
    this.name = 'BackendUnavailableError'
  }
}

/** An option outside its allowed range (batch size, worker count, α, learning rate, …). */
export class InvalidModelOptionError extends ModelPackageError<{
  readonly option: string
  readonly value: unknown
  readonly requirement: string
}> {
  constructor(details: { option: string; value: unknown; requirement: string }) {
    super(`invalid ${details.option} = ${String(details.value)}: ${details.requirement}`, details)
    this.name = 'InvalidModelOptionError'
  }
}

/** A partition that cannot give every worker data (more workers than samples, …). */
export class PartitionError extends ModelPackageError<{
  readonly scheme: string
  readonly workers: number
  readonly samples: number
  readonly problem: string
}> {
  constructor(details: { scheme: string; workers: number; samples: number; problem: string }) {
    super(
      `cannot partition ${details.samples} samples across ${details.workers} workers (${details.scheme}): ${details.problem}`,
      details,
    )
    this.name = 'PartitionError'
  }
}
