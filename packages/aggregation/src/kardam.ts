/**
 * Kardam (Damaskinos et al., "Asynchronous Byzantine Machine Learning (the case of SGD)",
 * ICML 2018): a filter for an asynchronous parameter server, not a GAR. Each gradient is
 * judged on arrival, alone, by
 *  1. a Lipschitz filter: its empirical Lipschitz coefficient K = ‖g − g_ref‖ / ‖x − x_ref‖
 *     (g computed at model x; g_ref the latest accepted gradient computed at another model
 *     x_ref) must not be among the f largest of the workers' recent coefficients — with one
 *     coefficient per worker and all n present, that is K ≤ the (n−f)/n quantile;
 *  2. a frequency filter: a worker may supply at most `maxPerWorker` of any `frequencyWindow`
 *     (default 2f) consecutive accepted gradients, so any 2f of them hold at least f honest;
 *  3. staleness dampening: an accepted gradient computed τ steps ago is weighted by Λ(τ),
 *     1/(τ+1) ('inverse') or exp(−ατ) ('exponential').
 *
 * Departures from the paper, on purpose: the server computes every coefficient itself (the
 * paper lets workers declare theirs for the quantile, which a Byzantine worker can lie about),
 * so the filtered value and the quantile are the same statistic; and each worker contributes
 * only its latest coefficient, so a worker that floods the server cannot fill the quantile's
 * sample. Malformed submissions (wrong length, non-finite values, a step from the future) are
 * rejected with a reason rather than thrown: they come from workers, and none may crash the
 * server. Caller mistakes (an unknown worker id, a model of the wrong length) throw.
 *
 * @example
 * ```ts
 * const kardam = new KardamFilter({ n: 10, f: 3 })
 * const decision = kardam.consider({ worker: 4, gradient, model: modelAtStep(l), step: l }, t)
 * if (decision.accepted) axpy(-learningRate * decision.weight, gradient, model)
 * ```
 */
import { BoundError, DimensionMismatchError, InvalidOptionError, UnknownWorkerError } from './errors.js'
import { l2Distance } from './vector.js'

export type KardamDampening = { kind: 'inverse' } | { kind: 'exponential'; alpha: number } | { kind: 'none' }

export interface KardamInit {
  /** Number of workers; worker ids are 0..n−1. */
  n: number
  /** Number of Byzantine workers tolerated; Kardam needs n ≥ 3f+1. */
  f: number
  /** Λ(τ) applied to accepted stale gradients (default inverse). */
  dampening?: KardamDampening
  /** Length of the frequency filter's window of accepted gradients (default 2f). */
  frequencyWindow?: number
  /** How many of any `frequencyWindow` consecutive accepted gradients one worker may supply (default 1). */
  maxPerWorker?: number
  /** A worker's coefficient counts in the quantile for this many submissions after it (default 2n). */
  coefficientWindow?: number
}

/** A gradient as the server sees it. */
export interface KardamSubmission {
  /** Worker id in 0..n−1. */
  worker: number
  gradient: Float32Array
  /** The server's model at `step`, the one the worker computed `gradient` at. */
  model: Float32Array
  /** Version of `model` (the server's step count when it was sent). */
  step: number
}

export type KardamReason =
  /** Passed both filters. */
  | 'accepted'
  /** Nothing accepted yet at another model: no coefficient can be computed, so it is taken. */
  | 'no-reference'
  /** At most f workers have a recent coefficient: no robust quantile exists yet, so it is taken. */
  | 'warmup'
  /** Its coefficient is among the f largest recent ones. */
  | 'lipschitz'
  /** Its worker already supplied its share of the last accepted gradients. */
  | 'frequency'
  /** Claims a model version newer than the server's. */
  | 'future-step'
  /** Gradient length differs from the model's. */
  | 'dimension'
  /** Gradient holds NaN or ±Infinity. */
  | 'non-finite'

export interface KardamDecision {
  accepted: boolean
  reason: KardamReason
  /** Empirical Lipschitz coefficient, when a reference existed. */
  coefficient: number | undefined
  /** The quantile it was compared with, when the Lipschitz filter ran. */
  threshold: number | undefined
  /** τ = current step − submission step. */
  staleness: number
  /** Λ(τ) when accepted, 0 otherwise: the factor to apply to the gradient. */
  weight: number
}

