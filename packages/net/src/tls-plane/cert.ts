/**
 * The payload plane's TLS certificate: self-signed, ECDSA P-256, made once per process. It
 * authenticates nothing by itself (no one checks it; peers are authenticated by the channel
 * binding of `binding.ts`), so it is the smallest certificate TLS 1.3 accepts, encoded here in a
 * few lines of DER rather than pulling an X.509 library in for one self-signature.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'

export interface SelfSignedCertificate {
  /** PEM, as `tls.createServer` takes them. */
  cert: string
  key: string
}

/** DER: one tag-length-value. */
function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content)
  const n = body.length
  const length = n < 0x80 ? Buffer.of(n) : n < 0x100 ? Buffer.of(0x81, n) : Buffer.of(0x82, n >> 8, n & 0xff)
  return Buffer.concat([Buffer.of(tag), length, body])
}

const sequence = (...content: Uint8Array[]) => tlv(0x30, ...content)

/** ecdsa-with-SHA256 (1.2.840.10045.4.3.2), parameters absent. */
const ecdsaWithSha256 = sequence(Buffer.from('06082a8648ce3d040302', 'hex'))

/** CN = phalanx-payload. */
const name = sequence(
  tlv(0x31, sequence(Buffer.from('0603550403', 'hex'), tlv(0x0c, Buffer.from('phalanx-payload')))),
)

/** YYMMDDHHMMSSZ, as UTCTime wants it (valid to 2049). */
function utcTime(date: Date): Buffer {
  const text = date.toISOString().replace(/[-:T]/g, '').slice(2, 14)
  return tlv(0x17, Buffer.from(`${text}Z`))
}

const pem = (label: string, der: Buffer) =>
  `-----BEGIN ${label}-----\n${der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trim()}\n-----END ${label}-----\n`

/**
 * A certificate serial from random bytes, as DER's INTEGER content: positive (top bit clear) and
 * minimal (the first byte never 0x00). Clearing the top bit alone left a leading 0x00 before a
 * byte under 0x80 once in 256 certificates, which OpenSSL refuses ("illegal padding"): with the
 * TLS plane the default, one node start in 256 failed.
 */
export function serialNumber(random: Uint8Array): Buffer {
  const serial = Buffer.from(random)
  serial[0] = (serial[0]! & 0x7f) | 0x40
  return serial
}

/** A fresh key pair and a certificate over it, valid from a day ago for a year. */
export function selfSignedCertificate(now = new Date()): SelfSignedCertificate {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const serial = serialNumber(randomBytes(16))
  const day = 24 * 60 * 60 * 1000
  const tbs = sequence(
    tlv(0xa0, tlv(0x02, Buffer.of(2))),
    tlv(0x02, serial),
    ecdsaWithSha256,
    name,
    sequence(utcTime(new Date(now.getTime() - day)), utcTime(new Date(now.getTime() + 365 * day))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
  )
  const signature = sign('sha256', tbs, privateKey)
  const certificate = sequence(tbs, ecdsaWithSha256, tlv(0x03, Buffer.of(0), signature))
  return {
    cert: pem('CERTIFICATE', certificate),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  }
}
