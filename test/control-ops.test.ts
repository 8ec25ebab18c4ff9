/**
 * Operations endpoints over real HTTP: `/metrics` parses as the Prometheus text format and every
 * phalanx metric name ends in its unit; `/healthz` and `/readyz` answer as probes expect. The
 * control plane's drops (an invalid payload from the shared nats-server) show up in the scrape.
 */
import { randomUUID } from 'node:crypto'
import { connect } from '@nats-io/transport-node'
import type { OpsServer } from '@phalanx/control'
import {
  connectControl,
  createMetrics,
  startOpsServer,
  unitlessMetricNames,
  watchTelemetry,
} from '@phalanx/control'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { captureLogger } from './support/log.js'
import { SHARED_NATS_URL } from './support/nats.js'
import { parsePrometheusText } from './support/prometheus.js'

const SHARED_NATS = SHARED_NATS_URL
const UNIT_SUFFIXES = ['_total', '_seconds', '_bytes', '_ratio']

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function startServer(ready: () => boolean | string): Promise<{ ops: OpsServer; registry: Registry }> {
  const registry = new Registry()
  const ops = await startOpsServer({ port: 0, registry, ready, log: captureLogger().log })
  cleanups.push(() => ops.close())
  return { ops, registry }
}

describe('operations endpoints', () => {
  it('/metrics is Prometheus text, every phalanx name ends in its unit, and control-plane drops are counted', async () => {
    const registry = new Registry()
    const metrics = createMetrics(registry)
    const ops = await startOpsServer({ port: 0, registry, ready: () => true })
    cleanups.push(() => ops.close())
    metrics.roundsTotal.inc(3)
    metrics.roundDurationSeconds.observe(0.2)
    metrics.rejectedMessagesTotal.inc({ reason: 'dimension' }, 2)
    metrics.rejectedMessagesTotal.inc({ reason: 'equivocation' })
    metrics.accuracyRatio.set(0.91)

    const cluster = `t${randomUUID().slice(0, 8)}`
    const conn = connectControl({
      servers: SHARED_NATS,
      cluster,
      name: 'm',
      log: captureLogger().log,
      metrics: metrics.sink,
    })
    cleanups.push(() => conn.close())
    let delivered!: () => void
    const garbageSeen = new Promise<void>((resolve) => {
      delivered = resolve
    })
    const watch = await watchTelemetry({ conn })
    cleanups.push(() => watch.stop())
    const raw = await connect({ servers: SHARED_NATS })
    cleanups.push(() => raw.close())
    raw.subscribe(`phalanx.${cluster}.telemetry.*`, { callback: () => delivered() })
    await raw.flush()
    raw.publish(`phalanx.${cluster}.telemetry.evil`, '{"round":"not a number"}')
    await garbageSeen
    await conn.nats()!.flush()

    const response = await fetch(`${ops.url}/metrics`)
    expect(response.status).toBe(200)
    expect(response.headers.get('content-type')).toContain('text/plain')
    const families = parsePrometheusText(await response.text())
    const phalanxNames = [...families.keys()].filter((name) => name.startsWith('phalanx_'))
    expect(phalanxNames.length).toBeGreaterThanOrEqual(10)
    expect(
      phalanxNames.filter(
        (name) =>
          !unitlessMetricNames.includes(name) && !UNIT_SUFFIXES.some((suffix) => name.endsWith(suffix)),
      ),
    ).toEqual([])
    expect(families.get('phalanx_rounds_total')?.samples).toEqual([
      { name: 'phalanx_rounds_total', labels: {}, value: 3 },
    ])
    expect(families.get('phalanx_round_duration_seconds')?.type).toBe('histogram')
    expect(
      families.get('phalanx_round_duration_seconds')?.samples.find((s) => s.name.endsWith('_count'))?.value,
    ).toBe(1)
    expect(
      families
        .get('phalanx_rejected_messages_total')
        ?.samples.map((s) => [s.labels.reason, s.value])
        .sort(),
    ).toEqual([
      ['dimension', 2],
      ['equivocation', 1],
    ])
    expect(families.get('phalanx_invalid_payloads_total')?.samples).toEqual([
      {
        name: 'phalanx_invalid_payloads_total',
        labels: { kind: 'telemetry', direction: 'incoming' },
        value: 1,
      },
    ])
    expect(families.has('process_cpu_seconds_total')).toBe(true)
  })

  it.each([
    'phalanx_x{reason=dimension} 1',
    'phalanx_x 1 2 3',
    'phalanx-x 1',
    '# TYPE phalanx_x countr',
    'phalanx_x one',
  ])('the format check itself rejects %j', (line) => {
    expect(() => parsePrometheusText(`${line}\n`)).toThrow()
  })

  it('defines the metrics once per registry', () => {
    const registry = new Registry()
    const first = createMetrics(registry, { defaultMetrics: false })
    const second = createMetrics(registry, { defaultMetrics: false })
    expect(second.roundsTotal).toBe(first.roundsTotal)
  })

  it.each([
    { ready: false, status: 503, body: 'not ready\n' },
    { ready: 'waiting for 3 of 4 server models', status: 503, body: 'waiting for 3 of 4 server models\n' },
    { ready: true, status: 200, body: 'ready\n' },
  ])('/readyz answers $status when ready() is $ready', async ({ ready, status, body }) => {
    const { ops } = await startServer(() => ready)
    const response = await fetch(`${ops.url}/readyz`)
    expect(response.status).toBe(status)
    expect(await response.text()).toBe(body)
  })

  it.each([
    { live: undefined, status: 200, body: 'ok\n' },
    { live: true, status: 200, body: 'ok\n' },
    { live: false, status: 503, body: 'not live\n' },
    {
      live: 'wedged: the round loop has not turned',
      status: 503,
      body: 'wedged: the round loop has not turned\n',
    },
  ])(
    '/healthz answers $status when live() is $live, whatever readiness says',
    async ({ live, status, body }) => {
      const registry = new Registry()
      const ops = await startOpsServer({
        port: 0,
        registry,
        ready: () => true,
        ...(live === undefined ? {} : { live: () => live }),
      })
      cleanups.push(() => ops.close())
      const response = await fetch(`${ops.url}/healthz`)
      expect(response.status).toBe(status)
      expect(await response.text()).toBe(body)
      expect((await fetch(`${ops.url}/readyz`)).status).toBe(200)
    },
  )

  it.each([
    { path: '/healthz', status: 200 },
    { path: '/nope', status: 404 },
  ])('$path answers $status even while not ready', async ({ path, status }) => {
    const { ops } = await startServer(() => 'starting')
    expect((await fetch(`${ops.url}${path}`)).status).toBe(status)
  })

  it('reports a port already in use by name', async () => {
    const { ops } = await startServer(() => true)
    await expect(
      startOpsServer({ port: ops.port, registry: new Registry(), ready: () => true }),
    ).rejects.toMatchObject({ name: 'OpsServerListenError', port: ops.port })
  })
})
