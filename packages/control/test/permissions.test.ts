import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { clusterSubjects, natsPermissions, natsRoles, renderNatsServerConfig } from '../src/index.js'

describe('natsPermissions', () => {
  it.each([
    {
      role: 'worker' as const,
      may: ['phalanx.c.telemetry.worker-1', 'phalanx.c.evidence.worker-1', '$KV.phalanx-c-joins.peerA'],
    },
    {
      role: 'server' as const,
      may: [
        'phalanx.c.telemetry.worker-1',
        'phalanx.c.evidence.worker-1',
        '$O.phalanx-c-checkpoints.>',
        'phalanx.c.checkpoints',
      ],
    },
    { role: 'operator' as const, may: ['$KV.phalanx-c-members.>', 'phalanx.c.chaos.*'] },
  ])('$role: publishes only its own node id, key and buckets', ({ role, may }) => {
    const permissions = natsPermissions({ cluster: 'c', role, nodeId: 'worker-1', peerId: 'peerA' })
    const allow = permissions.publish.allow ?? []
    for (const subject of may) expect(allow).toContain(subject)
    expect(
      allow.some((s) => s === 'phalanx.c.telemetry.*' || s === 'phalanx.c.evidence.*' || s === '>'),
    ).toBe(false)
    if (role !== 'operator') expect(allow.some((s) => s.startsWith('$KV.phalanx-c-members'))).toBe(false)
  })

  it('an observer publishes nothing and reads telemetry only', () => {
    expect(natsPermissions({ cluster: 'c', role: 'observer' })).toEqual({
      publish: { deny: ['>'] },
      subscribe: { allow: [clusterSubjects('c').telemetryAll, clusterSubjects('c').evidenceAll] },
      allowResponses: false,
    })
  })

  it('every subject of every role belongs to its cluster (property)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[a-z0-9]{1,12}$/), fc.constantFrom(...natsRoles), (cluster, role) => {
        const permissions = natsPermissions({ cluster, role })
        for (const subject of [
          ...(permissions.publish.allow ?? []),
          ...(permissions.subscribe.allow ?? []),
        ]) {
          const own =
            subject.includes(`phalanx.${cluster}.`) ||
            subject.includes(`phalanx-${cluster}-`) ||
            ['_INBOX.>', '$JS.API.INFO', '$JS.API.>', '$JS.FC.>', '>'].includes(subject)
          expect(own, subject).toBe(true)
        }
      }),
    )
  })
})

describe('renderNatsServerConfig', () => {
  it('renders users, route authorization with credentials in the routes, and no monitoring port', () => {
    const config = renderNatsServerConfig({
      cluster: 'c',
      users: [
        { role: 'worker', nkey: 'UABC' },
        { role: 'operator', user: 'op', password: 'pw' },
      ],
      routes: { name: 'c', listen: '0.0.0.0:6222', user: 'route', password: 'rp', urls: ['nats://n-0:6222'] },
    })
    expect(config).toContain('nkey: "UABC"')
    expect(config).toContain('user: "op"')
    expect(config).toMatch(/cluster \{[^}]*authorization \{\s*user: "route"\s*password: "rp"/s)
    expect(config).toContain('"nats://route:rp@n-0:6222"')
    expect(config).not.toMatch(/^\s*http/m)
  })

  it('refuses a config without users or a user without credentials', () => {
    expect(() => renderNatsServerConfig({ cluster: 'c', users: [] })).toThrow(TypeError)
    expect(() => renderNatsServerConfig({ cluster: 'c', users: [{ role: 'worker' }] })).toThrow(TypeError)
  })
})
