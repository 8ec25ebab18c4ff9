import { createServer } from 'node:net'
import pino from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { attachControlPlane, clusterConfigSchema } from '../src/index.js'

/** A loopback port nobody listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

const roundReport = (round: number) => ({
  type: 'round' as const,
  nodeId: 'server-0',
  round,
  roundSeconds: 0.1,
  quorumWaitSeconds: 0,
  cpuSeconds: 0.01,
  rejected: {},
})

describe('the data plane and state-file counters on /metrics', () => {
  it('are copied as deltas at every round: each refusal counted once, by its label', async () => {
    const registry = new Registry()
    const net = {
      connections_refused_total: 0,
      peers_disconnected_total: 0,
      streams_refused_total: { concurrent: 0, rate: 0, idle: 0 },
    }
    const state = { state_file: 1, watermark_file: 0, signature: 0 }
    const plane = await attachControlPlane({
      config: clusterConfigSchema.parse({ opsPort: await freePort(), opsHost: '127.0.0.1' }),
      log: pino({ level: 'silent' }),
      nodeId: 'server-0',
      role: 'server',
      onChaos: () => {},
      registry,
      netCounters: () => net,
      stateCounters: () => state,
    })
    try {
      const value = async (name: string, labels: Record<string, string> = {}) => {
        const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name)
        const found = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
        return found?.value ?? 0
      }
      const steps: Array<{ change: () => void; expected: Array<[string, Record<string, string>, number]> }> =
        [
          {
            change: () => {},
            expected: [
              ['phalanx_state_refused_total', { what: 'state_file' }, 1],
              ['phalanx_streams_refused_total', { reason: 'rate' }, 0],
            ],
          },
          {
            change: () => {
              net.streams_refused_total.rate += 3
              net.streams_refused_total.idle += 1
              net.connections_refused_total += 2
              state.signature += 1
            },
            expected: [
              ['phalanx_streams_refused_total', { reason: 'rate' }, 3],
              ['phalanx_streams_refused_total', { reason: 'idle' }, 1],
              ['phalanx_connections_refused_total', {}, 2],
              ['phalanx_state_refused_total', { what: 'signature' }, 1],
              ['phalanx_state_refused_total', { what: 'state_file' }, 1],
            ],
          },
          {
            // A round with nothing new adds nothing.
            change: () => {},
            expected: [
              ['phalanx_streams_refused_total', { reason: 'rate' }, 3],
              ['phalanx_connections_refused_total', {}, 2],
            ],
          },
        ]
      for (const [index, { change, expected }] of steps.entries()) {
        change()
        plane.roundCompleted(roundReport(index))
        for (const [name, labels, count] of expected) expect(await value(name, labels), name).toBe(count)
      }
    } finally {
      await plane.close()
    }
  })
})
