/**
 * What the round protocol needs from a data plane, and nothing more. `@phalanx/net` provides
 * the real one (libp2p gossip + direct streams, validated before delivery); the protocol
 * code is written against this interface so that it can be read, and unit-tested, without
 * a network.
 */
import { PhalanxError, type PhalanxErrorOptions } from '@phalanx/errors'

/** A validated vector of one round from one member (already checked for dimension,
 * finiteness, membership, round window, duplicates and equivocation). */
export interface RoundVector {
  sender: string
  round: number
  vector: Float32Array
}

export type VectorKind = 'model' | 'gradient'

export interface CollectOptions {
  /** How many distinct senders to wait for. */
  quorum: number
  /** Give up after this long with a `QuorumTimeoutError` (code `quorum_timeout`) naming who did send. */
  timeoutMs: number
  signal?: AbortSignal
}

export interface RoundTransport {
  /** This node's member id (its peer id in the real data plane). */
  readonly selfId: string
  /** Publishes this node's vector of `kind` for `round` to every member that should get it. */
  publish(kind: VectorKind, round: number, vector: Float32Array): Promise<void>
  /**
   * Publishes different vectors to different receivers (Byzantine equivocation only): `pick`
   * chooses the vector for each receiver id.
   */
  publishPerReceiver?(
    kind: VectorKind,
    round: number,
    pick: (receiver: string, index: number) => Float32Array,
  ): Promise<void>
  /** Announces this node's vector of `kind` for `round` again (for peers that missed it). */
  republish?(kind: VectorKind, round: number): Promise<void>
  /**
   * Asks peers for the vectors of `kind` they hold from `round` on and delivers those this node
   * lacks (signed by their origins, validated as gossip): for a stalled node whose missing vector's
   * signer is gone. Resolves once the answers are in; a failure only means nothing new arrived.
   */
  pull?(kind: VectorKind, round: number): Promise<void>
  /**
   * Tells peers where this node is (servers: a signed membership announcement with its round). A
   * stalled server repeats it: a restarted server more than the window behind learns only from
   * such announcements (F+1 of them) where the cluster waits, and a stalled cluster completes no
   * round that would announce it otherwise.
   */
  announce?(): Promise<void>
  /** The first `quorum` valid vectors of `kind` for `round` from distinct senders. */
  collect(kind: VectorKind, round: number, options: CollectOptions): Promise<RoundVector[]>
  /**
   * The newest round for which `quorum` distinct senders' vectors of `kind` have arrived,
   * with those vectors: how a late or restarted node catches up without a log.
   */
  newest(kind: VectorKind, options: CollectOptions): Promise<{ round: number; vectors: RoundVector[] }>
  /**
   * The newest round after `round` for which `quorum` distinct senders' vectors of `kind` have
   * arrived, with those vectors, if any (a node left behind catches up from it).
   */
  ahead?(
    kind: VectorKind,
    round: number,
    quorum: number,
  ): { round: number; vectors: RoundVector[] } | undefined
  /** Tells the validation window that this node is now at `round` (accepts [round−1, round+W]). */
  setRound(round: number): void
  /** Messages rejected so far, by reason. */
  rejected(): Record<string, number>
}

// A type, not an interface: the error base takes details with an index signature, which only an
// object type satisfies.
/** What a `QuorumTimeoutError` says of the wait that ran out (its JSON details). */
export type QuorumTimeoutDetails = {
  kind: VectorKind
  round?: number
  quorum: number
  senders: readonly string[]
  perRound?: Record<string, number>
  timeoutMs: number
}

/**
 * A quorum did not arrive within `timeoutMs`: the one error every `RoundTransport` rejects a wait
 * with when time runs out (an adapter translates its data plane's own), so that the protocol
 * matches it by its code whatever carries the vectors. `round` is absent for `newest`, which
 * waits for any round; `senders` are those of `round` that did arrive (for `newest`, of every
 * round it saw, with how many per round in `perRound`).
 */
export class QuorumTimeoutError extends PhalanxError<'quorum_timeout', QuorumTimeoutDetails> {
  override readonly name = 'QuorumTimeoutError'
  declare readonly kind: VectorKind
  declare readonly round: number | undefined
  declare readonly quorum: number
  declare readonly senders: readonly string[]
  declare readonly perRound: Record<string, number> | undefined
  declare readonly timeoutMs: number

  constructor(details: QuorumTimeoutDetails, options: Pick<PhalanxErrorOptions, 'cause'> = {}) {
    const what =
      details.round === undefined
        ? `no round with ${details.quorum} ${details.kind}s yet (senders per round: ${JSON.stringify(details.perRound ?? {})})`
        : `quorum of ${details.quorum} ${details.kind}s for round ${details.round} not reached: ${details.senders.length} from [${details.senders.join(', ')}]`
    super('quorum_timeout', details, { message: `${what} within ${details.timeoutMs} ms`, ...options })
  }
}
