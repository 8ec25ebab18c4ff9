/**
 * The TLS payload plane's self-signed certificate: whatever the random serial, OpenSSL parses it
 * (a DER INTEGER must be minimal: a serial of 0x00 then a byte under 0x80 was "illegal padding",
 * one certificate in 256), and the serial is positive.
 */
import { X509Certificate } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { selfSignedCertificate, serialNumber } from '../src/tls-plane/cert.js'

describe('the payload plane certificate', () => {
  it('serials are positive and minimal DER integers, whatever the random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (random) => {
        const serial = serialNumber(random)
        expect(serial).toHaveLength(16)
        // Positive: the top bit clear. Minimal: no 0x00 before a byte that would read positive anyway.
        expect(serial[0]! & 0x80).toBe(0)
        expect(serial[0]).not.toBe(0)
      }),
    )
  })

  it.each([
    ['all zero', new Uint8Array(16)],
    ['0x00 then a low byte', Uint8Array.of(0x00, 0x01, ...new Uint8Array(14))],
    ['0x80 then zeros', Uint8Array.of(0x80, ...new Uint8Array(15))],
    ['all ones', new Uint8Array(16).fill(0xff)],
  ])('the serial from %s keeps its other bytes', (_, random) => {
    const serial = serialNumber(random)
    expect([...serial.subarray(1)]).toEqual([...random.subarray(1)])
  })

  it('OpenSSL parses every certificate made (300 of them), valid now', () => {
    const now = new Date()
    for (let i = 0; i < 300; i++) {
      const parsed = new X509Certificate(selfSignedCertificate(now).cert)
      expect(parsed.subject).toBe('CN=phalanx-payload')
      expect(new Date(parsed.validFrom).getTime()).toBeLessThan(now.getTime())
      expect(new Date(parsed.validTo).getTime()).toBeGreaterThan(now.getTime())
    }
  })
})
