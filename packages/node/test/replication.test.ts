/**
 * The replication-mode registry: one mode per configurable name, each refusing the clusters it
 * cannot protect, and the mode-dependent wiring it owns (subscriptions, heartbeat, state).
 */
import { describe, expect, it } from 'vitest'
import { checkClusterBounds } from '../src/cluster-bounds.js'
import { resolveConfig } from '../src/config.js'
import { ClusterBoundError } from '../src/errors.js'
import type { ClusterShape } from '../src/replication/mode.js'
import { type ReplicationModeName, replicationModeNames } from '../src/replication/names.js'
import { replicationMode, replicationModeRegistry } from '../src/replication/registry.js'

describe('replication modes', () => {
  it('the registry holds exactly the configurable names, each mode under its own name', () => {
    expect(Object.keys(replicationModeRegistry)).toEqual(replicationModeNames)
    for (const name of replicationModeNames) {
      expect(replicationMode(name).name).toBe(name)
      expect(replicationMode(name).description.length).toBeGreaterThan(0)
    }
    expect(replicationModeNames[0]).toBe('median')
  })

  const shape = (N: number, F: number): ClusterShape => ({ N, F, n: 7, f: 1 })
  it.each<[ReplicationModeName, ClusterShape, string | undefined]>([
    ['median', shape(4, 1), undefined],
    ['median', shape(3, 1), 'N−F ≥ 2F+1'],
    ['median', shape(7, 2), undefined],
    ['median', shape(6, 2), 'N−F ≥ 2F+1'],
    ['no-anti-drift', shape(3, 1), undefined],
    ['vanilla', shape(1, 0), undefined],
    ['vanilla', shape(2, 0), 'N = 1, F = 0'],
    ['vanilla', shape(4, 1), 'N = 1, F = 0'],
    ['smr', shape(3, 1), undefined],
  ])('%s with %j: %s', (name, cluster, bound) => {
    const check = () => replicationMode(name).checkBounds(cluster)
    if (bound === undefined) expect(check).not.toThrow()
    else expect(check).toThrow(expect.objectContaining({ name: 'ClusterBoundError', bound }))
  })

  it('checkClusterBounds applies the configured mode', () => {
    const config = (replication: ReplicationModeName, servers: number, byzantineServers: number) =>
      resolveConfig({
        replication,
        servers,
        byzantineServers,
        smrNatsUrl: 'nats://127.0.0.1:4222',
        rule: 'median',
      })
    expect(() => checkClusterBounds(config('median', 3, 1))).toThrow(ClusterBoundError)
    expect(() => checkClusterBounds(config('no-anti-drift', 3, 1))).not.toThrow()
    expect(() => checkClusterBounds(config('vanilla', 2, 0))).toThrow(ClusterBoundError)
    expect(() => checkClusterBounds(config('vanilla', 1, 0))).not.toThrow()
  })

  it.each<[ReplicationModeName, 'server' | 'worker', boolean, readonly string[] | undefined]>([
    ['median', 'server', false, undefined],
    ['median', 'worker', false, undefined],
    // Colluding Byzantine workers read the honest gradients of the round.
    ['median', 'worker', true, ['model', 'gradient']],
    ['vanilla', 'worker', true, ['model', 'gradient']],
    // SMR replicas receive nothing over libp2p.
    ['smr', 'server', false, []],
    ['smr', 'server', true, []],
    ['smr', 'worker', false, undefined],
    ['smr', 'worker', true, ['model', 'gradient']],
  ])('%s: a %s (Byzantine %s) subscribes to %j', (name, role, byzantine, topics) => {
    expect(replicationMode(name).subscriptions(role, byzantine)).toEqual(topics)
  })

  it.each<[ReplicationModeName, boolean]>([
    ['median', true],
    ['no-anti-drift', true],
    ['vanilla', true],
    // The replica's loop follows the log, not the transport, and a restarted replica replays it.
    ['smr', false],
  ])('%s: heartbeat and saved server state %s', (name, gossip) => {
    expect(replicationMode(name).heartbeat).toBe(gossip)
    expect(replicationMode(name).keepsServerState).toBe(gossip)
    expect(replicationMode(name).beforeRun === undefined).toBe(gossip)
  })

  it('an SMR replica starts at round 0 and replays the log, without listening for a running cluster', async () => {
    const start = await replicationMode('smr').join({} as never)
    expect(start).toEqual({ round: 0, publishFirst: true })
  })
})