interface Resolved {
  n: number
  f: number
  dampening: KardamDampening
  frequencyWindow: number
  maxPerWorker: number
  coefficientWindow: number
}

/** The one place Kardam's defaults live. */
function resolveInit(init: KardamInit): Resolved {
  const { n, f } = init
  if (!Number.isInteger(n) || n < 1) throw new InvalidOptionError('kardam', 'n', n, 'an integer ≥ 1')
  if (!Number.isInteger(f) || f < 0) throw new InvalidOptionError('kardam', 'f', f, 'an integer ≥ 0')
  // The paper's resilience bound: with f < n/3 the n−f honest workers outnumber the f
  // Byzantine ones at least 2:1, which the frequency filter's "≥ f honest in any 2f" needs.
  if (n < 3 * f + 1) throw new BoundError('kardam', n, f, 'n ≥ 3f+1')
  const resolved: Resolved = {
    n,
    f,
    // The paper's default: it needs no tuning and reduces to plain SGD at τ = 0.
    dampening: init.dampening ?? { kind: 'inverse' },
    // 2f: the shortest window in which "each worker at most once" still guarantees f honest.
    frequencyWindow: init.frequencyWindow ?? 2 * f,
    maxPerWorker: init.maxPerWorker ?? 1,
    // Every active worker submits about once per n submissions; 2n keeps each honest worker's
    // latest coefficient in the sample while dropping those of workers that went silent.
    coefficientWindow: init.coefficientWindow ?? 2 * n,
  }
  const { dampening } = resolved
  if (dampening.kind === 'exponential' && !(Number.isFinite(dampening.alpha) && dampening.alpha > 0)) {
    throw new InvalidOptionError('kardam', 'dampening.alpha', dampening.alpha, 'a finite number > 0')
  }
  if (!['inverse', 'exponential', 'none'].includes(dampening.kind)) {
    throw new InvalidOptionError(
      'kardam',
      'dampening.kind',
      dampening.kind,
      "'inverse', 'exponential' or 'none'",
    )
  }
  const counts = [
    ['frequencyWindow', resolved.frequencyWindow, 0],
    ['maxPerWorker', resolved.maxPerWorker, 1],
    ['coefficientWindow', resolved.coefficientWindow, 1],
  ] as const
  for (const [option, value, min] of counts) {
    if (!Number.isInteger(value) || value < min) {
      throw new InvalidOptionError('kardam', option, value, `an integer ≥ ${min}`)
    }
  }
  return resolved
}

/** Λ(τ) for a staleness τ ≥ 0. */
export function kardamDampening(dampening: KardamDampening, staleness: number): number {
  switch (dampening.kind) {
    case 'inverse':
      return 1 / (staleness + 1)
    case 'exponential':
      return Math.exp(-dampening.alpha * staleness)
    case 'none':
      return 1
  }
}

interface Reference {
  step: number
  gradient: Float32Array
  model: Float32Array
}

export class KardamFilter {
  readonly n: number
  readonly f: number
  readonly dampening: KardamDampening
  readonly frequencyWindow: number
  readonly maxPerWorker: number
  readonly coefficientWindow: number

  private dimension: number | undefined
  /** Latest accepted gradients at up to two distinct steps, newest first: one always differs from a candidate's step. */
  private references: Reference[] = []
  /** Per worker: its latest coefficient and the submission count when it was computed. */
  private readonly coefficients = new Map<number, { value: number; at: number }>()
  /** Workers of the last frequencyWindow−1 accepted gradients, oldest first. */
  private readonly recentAccepted: number[] = []
  private submissions = 0

  constructor(init: KardamInit) {
    const resolved = resolveInit(init)
    this.n = resolved.n
    this.f = resolved.f
    this.dampening = resolved.dampening
    this.frequencyWindow = resolved.frequencyWindow
    this.maxPerWorker = resolved.maxPerWorker
    this.coefficientWindow = resolved.coefficientWindow
  }

