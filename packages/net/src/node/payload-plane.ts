import type { PeerId, PrivateKey } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Logger } from 'pino'
import type { MutableNetCounters } from '../counters.js'
import { Libp2pPayloadChannel, type PayloadChannel } from '../payload-channel.js'
import {
  type PayloadAddress,
  payloadPortOf,
  payloadPortProtocol,
  TlsPayloadChannel,
} from '../tls-plane/channel.js'
import type { ResolvedNetNodeInit } from './init.js'
import type { NetLibp2p } from './libp2p.js'

export interface PayloadPlaneParts {
  libp2p: NetLibp2p
  init: ResolvedNetNodeInit
  privateKey: PrivateKey
  counters: MutableNetCounters
  log: Logger
}

/** A node's payload channels: the one it fetches with, and the ones it serves. */
export interface PayloadPlane {
  fetch: PayloadChannel
  serve: readonly PayloadChannel[]
  /** Once serving: advertises the TLS port over identify (nothing on the libp2p plane). */
  advertise(): Promise<void>
  /** Where the TLS plane listens, when on and serving. */
  address(): PayloadAddress | undefined
}

/**
 * The payload plane `init.payloadPlane` asks for. The libp2p stream is served either way (peers
 * of an older version, and peers whose TLS dial failed, fetch over it); with `tls` the node also
 * listens on its TLS port and fetches from every peer that advertises one.
 */
export function buildPayloadPlane(parts: PayloadPlaneParts): PayloadPlane {
  const { libp2p, init, privateKey, counters, log } = parts
  const stream = new Libp2pPayloadChannel(libp2p, {
    maxPayloadBytes: init.maxPayloadBytes,
    maxStreams: init.maxPayloadStreams,
  })
  if (init.payloadPlane === 'libp2p')
    return { fetch: stream, serve: [stream], advertise: async () => undefined, address: () => undefined }
  /** Payload ports peers advertised over identify, validated (`payloadPortOf`). */
  const ports = new Map<string, number>()
  const learn = (peer: PeerId, protocols: readonly string[]): void => {
    const port = payloadPortOf(protocols)
    if (port === undefined) ports.delete(peer.toString())
    else ports.set(peer.toString(), port)
  }
  libp2p.addEventListener('peer:identify', (event) => learn(event.detail.peerId, event.detail.protocols))
  libp2p.addEventListener('peer:update', (event) => learn(event.detail.peer.id, event.detail.peer.protocols))
  const tls = new TlsPayloadChannel({
    cluster: init.cluster,
    privateKey,
    membership: init.membership,
    log,
    listen: {
      host: init.payloadListen?.host ?? listenHost(init.listen),
      port: init.payloadListen?.port ?? 0,
    },
    addressOf: (peer) => {
      const port = ports.get(peer.toString())
      if (port === undefined) return undefined
      // The IP this node already reaches the peer at, never one the peer names: an advertised
      // port cannot point this node's dials at a third party.
      for (const connection of libp2p.getConnections(peer)) {
        const host = hostOf(connection.remoteAddr.toString())
        if (host !== undefined) return { host, port }
      }
      return undefined
    },
    fallback: stream,
    maxPayloadBytes: init.maxPayloadBytes,
    handshakeTimeoutMs: init.payloadHandshakeTimeoutMs,
    maxUnboundSockets: init.maxUnboundPayloadSockets,
    redialBackoffMs: init.payloadRedialBackoffMs,
    onWire: (sent, received) => {
      counters.wire_sent_bytes_total += sent
      counters.wire_received_bytes_total += received
    },
    onFallback: () => {
      counters.payload_plane_fallbacks_total++
    },
  })
  return {
    fetch: tls,
    serve: [stream, tls],
    advertise: async () => {
      const bound = tls.address()
      if (bound === undefined) return
      // Nobody opens it: the protocol id is the advertisement, identify carries it to every peer.
      await libp2p.handle(`${payloadPortProtocol}${bound.port}`, ({ stream: s }) =>
        s.abort(new Error('not a stream protocol')),
      )
    },
    address: () => tls.address(),
  }
}

/** The IP of the first libp2p listen address (`/ip4/…` or `/ip6/…`), else all interfaces. */
function listenHost(listen: readonly string[]): string {
  for (const address of listen) {
    const host = hostOf(address)
    if (host !== undefined) return host
  }
  return '0.0.0.0'
}

function hostOf(address: string): string | undefined {
  try {
    const [first] = multiaddr(address).stringTuples()
    if (first === undefined) return undefined
    const [code, value] = first
    // 4: ip4, 41: ip6.
    return (code === 4 || code === 41) && value !== undefined ? value : undefined
  } catch {
    return undefined
  }
}
