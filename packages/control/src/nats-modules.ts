/**
 * The NATS client packages, imported at their first use instead of with this package. A node
 * without `natsUrl` (every node of a plain `phalanx local` run) and the commands that never dial
 * (`phalanx --help`, `keygen`, `simulate`) import this package for its schemas, operator keys,
 * member set and ops endpoints, and should not load a NATS client they never use. Every caller
 * here already waits for a connection, so waiting for the import as well costs nothing.
 *
 * The packages are CommonJS: unbundled, a dynamic import loads them from node_modules at that
 * point; in the CLI bundle it becomes a deferred `require` of the bundled copy, whose code is in
 * the file but never runs without NATS (test/node-lazy-load.test.ts checks both).
 */
import { createRequire } from 'node:module'
import type * as JetStream from '@nats-io/jetstream'
import type * as Kv from '@nats-io/kv'
import type * as Nkeys from '@nats-io/nkeys'
import type * as Obj from '@nats-io/obj'
import type * as Core from '@nats-io/transport-node'

export type NatsCore = typeof Core

export const natsCore = (): Promise<NatsCore> => import('@nats-io/transport-node')
export const natsJetStream = (): Promise<typeof JetStream> => import('@nats-io/jetstream')
export const natsKv = (): Promise<typeof Kv> => import('@nats-io/kv')
export const natsObj = (): Promise<typeof Obj> => import('@nats-io/obj')

/**
 * nkeys, synchronously: the creds and nkey seed files are checked when a connection is created,
 * so that a bad one fails at start-up naming its option (nats-auth.ts). Loaded only when such a
 * file is configured; a small package of pure functions, so a copy outside the bundle is harmless.
 */
export function nkeys(): typeof Nkeys {
  return createRequire(import.meta.url)('@nats-io/nkeys') as typeof Nkeys
}