  /**
   * Judges one gradient arriving while the server is at `currentStep`. Accepted gradients
   * become the reference of later coefficients; the caller applies `weight`·gradient.
   */
  consider(submission: KardamSubmission, currentStep: number): KardamDecision {
    const { worker, gradient, model, step } = submission
    if (!Number.isInteger(worker) || worker < 0 || worker >= this.n)
      throw new UnknownWorkerError(worker, this.n)
    if (!Number.isInteger(currentStep)) {
      throw new InvalidOptionError('kardam', 'currentStep', currentStep, 'an integer')
    }
    if (!Number.isInteger(step)) throw new InvalidOptionError('kardam', 'step', step, 'an integer')
    this.dimension ??= model.length
    if (model.length !== this.dimension) {
      throw new DimensionMismatchError({
        source: 'kardam',
        index: worker,
        expected: this.dimension,
        actual: model.length,
      })
    }

    const staleness = currentStep - step
    const reject = (reason: KardamReason, coefficient?: number, threshold?: number): KardamDecision => ({
      accepted: false,
      reason,
      coefficient,
      threshold,
      staleness,
      weight: 0,
    })
    if (staleness < 0) return reject('future-step')
    if (gradient.length !== this.dimension) return reject('dimension')
    for (let j = 0; j < gradient.length; j++) {
      const v = gradient[j]!
      if (v - v !== 0) return reject('non-finite')
    }

    this.submissions++
    // The newest accepted gradient computed at another model. A zero model distance (an
    // update that changed nothing) leaves the coefficient undefined, so such a reference is
    // skipped; with none left the gradient is judged as if it were the first.
    let coefficient: number | undefined
    for (const reference of this.references) {
      if (reference.step === step) continue
      const modelDistance = l2Distance(model, reference.model)
      if (modelDistance === 0) continue
      coefficient = l2Distance(gradient, reference.gradient) / modelDistance
      break
    }
    if (coefficient === undefined)
      return this.accept(submission, 'no-reference', undefined, undefined, staleness)
    this.coefficients.set(worker, { value: coefficient, at: this.submissions })

    const recent: number[] = []
    for (const [id, entry] of this.coefficients) {
      if (this.submissions - entry.at < this.coefficientWindow) recent.push(entry.value)
      else this.coefficients.delete(id)
    }
    if (recent.length <= this.f) return this.accept(submission, 'warmup', coefficient, undefined, staleness)
    recent.sort((a, b) => a - b)
    // The (m−f)-th smallest of m coefficients (at most f of them Byzantine) lies between the
    // honest ones' (m−2f)-th smallest and their largest; with m = n it is the (n−f)/n quantile.
    const threshold = recent[recent.length - this.f - 1]!
    if (coefficient > threshold) return reject('lipschitz', coefficient, threshold)
    return this.accept(submission, 'accepted', coefficient, threshold, staleness)
  }

  private frequencyExceeded(worker: number): boolean {
    let count = 0
    for (const id of this.recentAccepted) if (id === worker) count++
    return count >= this.maxPerWorker
  }

  private accept(
    submission: KardamSubmission,
    reason: KardamReason,
    coefficient: number | undefined,
    threshold: number | undefined,
    staleness: number,
  ): KardamDecision {
    // The frequency filter binds the gradients taken without a coefficient too, or a
    // Byzantine worker could fill the start of a run.
    if (this.frequencyExceeded(submission.worker)) {
      return { accepted: false, reason: 'frequency', coefficient, threshold, staleness, weight: 0 }
    }
    if (this.frequencyWindow > 1) {
      this.recentAccepted.push(submission.worker)
      if (this.recentAccepted.length > this.frequencyWindow - 1) this.recentAccepted.shift()
    }
    const copy: Reference = {
      step: submission.step,
      gradient: Float32Array.from(submission.gradient),
      // Both references may share the model of one step; copying keeps them safe from a
      // caller that updates its model buffer in place.
      model: Float32Array.from(submission.model),
    }
    this.references = [copy, ...this.references.filter((r) => r.step !== submission.step)].slice(0, 2)
    return {
      accepted: true,
      reason,
      coefficient,
      threshold,
      staleness,
      weight: kardamDampening(this.dampening, staleness),
    }
  }
}
