import type { Logger } from 'pino'
import type { DeliveredVector, EquivocationEvidence, MemberRole, RejectedMessage } from '../types.js'

export interface NetEvents {
  vector: DeliveredVector
  equivocation: EquivocationEvidence
  rejected: RejectedMessage
  member: { peerId: string; role: MemberRole | undefined; multiaddrs: string[]; round: number }
  /**
   * The connection gater refused a peer outside a closed member set, or a non-member graylisted
   * for the invalid messages it handed us (`disconnected`: its open connection was closed).
   */
  refused: { peerId: string; direction: 'inbound' | 'outbound' | 'disconnected' }
}

type Listeners = { [E in keyof NetEvents]: Set<(detail: NetEvents[E]) => void> }

/** The node's event listeners: every part of the node emits here, the application listens. */
export class NetEventBus {
  readonly #log: Logger
  readonly #listeners: Listeners = {
    vector: new Set(),
    equivocation: new Set(),
    rejected: new Set(),
    member: new Set(),
    refused: new Set(),
  }

  constructor(log: Logger) {
    this.#log = log
  }

  on<E extends keyof NetEvents>(event: E, listener: (detail: NetEvents[E]) => void): () => void {
    const set = this.#listeners[event] as Set<(detail: NetEvents[E]) => void>
    set.add(listener)
    return () => set.delete(listener)
  }

  emit<E extends keyof NetEvents>(event: E, detail: NetEvents[E]): void {
    for (const listener of this.#listeners[event] as Set<(detail: NetEvents[E]) => void>) {
      try {
        listener(detail)
      } catch (error) {
        this.#log.error({ event, err: error }, 'event listener threw')
      }
    }
  }
}
