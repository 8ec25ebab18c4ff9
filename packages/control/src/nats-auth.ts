/**
 * How a control connection proves who it is to NATS and checks who NATS is: a creds file (user
 * JWT + nkey seed, operator mode), an nkey seed file, or a user and password; and TLS with a CA
 * and, for servers that verify clients, a client certificate and key. Every file is read once
 * when the connection is created, so a missing or unreadable one fails at start-up naming its
 * option instead of as an endless background reconnect loop. Credentials are read again at each
 * (re)connect, so a rotated Secret is picked up without a restart; a file that has become
 * unreadable since falls back to what was read at start.
 */
import { readFileSync } from 'node:fs'
import type { Authenticator, TlsOptions } from '@nats-io/transport-node'
import { NatsCredentialsError } from './errors.js'
import { type NatsCore, nkeys } from './nats-modules.js'

export interface NatsTlsFiles {
  /** CA certificate(s), PEM: the NATS server's certificate must chain to one of them. */
  caFile?: string
  /** Client certificate, PEM (for a server with `verify: true`); needs `keyFile`. */
  certFile?: string
  /** The client certificate's private key, PEM. */
  keyFile?: string
}

export interface NatsAuthFiles {
  /** `.creds` file: a user JWT and its nkey seed (NATS operator/JWT mode). */
  credsFile?: string
  /** A file holding one user nkey seed (`SU…`), for servers configured with nkey users. */
  nkeySeedFile?: string
  tls?: NatsTlsFiles
}

/**
 * What `connect()` takes, built from the files. The authenticator is made from the NATS client
 * when it dials (the client is imported only then, nats-modules.ts); the files are checked before.
 */
export interface NatsAuthOptions {
  authenticator?: (core: NatsCore) => Authenticator
  tls?: TlsOptions
}

/** The two armoured blocks of a creds file, as the NATS client parses them. */
const CREDS_BLOCK = /\s*(?:(?:[-]{3,}[^\n]*[-]{3,}\n)(.+)(?:\n\s*[-]{3,}[^\n]*[-]{3,}\n))/gi

function readOrFail(option: string, path: string): Uint8Array {
  try {
    return readFileSync(path)
  } catch (cause) {
    throw new NatsCredentialsError(
      `${option}: cannot read ${path}: ${(cause as Error).message}`,
      { code: 'unreadable', option, path },
      { cause },
    )
  }
}

function invalid(option: string, path: string, reason: string): NatsCredentialsError {
  return new NatsCredentialsError(`${option}: ${path} ${reason}`, { code: 'invalid', option, path })
}

/** Whether `text` is a user nkey seed (checksum included); never includes the seed in an error. */
function isUserSeed(text: string): boolean {
  try {
    return nkeys().fromSeed(new TextEncoder().encode(text)).getPublicKey().startsWith('U')
  } catch {
    return false
  }
}

function checkCreds(option: string, path: string, bytes: Uint8Array): void {
  const text = new TextDecoder().decode(bytes)
  const blocks = [...text.matchAll(CREDS_BLOCK)].map((match) => match[1]!.trim())
  if (blocks.length < 2)
    throw invalid(option, path, 'is not a creds file (a user JWT and an nkey seed block)')
  if (blocks[0]!.split('.').length !== 3) throw invalid(option, path, 'has no JWT in its first block')
  if (!isUserSeed(blocks[1]!)) throw invalid(option, path, 'has no user nkey seed in its second block')
}

/** Reads the file again at each (re)connect; keeps the start-up bytes if it has become unreadable. */
function rereading(path: string, initial: Uint8Array): () => Uint8Array {
  return () => {
    try {
      return readFileSync(path)
    } catch {
      return initial
    }
  }
}

/**
 * Reads and checks every file; throws `NatsCredentialsError` (code `unreadable`, `invalid` or
 * `conflict`, with the option and path) before anything dials. `optionNames` maps each option to
 * the name its caller knows it by (a config field, a CLI flag), so the error names that instead.
 */
export function loadNatsAuth(
  files: NatsAuthFiles & { hasPassword?: boolean },
  optionNames: Partial<Record<'credsFile' | 'nkeySeedFile' | 'caFile' | 'certFile' | 'keyFile', string>> = {},
): NatsAuthOptions {
  const name = (option: keyof typeof optionNames): string => optionNames[option] ?? option
  const result: NatsAuthOptions = {}
  const identities = [
    files.credsFile === undefined ? undefined : name('credsFile'),
    files.nkeySeedFile === undefined ? undefined : name('nkeySeedFile'),
    files.hasPassword === true ? 'user/password' : undefined,
  ].filter((option): option is string => option !== undefined)
  if (identities.length > 1) {
    throw new NatsCredentialsError(`NATS credentials: give one of ${identities.join(', ')}, not several`, {
      code: 'conflict',
      option: identities.join(','),
      path: '',
    })
  }
  if (files.credsFile !== undefined) {
    const option = name('credsFile')
    const bytes = readOrFail(option, files.credsFile)
    checkCreds(option, files.credsFile, bytes)
    const reread = rereading(files.credsFile, bytes)
    result.authenticator = (core) => core.credsAuthenticator(reread)
  }
  if (files.nkeySeedFile !== undefined) {
    const option = name('nkeySeedFile')
    const bytes = readOrFail(option, files.nkeySeedFile)
    const seed = new TextDecoder().decode(bytes).trim()
    if (!isUserSeed(seed)) throw invalid(option, files.nkeySeedFile, 'does not hold a user nkey seed (SU…)')
    const initial = new TextEncoder().encode(seed)
    const reread = rereading(files.nkeySeedFile, bytes)
    result.authenticator = (core) =>
      core.nkeyAuthenticator(() => {
        const current = new TextDecoder().decode(reread()).trim()
        return isUserSeed(current) ? new TextEncoder().encode(current) : initial
      })
  }
  const tls = files.tls
  if (tls !== undefined && Object.values(tls).some((value) => value !== undefined)) {
    if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
      const missing = tls.certFile === undefined ? name('certFile') : name('keyFile')
      throw new NatsCredentialsError(
        `${missing} is required with ${name(tls.certFile === undefined ? 'keyFile' : 'certFile')}`,
        {
          code: 'conflict',
          option: missing,
          path: '',
        },
      )
    }
    const options: TlsOptions = {}
    // Read here so a bad path fails now; the client reads the same paths at each connect.
    for (const [option, path] of [
      ['caFile', tls.caFile],
      ['certFile', tls.certFile],
      ['keyFile', tls.keyFile],
    ] as const) {
      if (path === undefined) continue
      const text = new TextDecoder().decode(readOrFail(name(option), path))
      if (!text.includes('-----BEGIN ')) throw invalid(name(option), path, 'is not PEM')
      options[option] = path
    }
    result.tls = options
  }
  return result
}
