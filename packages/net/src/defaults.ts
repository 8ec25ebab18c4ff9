/**
 * Every default of the data plane, in one place, with the reason for each non-obvious one.
 */

import type { EncrypterName, PayloadPlaneName } from './encrypters.js'

const KiB = 1024
const MiB = 1024 * KiB

export const netDefaults = {
  /** Loopback and an OS-chosen port: tests and local clusters never collide on a port. */
  listen: ['/ip4/127.0.0.1/tcp/0'] as readonly string[],
  bootstrap: [] as readonly string[],
  /**
   * A failed bootstrap dial is tried again, the wait doubling from the first value to the second:
   * the pods of a cluster start in parallel, so a worker (or a server) often starts before the
   * servers it dials listen, and one refused dial would leave it without those peers for good.
   */
  bootstrapRetryMs: [500, 10_000] as readonly [number, number],
  /**
   * The connection encrypter this node prefers (`encrypters.ts`); the other is listed after it
   * as a fallback (`node/libp2p.ts`). TLS 1.3 frames and encrypts in OpenSSL, on big buffers,
   * where Noise decrypts and reassembles every ≤ 64 KiB frame in JavaScript: one 256 MiB stream
   * between two processes cost 5.5 ms of CPU per MiB (sender + receiver) with TLS against 7.0
   * with Noise, and the data plane delivered a 32 MiB vector for 19.8 against 23.7 ms/MiB at 1.5×
   * the goodput (BENCHMARKS.md, "Connection encrypters"; issue 15 measured 4.0 + 4.3 against
   * 6.0 + 7.6 on a quiet machine).
   * Noise stays the default until the chaos suite passes with tls: on 2026-12-01 one run with tls
   * preferred (main at the merge of wt-tls) failed worker-attack:non-finite (no non-finite gradient
   * reached a server) with rounds lost growing phase after phase, and one on the tls branch
   * before the catch-up pull had an honest server catch up every round for 2,800 rounds; neither
   * is traced yet.
   */
  encrypter: 'noise' as EncrypterName,
  /** mDNS floods the LAN with queries; only useful on a laptop cluster, so opt-in. */
  mdns: false,
  /**
   * Rounds accepted ahead of the current one: a worker that finished round r may publish r+1
   * while a slower server is still at r. Two absorbs one slow step without letting a Byzantine
   * node fill memory with far-future rounds.
   */
  roundWindowAhead: 2,
  /**
   * Largest payload accepted: d = 10⁷ float32 is 40 MiB, the top of the supported range, plus
   * headroom. Anything bigger is refused from the signed announcement, before a byte of it moves.
   */
  maxPayloadBytes: 64 * MiB,
  /**
   * Payloads up to this size ride inside the gossip message (d ≤ 16384): one round trip less,
   * and far below gossipsub's frame limit. Larger ones are announced and fetched over a direct
   * stream, because gossipsub moved ~30 MB/s here and a frame over its inbound limit silently
   * cuts the sender off.
   */
  inlineMaxBytes: 64 * KiB,
  /**
   * Gossipsub's inbound frame limit. Only announcements and inline payloads travel in frames,
   * so the 4 MiB default of gossipsub stays: a frame over it can only come from a peer that
   * ignores this protocol.
   */
  gossipMaxInboundDataLength: 4 * MiB,
  /**
   * Gossipsub mesh degree (its default is 6). Publishers flood their own messages to every
   * subscriber, so mesh forwarding only repairs what an origin failed to send; each forward is
   * a duplicate to everyone else. On a 16-node loopback cluster D = 3 cut the round time from
   * 0.48 s to 0.34 s (median of 58 rounds), D = 1 gained little more and repairs less.
   */
  gossipMeshDegree: 3,
  /**
   * The longest one announced payload is fetched for, over all the peers tried in turn (it bounds
   * how long gossipsub must keep the announcement cached, see `mcacheLength`). A 40 MiB payload at
   * the measured ~100 MB/s worst case takes ~0.4 s; 30 s covers a loaded host.
   */
  payloadFetchTimeoutMs: 30_000,
  /**
   * Each candidate peer's own share of a fetch: a relay that accepts the stream and never answers
   * costs this long, then the next candidate (the announcer) is asked. 5 s is 12× the largest
   * payload at the measured worst throughput and still lets the announcer's copy arrive within the
   * round; a peer that is only slow loses nothing for good, since the announcement stays pending
   * and every later offer of the same hash (a republish, a relay, a sync answer) is fetched again.
   */
  payloadPeerTimeoutMs: 5_000,
  /**
   * A sync request (a straggler pulling signed vectors from its peers) gives up after this long:
   * it is retried on the next stall check, so a slow peer costs one attempt, not the round.
   */
  syncTimeoutMs: 5_000,
  /**
   * How often a member heard announcing itself but not connected is redialled, and how often a
   * node with no connection at all dials its bootstrap list again: servers announce every round
   * and every 2 s while stalled, so 10 s bounds the dials without leaving a lost peer out long.
   */
  memberRedialMs: 10_000,
  /** Recent payloads kept to serve peers that pull from us: a few rounds of the largest vector. */
  payloadCacheBytes: 256 * MiB,
  /**
   * Yamux flow-control window. The default 256 KiB window caps a stream at window/RTT; a
   * 16 MiB window lets one stream fill the link for the largest payloads.
   */
  yamuxMaxStreamWindowBytes: 16 * MiB,
  /**
   * Where payload bytes travel: `tls`, a socket of Node's own TLS beside libp2p
   * (`tls-plane/channel.ts`), measured at 0.28× the CPU per MiB of the libp2p stream (1.58× the bare `node:tls` floor)
   * (docs/BENCHMARKS.md, "Payload plane"); `libp2p`, the `/phalanx/payload/2.0.0` stream. Either
   * way the libp2p stream is served, and fetched from peers that advertise no TLS port.
   */
  // tls since the chaos suite (27 scenarios, 2 runs), the metrics test (which checks the bytes of
  // servers and workers went over it) and the security suites passed with it the default.
  payloadPlane: 'tls' as PayloadPlaneName,
  /**
   * The TLS payload plane's listen address: undefined is the host of the first libp2p listen
   * address, any free port (tests and local clusters never collide on a port).
   */
  payloadListen: undefined as { host?: string; port?: number } | undefined,
  /**
   * A payload-plane TLS dial, handshake and binding, either side. Loopback takes ~2–5 ms and a
   * loaded host some hundreds; well under `payloadPeerTimeoutMs`, so a port that swallows the
   * dial (a firewall) still leaves the fetch time to fall back to the libp2p stream.
   */
  payloadHandshakeTimeoutMs: 2_000,
  /**
   * After a failed TLS dial a peer is fetched from over the libp2p stream for this long: a peer
   * of an older version, or behind a firewall that lets only the libp2p port through, costs one
   * failed dial per 30 s, not one per payload.
   */
  payloadRedialBackoffMs: 30_000,
  /**
   * Payload-plane sockets accepted but not yet bound to a member, all peers together: what
   * outsiders can hold open for at most `payloadHandshakeTimeoutMs` each. Four times the 16
   * receivers of a full round, so a round's members never wait on one another.
   */
  maxUnboundPayloadSockets: 64,
  /** Concurrent payload streams a node serves; a full round with 16 receivers needs 16. */
  maxPayloadStreams: 64,
  /**
   * Inbound payload and sync streams one peer may hold open at a time. The protocol needs one
   * payload stream per pair (requests go one after the other over it) and one sync stream per
   * pull; 4 leaves room for a stream replaced after a failed exchange and one that is closing.
   */
  maxStreamsPerPeer: 4,
  /**
   * A served stream on which nothing moves for this long is closed: no request arrives (a
   * payload stream waits between rounds, a sync stream for its one request), or the peer stops
   * reading what we write. Longer than any honest round gap on a loaded host, so an honest
   * payload stream is rarely reopened; a peer holding streams open costs at most this long each.
   */
  streamIdleTimeoutMs: 60_000,
  /**
   * Bytes served per second to one peer (payloads and sync answers), as a token bucket. Above the
   * ~100 MB/s one libp2p stream moved here, so an honest peer pulling each vector once is never
   * held back; a peer asking for the same bytes again and again gets at most this.
   */
  servedBytesPerSecond: 256 * MiB,
  /**
   * The bucket's depth: one largest payload (`maxPayloadBytes`) always passes at a full bucket, so
   * a burst of a round's vectors is served at once and only sustained demand is refused.
   */
  servedBurstBytes: 64 * MiB,
  /**
   * Peers with a byte bucket; like the score tallies, four times `maxConnections`, dropping full
   * (idle) buckets first, so connection churn cannot grow the map.
   */
  maxRateLimitedPeers: 1_200,
  /**
   * Application score per invalid message handed over (gossipsub graylists a peer below −80):
   * alone, nine invalid messages and the peer's gossip is ignored; with P4 below, six.
   */
  invalidMessagePenalty: -10,
  /** Half-life of the invalid-message count, so a peer that stops misbehaving recovers. */
  invalidMessageHalfLifeMs: 60_000,
  /**
   * Peers the application score keeps a tally for. Only peers that handed us something invalid
   * get one, and those are connected peers (at most `maxConnections` at a time); four times that
   * keeps the tallies of peers that reconnect under new connections without letting churn grow
   * the map.
   */
  maxScoredPeers: 1_200,
  /**
   * Gossipsub P4 on every Phalanx topic: the invalid messages a peer handed over cost it
   * weight × (their decayed count)². With the application score's 10 each, one stray message (a
   * membership change that reached the relay first) costs 11, six cost 36 + 60 and pass the
   * graylist threshold, and a flood ends far below it (quadratically: it cannot be diluted). The
   * counter is multiplied by the decay every second: 0.5^(1/60) halves it in a minute, like the
   * application score.
   */
  invalidDeliveryWeight: -1,
  invalidDeliveryDecay: 0.5 ** (1 / 60),
  /**
   * Gossipsub's score thresholds, its own defaults written out because the disconnect below is
   * measured against them: under −10 no gossip (IHAVE/IWANT) to or from the peer, under −50 no
   * publishing to it, under −80 (graylisted) every RPC from it is dropped unread.
   */
  gossipScoreThreshold: -10,
  publishScoreThreshold: -50,
  graylistScoreThreshold: -80,
  /**
   * Equivocation evidence pairs held until the control plane takes and publishes them (the newest
   * kept): each holds two hashes and signatures (the signed bytes only of an announcement, never
   * a payload), under 2 KiB, so at most ~0.5 MiB when no control plane takes them.
   */
  maxEvidence: 256,
  /**
   * Evidence pairs held per sender: one equivocator proving itself every round needs its newest
   * few on record, not the whole budget, which must keep room for every other equivocator.
   */
  maxEvidencePerSender: 4,
  /**
   * The cluster's incarnation, carried in every signed vector and announcement: messages of
   * another epoch are refused (`wrong_epoch`). The operator bumps it when the whole cluster
   * restarts, so last run's signed messages for the rounds run again cannot be replayed to frame
   * honest servers as equivocators.
   */
  epoch: 0,
  /**
   * Gossipsub's default inbound connection threshold counts all peers of one IP together;
   * a local cluster or a pod network NAT puts dozens of peers behind one address.
   */
  maxConnections: 300,
  inboundConnectionThreshold: 100,
  /**
   * Shortest time libp2p's connection monitor waits for a ping answer before it aborts the
   * connection (its default is 5 s). A node busy with a batch on a loaded host answers late, not
   * never. The chaos suite saw a server on a 2-core machine at load ~18 lose every connection at
   * once, most likely to 5 s ping timeouts.
   */
  pingTimeoutMinMs: 30_000,
  /**
   * No Byzantine-only publishing (`NetNode.adversary`): an honest node then has no call that signs
   * two versions of one round or announces a payload it never published. Byzantine roles, and
   * nodes that chaos may corrupt at run time, turn it on.
   */
  adversary: false,
} as const

export type NetDefaults = typeof netDefaults
