import { createServer } from 'node:net'
import type { RoundRecord } from '@phalanx/control'
import { MutableNetCounters } from '@phalanx/net'
import pino from 'pino'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { attachControlPlane, buildInfo, clusterConfigSchema } from '../src/index.js'

/** A loopback port nobody listens on right now. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

const roundReport = (round: number): RoundRecord => ({
  nodeId: 'server-0',
  role: 'server',
  round,
  roundDurationSeconds: 0.1,
  quorumWaitSeconds: 0,
  cpuSeconds: 0.01,
  rejected: {},
  suspicions: [],
})

describe('the data plane and state-file counters on /metrics', () => {
  it('are copied as deltas at every round: each refusal counted once, by its label', async () => {
    const registry = new Registry()
    const net = new MutableNetCounters()
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
              net.wire_sent_bytes_total += 1000
              net.wire_received_bytes_total += 700
              net.messages_received_total += 5
              net.messages_delivered_total += 4
              net.payload_fetched_bytes_total += 300
              net.payload_fetched_plane_bytes_total.tls += 200
              net.payload_fetched_plane_bytes_total.libp2p += 100
              net.payload_plane_fallbacks_total += 2
              net.payload_plane_refused_total.outsider += 1
              net.equivocations_total += 1
              net.messages_rejected_total.duplicate += 3
              net.messages_rejected_total.wrong_dimension += 1
            },
            expected: [
              ['phalanx_streams_refused_total', { reason: 'rate' }, 3],
              ['phalanx_streams_refused_total', { reason: 'idle' }, 1],
              ['phalanx_connections_refused_total', {}, 2],
              ['phalanx_state_refused_total', { what: 'signature' }, 1],
              ['phalanx_state_refused_total', { what: 'state_file' }, 1],
              ['phalanx_network_sent_bytes_total', { plane: 'data' }, 1000],
              ['phalanx_network_received_bytes_total', { plane: 'data' }, 700],
              ['phalanx_net_messages_received_total', {}, 5],
              ['phalanx_net_messages_delivered_total', {}, 4],
              ['phalanx_payload_fetched_bytes_total', { payload_plane: 'tls' }, 200],
              ['phalanx_payload_fetched_bytes_total', { payload_plane: 'libp2p' }, 100],
              ['phalanx_payload_plane_fallbacks_total', {}, 2],
              ['phalanx_payload_plane_refused_total', { reason: 'outsider' }, 1],
              ['phalanx_equivocations_total', {}, 1],
              ['phalanx_rejected_messages_total', { reason: 'duplicate' }, 3],
              ['phalanx_rejected_messages_total', { reason: 'wrong_dimension' }, 1],
            ],
          },
          {
            // A round with nothing new adds nothing.
            change: () => {},
            expected: [
              ['phalanx_streams_refused_total', { reason: 'rate' }, 3],
              ['phalanx_connections_refused_total', {}, 2],
              ['phalanx_network_sent_bytes_total', { plane: 'data' }, 1000],
              ['phalanx_rejected_messages_total', { reason: 'duplicate' }, 3],
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

  it('are read again at every scrape of /metrics, between rounds', async () => {
    const net = new MutableNetCounters()
    const plane = await attachControlPlane({
      config: clusterConfigSchema.parse({ opsPort: await freePort(), opsHost: '127.0.0.1' }),
      log: pino({ level: 'silent' }),
      nodeId: 'server-0',
      role: 'server',
      onChaos: () => {},
      registry: new Registry(),
      netCounters: () => net,
    })
    try {
      const scrape = async (name: string) => {
        const text = await (await fetch(`${plane.opsUrl}/metrics`)).text()
        return text.split('\n').find((line) => line.startsWith(`${name} `))
      }
      expect(await scrape('phalanx_sync_served_bytes_total')).toBe('phalanx_sync_served_bytes_total 0')
      net.sync_served_bytes_total += 9
      net.connections_refused_total += 1
      // A stalled node completes no round, yet its refusals (re-announced duplicates) show.
      net.messages_rejected_total.duplicate += 2
      expect(await scrape('phalanx_sync_served_bytes_total')).toBe('phalanx_sync_served_bytes_total 9')
      expect(await scrape('phalanx_rejected_messages_total{reason="duplicate"}')).toBe(
        'phalanx_rejected_messages_total{reason="duplicate"} 2',
      )
      expect(await scrape('phalanx_connections_refused_total')).toBe('phalanx_connections_refused_total 1')
      // A round after the scrape adds nothing twice.
      plane.roundCompleted(roundReport(0))
      expect(await scrape('phalanx_sync_served_bytes_total')).toBe('phalanx_sync_served_bytes_total 9')
    } finally {
      await plane.close()
    }
  })
})

describe('a round report on /metrics', () => {
  it.each<{
    what: string
    report: Partial<RoundRecord>
    metric: string
    expected: { labels: Record<string, string>; value: number }[]
  }>([
    {
      what: 'drift over the published model’s norm',
      report: { drift: 2, modelNorm: 4 },
      metric: 'phalanx_model_drift_ratio',
      expected: [{ labels: {}, value: 0.5 }],
    },
    {
      what: 'no ratio without a drift (no other server’s model received)',
      report: { modelNorm: 4 },
      metric: 'phalanx_model_drift_ratio',
      expected: [{ labels: {}, value: 0 }],
    },
    {
      what: 'no ratio without the norm (a Byzantine server reports neither)',
      report: {},
      metric: 'phalanx_model_drift_ratio',
      expected: [{ labels: {}, value: 0 }],
    },
    {
      what: 'the quorum wait by input, one observation each',
      report: { quorumWaitByInputSeconds: { gradients: 0.25, models: 0.5 } },
      metric: 'phalanx_quorum_wait_seconds_count',
      expected: [
        { labels: { input: 'gradients' }, value: 1 },
        { labels: { input: 'models' }, value: 1 },
      ],
    },
  ])('$what', async ({ report, metric, expected }) => {
    const registry = new Registry()
    const plane = await attachControlPlane({
      config: clusterConfigSchema.parse({ opsPort: await freePort(), opsHost: '127.0.0.1' }),
      log: pino({ level: 'silent' }),
      nodeId: 'server-0',
      role: 'server',
      onChaos: () => {},
      registry,
    })
    try {
      plane.roundCompleted({ ...roundReport(0), ...report })
      const samples = (await registry.getMetricsAsJSON())
        .flatMap((m) =>
          m.values.map((v) => ({ ...v, metricName: (v as { metricName?: string }).metricName ?? m.name })),
        )
        .filter((v) => v.metricName === metric)
        .map(({ labels, value }) => ({ labels, value }))
      expect(samples).toEqual(expected)
    } finally {
      await plane.close()
    }
  })
})

it('a node serving /metrics sets phalanx_build_info to 1 and follows its round in phalanx_round_current', async () => {
  const registry = new Registry()
  const plane = await attachControlPlane({
    config: clusterConfigSchema.parse({ opsPort: await freePort(), opsHost: '127.0.0.1' }),
    log: pino({ level: 'silent' }),
    nodeId: 'worker-3',
    role: 'worker',
    onChaos: () => {},
    registry,
  })
  const samples = async (name: string) =>
    (await registry.getMetricsAsJSON()).find((m) => m.name === name)?.values.map((v) => [v.labels, v.value])
  try {
    const build = buildInfo()
    expect(await samples('phalanx_build_info')).toEqual([
      [
        { version: build.version, commit: build.commit, nodejs_version: build.nodejsVersion, role: 'worker' },
        1,
      ],
    ])
    plane.started(7)
    expect(await samples('phalanx_round_current')).toEqual([[{}, 7]])
    plane.roundCompleted({
      nodeId: 'worker-3',
      role: 'worker',
      round: 7,
      roundDurationSeconds: 0.1,
      quorumWaitSeconds: 0,
      cpuSeconds: 0.01,
      rejected: {},
      suspicions: [],
    })
    expect(await samples('phalanx_round_current')).toEqual([[{}, 8]])
  } finally {
    await plane.close()
  }
})
