/**
 * Throw-away NATS credentials for system tests: a CA with a server and a client certificate (made
 * with the machine's `openssl`), user nkeys, and an operator → account → user JWT chain with the
 * user's creds file (signed here with the nkeys library: NATS JWTs are ed25519-nkey signed JSON).
 */
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { nkeys } from '@nats-io/transport-node'

export interface TestPki {
  caFile: string
  serverCertFile: string
  serverKeyFile: string
  clientCertFile: string
  clientKeyFile: string
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all in `dir`. */
export function makeTestPki(dir: string): TestPki {
  const days = ['-days', '2']
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-subj',
      '/CN=phalanx-test-ca',
      ...days,
    ],
    dir,
  )
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    writeFileSync(join(dir, `${name}.ext`), `${ext}\n`)
    openssl(
      [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
        '-subj',
        `/CN=phalanx-test-${name}`,
      ],
      dir,
    )
    openssl(
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        `${name}.pem`,
        '-extfile',
        `${name}.ext`,
        ...days,
      ],
      dir,
    )
  }
  return {
    caFile: join(dir, 'ca.pem'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
  }
}

/** A user nkey: the public key for the server config, the seed for the client's seed file. */
export function makeUserNkey(): { publicKey: string; seed: string } {
  const user = nkeys.createUser()
  return { publicKey: user.getPublicKey(), seed: new TextDecoder().decode(user.getSeed()) }
}

const base64url = (value: string | Uint8Array) => Buffer.from(value).toString('base64url')

function signJwt(issuer: ReturnType<typeof nkeys.createOperator>, claims: Record<string, unknown>): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))
  const body = base64url(
    JSON.stringify({
      jti: base64url(Uint8Array.from({ length: 16 }, () => Math.floor(Math.random() * 256))),
      iat: Math.floor(Date.now() / 1000),
      iss: issuer.getPublicKey(),
      ...claims,
    }),
  )
  const signature = base64url(issuer.sign(new TextEncoder().encode(`${header}.${body}`)))
  return `${header}.${body}.${signature}`
}

export interface JwtChain {
  /** nats-server config lines for operator mode with this operator and account preloaded. */
  serverConfig: string
  /** Contents of the user's `.creds` file. */
  creds: string
}

/** An operator, one account and one user: the server config for it and the user's creds file. */
export function makeJwtChain(): JwtChain {
  const operator = nkeys.createOperator()
  const account = nkeys.createAccount()
  const user = nkeys.createUser()
  const operatorJwt = signJwt(operator, {
    sub: operator.getPublicKey(),
    name: 'phalanx-test-operator',
    nats: { type: 'operator', version: 2 },
  })
  const accountJwt = signJwt(operator, {
    sub: account.getPublicKey(),
    name: 'phalanx-test-account',
    nats: {
      type: 'account',
      version: 2,
      limits: {
        subs: -1,
        data: -1,
        payload: -1,
        imports: -1,
        exports: -1,
        wildcards: true,
        conn: -1,
        leaf: -1,
      },
    },
  })
  const userJwt = signJwt(account, {
    sub: user.getPublicKey(),
    name: 'phalanx-test-user',
    nats: { type: 'user', version: 2, pub: {}, sub: {}, subs: -1, data: -1, payload: -1 },
  })
  const serverConfig = [
    `operator: ${operatorJwt}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${account.getPublicKey()}: ${accountJwt}`,
    '}',
    '',
  ].join('\n')
  const creds = [
    '-----BEGIN NATS USER JWT-----',
    userJwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    new TextDecoder().decode(user.getSeed()),
    '------END USER NKEY SEED------',
    '',
  ].join('\n')
  return { serverConfig, creds }
}
