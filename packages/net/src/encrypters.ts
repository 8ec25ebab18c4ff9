/**
 * The connection encrypters a node can prefer, by name, with one line each: the config schema's
 * enum and `--help` read them here. `node/libp2p.ts` maps each name to its libp2p module.
 */
export const encrypterDescriptions = {
  tls: 'TLS 1.3 framed and encrypted in OpenSSL (@libp2p/tls)',
  noise:
    'Noise XX, ChaCha20-Poly1305 frames of at most 64 KiB framed in JavaScript (@chainsafe/libp2p-noise)',
} as const

export type EncrypterName = keyof typeof encrypterDescriptions

/** The encrypters' names (the default is netDefaults.encrypter). */
export const encrypterNames = Object.keys(encrypterDescriptions) as [EncrypterName, ...EncrypterName[]]

/** Where payload bytes travel (`payloadPlane`), with the one line each that config help and docs show. */
export const payloadPlaneDescriptions = {
  tls: 'a node:tls socket beside libp2p on payloadPort (TLS 1.3, peers bound by their libp2p keys)',
  libp2p: 'the libp2p payload stream (/phalanx/payload/2.0.0), over the connection encrypter',
} as const

export type PayloadPlaneName = keyof typeof payloadPlaneDescriptions

export const payloadPlaneNames = Object.keys(payloadPlaneDescriptions) as [
  PayloadPlaneName,
  ...PayloadPlaneName[],
]
