/**
 * The codes of `@phalanx/model`, one class per condition. Each names what is wrong in its
 * message and carries the values that explain it in `details`, so a caller (or a test) can
 * branch on `code` and report `details`.
 */
import { type Json, PhalanxError, type PhalanxErrorOptions, textOf, toJson } from '@phalanx/errors'

export const modelErrorCodes = [
  'parameter_length',
  'batch_shape',
  'unknown_model',
  'unknown_dataset',
  'dataset_file_missing',
  'idx_format',
  'dataset_too_large',
  'backend_unavailable',
  'invalid_model_option',
  'partition_impossible',
] as const
export type ModelErrorCode = (typeof modelErrorCodes)[number]

type ErrorOptionsWithCause = Pick<PhalanxErrorOptions, 'cause'>

/** A flat parameter vector whose length is not the model's parameter count. */
export class ParameterLengthError extends PhalanxError<
  'parameter_length',
  {
    readonly model: string
    readonly expected: number
    readonly actual: number
  }
> {
  override readonly name = 'ParameterLengthError'

  constructor(details: { model: string; expected: number; actual: number }, options?: ErrorOptionsWithCause) {
    super('parameter_length', details, {
      message: `model ${details.model} has ${details.expected} parameters but the vector has ${details.actual}`,
      ...options,
    })
  }
}

/** A batch or dataset whose features, labels or task do not fit the model. */
export class BatchShapeError extends PhalanxError<
  'batch_shape',
  {
    readonly model: string
    readonly problem: string
    readonly expected: Json
    readonly actual: Json
  }
> {
  override readonly name = 'BatchShapeError'

  constructor(
    details: { model: string; problem: string; expected: unknown; actual: unknown },
    options?: ErrorOptionsWithCause,
  ) {
    super(
      'batch_shape',
      { ...details, expected: toJson(details.expected), actual: toJson(details.actual) },
      {
        message: `batch does not fit model ${details.model}: ${details.problem} (expected ${textOf(details.expected)}, got ${textOf(details.actual)})`,
        ...options,
      },
    )
  }
}

/** A model name that is not in the registry. */
export class UnknownModelError extends PhalanxError<
  'unknown_model',
  {
    readonly model: string
    readonly known: readonly string[]
  }
> {
  override readonly name = 'UnknownModelError'

  constructor(details: { model: string; known: readonly string[] }) {
    super('unknown_model', details, {
      message: `unknown model "${details.model}"; known models: ${details.known.join(', ')}`,
    })
  }
}

/** A dataset name that is not in the registry. */
export class UnknownDatasetError extends PhalanxError<
  'unknown_dataset',
  {
    readonly dataset: string
    readonly known: readonly string[]
  }
> {
  override readonly name = 'UnknownDatasetError'

  constructor(details: { dataset: string; known: readonly string[] }) {
    super('unknown_dataset', details, {
      message: `unknown dataset "${details.dataset}"; known datasets: ${details.known.join(', ')}`,
    })
  }
}

/** An IDX file (Fashion-MNIST) that is not on disk, neither plain nor gzipped. */
export class DatasetFileMissingError extends PhalanxError<
  'dataset_file_missing',
  {
    readonly dataset: string
    readonly path: string
    readonly tried: readonly string[]
    readonly install: string
  }
> {
  override readonly name = 'DatasetFileMissingError'

  constructor(details: { dataset: string; path: string; tried: readonly string[]; install: string }) {
    super('dataset_file_missing', details, {
      message: `${details.dataset} file missing: ${details.path} (tried ${details.tried.join(', ')}); install it with \`${details.install}\` or set the dataset directory`,
    })
  }
}

/** A file that exists but is not a well-formed IDX file of the expected kind. */
export class IdxFormatError extends PhalanxError<
  'idx_format',
  {
    readonly path: string
    readonly problem: string
  }
> {
  override readonly name = 'IdxFormatError'

  constructor(details: { path: string; problem: string }, options?: ErrorOptionsWithCause) {
    super('idx_format', details, {
      message: `${details.path} is not a valid IDX file: ${details.problem}`,
      ...options,
    })
  }
}

/** A dataset file that is (or decompresses to) more bytes than the loader accepts: a gzip bomb, or the wrong file. */
export class DatasetTooLargeError extends PhalanxError<
  'dataset_too_large',
  {
    readonly path: string
    readonly maxBytes: number
    readonly compressed: boolean
  }
> {
  override readonly name = 'DatasetTooLargeError'

  constructor(
    details: { path: string; maxBytes: number; compressed: boolean },
    options?: ErrorOptionsWithCause,
  ) {
    super('dataset_too_large', details, {
      message: `${details.path} ${details.compressed ? 'decompresses to' : 'holds'} more than ${details.maxBytes} bytes, the most a dataset file may hold`,
      ...options,
    })
  }
}

/** A TensorFlow.js backend that was forced by configuration but cannot start here. */
export class BackendUnavailableError extends PhalanxError<
  'backend_unavailable',
  {
    readonly backend: string
    readonly reason: string
  }
> {
  override readonly name = 'BackendUnavailableError'

  constructor(details: { backend: string; reason: string }, options?: ErrorOptionsWithCause) {
    super('backend_unavailable', details, {
      message: `TensorFlow.js backend "${details.backend}" is unavailable: ${details.reason}`,
      ...options,
    })
  }
}

/** An option outside its allowed range (batch size, worker count, α, learning rate, …). */
export class InvalidModelOptionError extends PhalanxError<
  'invalid_model_option',
  {
    readonly option: string
    readonly value: Json
    readonly requirement: string
  }
> {
  override readonly name = 'InvalidModelOptionError'

  constructor(details: { option: string; value: unknown; requirement: string }) {
    super(
      'invalid_model_option',
      { ...details, value: toJson(details.value) },
      {
        message: `invalid ${details.option} = ${textOf(details.value)}: ${details.requirement}`,
      },
    )
  }
}

/** A partition that cannot give every worker data (more workers than samples, …). */
export class PartitionError extends PhalanxError<
  'partition_impossible',
  {
    readonly scheme: string
    readonly workers: number
    readonly samples: number
    readonly problem: string
  }
> {
  override readonly name = 'PartitionError'

  constructor(details: { scheme: string; workers: number; samples: number; problem: string }) {
    super('partition_impossible', details, {
      message: `cannot partition ${details.samples} samples across ${details.workers} workers (${details.scheme}): ${details.problem}`,
    })
  }
}
