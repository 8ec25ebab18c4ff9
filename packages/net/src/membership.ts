import type { MemberRole, Membership } from './types.js'

export interface MembershipInit {
  members?: Iterable<readonly [string, MemberRole]>
  /** Default closed: a Byzantine-resilient cluster admits peers explicitly. */
  closed?: boolean
}

class MapMembership implements Membership {
  #members = new Map<string, MemberRole>()
  #closed: boolean
  readonly #listeners = new Set<() => void>()

  constructor(init: MembershipInit) {
    this.#closed = init.closed ?? true
    for (const [peer, role] of init.members ?? []) this.#members.set(peer, role)
  }

  get closed(): boolean {
    return this.#closed
  }

  roleOf(peerId: string): MemberRole | undefined {
    return this.#members.get(peerId)
  }

  has(peerId: string): boolean {
    return this.#members.has(peerId)
  }

  members(): ReadonlyMap<string, MemberRole> {
    return new Map(this.#members)
  }

  count(role?: MemberRole): number {
    if (role === undefined) return this.#members.size
    let n = 0
    for (const r of this.#members.values()) if (r === role) n++
    return n
  }

  replace(members: Iterable<readonly [string, MemberRole]>): void {
    this.#members = new Map(members)
    this.#changed()
  }

  add(peerId: string, role: MemberRole): void {
    this.#members.set(peerId, role)
    this.#changed()
  }

  remove(peerId: string): void {
    if (this.#members.delete(peerId)) this.#changed()
  }

  setClosed(closed: boolean): void {
    this.#closed = closed
    this.#changed()
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #changed(): void {
    for (const listener of this.#listeners) listener()
  }
}

/** An in-memory member set; `replace` it when the control plane publishes a new one. */
export function createMembership(init: MembershipInit = {}): Membership {
  return new MapMembership(init)
}
