/**
 * The membership topic's checks and what announcements may move: "I am here, at this round" is
 * accepted from members only, in the role the member set gives them, and a lagging node moves its
 * round window only to a round a quorum of member servers has signed.
 */
import { decodeMemberAnnouncement, type MemberHello } from './codec.js'
import type { MemberRole, Membership, RejectReason } from './types.js'

export interface AnnouncementContext {
  cluster: string
  epoch: number
  membership: Membership
}

export type AnnouncementVerdict =
  | { ok: true; hello: MemberHello; role: MemberRole }
  | { ok: false; reason: RejectReason; detail: string; hello: MemberHello | undefined }

function refuse(reason: RejectReason, detail: string, hello?: MemberHello): AnnouncementVerdict {
  return { ok: false, reason, detail, hello }
}

/**
 * Checks one membership announcement signed by `from` (gossipsub StrictSign verified the
 * signature). The role is the member set's; an announcement claiming another one is refused, so
 * a member worker cannot count as a server and an outsider cannot count at all.
 */
export function checkAnnouncement(
  data: Uint8Array,
  from: string | undefined,
  ctx: AnnouncementContext,
): AnnouncementVerdict {
  const hello = decodeMemberAnnouncement(data)
  if (hello === undefined) return refuse('malformed', 'not a MemberAnnouncement')
  if (hello.cluster !== ctx.cluster) return refuse('wrong_cluster', `cluster ${hello.cluster}`, hello)
  if (hello.epoch !== ctx.epoch) return refuse('wrong_epoch', `epoch ${hello.epoch} ≠ ${ctx.epoch}`, hello)
  if (from === undefined) return refuse('forged_sender', 'unsigned announcement', hello)
  const role = ctx.membership.roleOf(from)
  if (role === undefined) return refuse('unknown_sender', `${from} is not a member`, hello)
  if (hello.sender !== from)
    return refuse('forged_sender', `claims ${hello.sender}, signed by ${from}`, hello)
  if (hello.role !== role) return refuse('wrong_role', `${role} claims ${hello.role ?? 'no role'}`, hello)
  return { ok: true, hello, role }
}

/**
 * The newest round each member server has signed (in an announcement, or a model the window
 * refused as early), for a node left behind the cluster: it may move its window to
 * `quorumRound(N − F)`, the highest round at least N − F distinct member servers have reached.
 * Of those, at most F are Byzantine, so at least N − 2F ≥ F + 1 honest servers are there: no
 * coalition of F servers, and no outsider (never a member), can push an honest node's window past
 * the honest servers and make it refuse their real messages as stale. Entries are member servers
 * only (checked on every write, evicted ones dropped on every read), so the map stays under N.
 */
export class ServerRounds {
  readonly #rounds = new Map<string, number>()

  constructor(readonly membership: Membership) {}

  observe(peer: string, round: number): void {
    if (this.membership.roleOf(peer) !== 'server') return
    const known = this.#rounds.get(peer)
    if (known === undefined || round > known) this.#rounds.set(peer, round)
  }

  /** The highest round `quorum` distinct member servers have reached, or undefined. */
  quorumRound(quorum: number): number | undefined {
    if (!Number.isInteger(quorum) || quorum < 1) return undefined
    const rounds: number[] = []
    for (const [peer, round] of this.#rounds) {
      if (this.membership.roleOf(peer) === 'server') rounds.push(round)
      else this.#rounds.delete(peer)
    }
    if (rounds.length < quorum) return undefined
    rounds.sort((a, b) => b - a)
    return rounds[quorum - 1]
  }

  /** Servers with a known round (for the bound's test). */
  get size(): number {
    return this.#rounds.size
  }
}
