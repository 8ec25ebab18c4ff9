/**
 * Every `phalanx_` metric family a node defines is produced: a real cluster (3 servers, 2 workers,
 * the default MNIST MLP, whose vectors are pulled over payload streams) runs a few rounds, the
 * test brings about the conditions some families wait for (a server's model far from the others,
 * a stalled round, a stranger's dial and chaos command, a corrupt state file, a NATS outage), and
 * then every family of `nodeMetricDefinitions` must have a sample above zero on a node of each
 * role that produces it. A family this test does not bring about must be documented as
 * conditional (`when`). The list is the one `createMetrics` defines, not a copy of it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  generateOperatorKey,
  type MetricDefinition,
  nodeMetricDefinitions,
  writeOperatorKey,
} from '@phalanx/control'
import { createMembership, createNetNode, netDefaults } from '@phalanx/net'
import { buildInfo, sourceCommit } from '@phalanx/node'
import pino from 'pino'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli } from './support/cli.js'
import { startTestCluster, type TestCluster } from './support/cluster.js'
import { freePorts } from './support/nats.js'
import { type MetricFamily, parsePrometheusText } from './support/prometheus.js'

const CLUSTER = 'metrics-test'
const repo = fileURLToPath(new URL('..', import.meta.url))
/** A failure guard only: every wait below ends on an event long before it. */
const GUARD_MS = 90_000
const scraped = ['server-0', 'server-1', 'server-2', 'worker-0'] as const
type Scraped = (typeof scraped)[number]
/** Where a family every node of a role produces is looked for: nodes no trigger below aims at. */
const ofRole = { server: 'server-1', worker: 'worker-0' } as const satisfies Record<string, Scraped>

/**
 * The conditional families this test brings about, the nodes that then produce them, and how.
 * Every other conditional family is asserted to be documented as such.
 */
const triggered: Partial<Record<string, { on: readonly Scraped[]; by: string }>> = {
  phalanx_suspicions_total: { on: ['server-1'], by: 'server-0 corrupted to the reversed model' },
  phalanx_model_drift_ratio: { on: ['server-0'], by: 'server-0 publishing the reversed model' },
  phalanx_accuracy_ratio: { on: ['server-1'], by: 'MNIST, evaluated every 2 rounds' },
  phalanx_rejected_messages_total: {
    on: ['server-1', 'worker-0'],
    by: 'worker-0 paused: the servers stall and re-announce their models (duplicates)',
  },
  phalanx_sync_served_bytes_total: { on: ['server-1'], by: 'the stalled servers pulling from each other' },
  phalanx_payload_fetched_bytes_total: { on: ['server-1', 'worker-0'], by: 'the MLP: 407 KB vectors' },
  phalanx_payload_served_bytes_total: { on: ['server-1', 'worker-0'], by: 'the MLP: 407 KB vectors' },
  phalanx_connections_refused_total: { on: ['server-0'], by: 'a stranger dialling server-0' },
  phalanx_control_rejected_total: { on: ['server-0'], by: 'a chaos command signed by a stranger' },
  phalanx_state_refused_total: { on: ['server-2'], by: 'a corrupt state file in its stateDir' },
  phalanx_nats_disconnects_total: {
    on: ['server-1', 'worker-0'],
    by: 'the nats-server killed and restarted',
  },
}

const definitions: readonly MetricDefinition[] = Object.values(nodeMetricDefinitions)

/** A sample above zero: a counter that counted, a histogram that observed, a gauge that was set. */
function produced(family: MetricFamily | undefined, type: MetricDefinition['type']): boolean {
  if (family === undefined) return false
  const samples =
    type === 'histogram' ? family.samples.filter((s) => s.name.endsWith('_count')) : family.samples
  return samples.some((sample) => sample.value > 0)
}

describe('every node metric family is produced', () => {
  let cluster: TestCluster
  let stateDir: string
  const opsUrl = new Map<Scraped, string>()
  /** Every scrape of each node, oldest first: a gauge counts as produced if any scrape showed it. */
  const scrapes = new Map<Scraped, Map<string, MetricFamily>[]>(scraped.map((id) => [id, []]))

  const scrape = async (nodeId: Scraped): Promise<Map<string, MetricFamily>> => {
    const families = parsePrometheusText(await (await fetch(`${opsUrl.get(nodeId)}/metrics`)).text())
    scrapes.get(nodeId)!.push(families)
    return families
  }
  /** Scrapes `nodeId` until `families` of it are produced (the scrape is the event). */
  const scrapeUntil = async (nodeId: Scraped, names: readonly string[]): Promise<void> => {
    const deadline = Date.now() + GUARD_MS
    for (;;) {
      const families = await scrape(nodeId)
      const missing = names.filter((name) => !produced(families.get(name), typeOf(name)))
      if (missing.length === 0) return
      if (Date.now() > deadline) throw new Error(`${nodeId}: ${missing.join(', ')} never produced`)
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  const typeOf = (name: string) => definitions.find((d) => d.name === name)!.type

  beforeAll(async () => {
    const ports = await freePorts(scraped.length)
    for (const [index, nodeId] of scraped.entries()) opsUrl.set(nodeId, `http://127.0.0.1:${ports[index]}`)
    stateDir = mkdtempSync(join(tmpdir(), 'phalanx-metrics-state-'))
    // Not a state file at all: refused at start-up (and counted), so server-2 starts at round 0.
    writeFileSync(join(stateDir, 'server-2.state'), 'not a phalanx state file')
    const opsEnv = (nodeId: Scraped) => ({ PHALANX_OPS_PORT: String(ports[scraped.indexOf(nodeId)]) })
    cluster = await startTestCluster({
      cluster: CLUSTER,
      servers: 3,
      workers: 2,
      env: {
        PHALANX_BYZANTINE_SERVERS: '0',
        PHALANX_BYZANTINE_WORKERS: '0',
        PHALANX_LOG_LEVEL: 'info',
        PHALANX_RULE: 'average',
        PHALANX_MOMENTUM: '0',
        PHALANX_EVAL_EVERY: '2',
        PHALANX_ROUNDS: '100000',
        PHALANX_OPS_HOST: '127.0.0.1',
      },
      nodeEnv: {
        'server-0': opsEnv('server-0'),
        'server-1': opsEnv('server-1'),
        'server-2': { ...opsEnv('server-2'), PHALANX_STATE_DIR: stateDir },
        'worker-0': opsEnv('worker-0'),
      },
    })
    await cluster.until(
      () =>
        ['server-0', 'server-1', 'server-2', 'worker-0', 'worker-1'].every(
          (id) => cluster.latestRound(id) >= 3,
        ),
      GUARD_MS,
    )
  })

  afterAll(async () => {
    await cluster?.stop()
    if (stateDir !== undefined) rmSync(stateDir, { recursive: true, force: true })
  })

  it('counts a stranger’s dial and a stranger’s chaos command on the node they aimed at', async () => {
    const [address] = await cluster.node('server-0').listening
    const stranger = await createNetNode({
      cluster: CLUSTER,
      role: 'worker',
      dimension: 1,
      membership: createMembership({ closed: false }),
      logger: pino({ level: 'silent' }),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [],
    })
    try {
      await stranger.start()
      // server-0's member set is closed: the gater refuses the stranger once the encrypter's handshake names it.
      await stranger.dial(address!).catch(() => undefined)
      await scrapeUntil('server-0', ['phalanx_connections_refused_total'])
    } finally {
      await stranger.stop()
    }

    const keyFile = join(cluster.work, 'stranger-operator.pem')
    await writeOperatorKey(keyFile, generateOperatorKey())
    const refused = await runCli(
      [
        'chaos',
        'pause',
        'server-0',
        '--nats-url',
        cluster.natsUrl,
        '--cluster',
        CLUSTER,
        '--operator-key',
        keyFile,
      ],
      { timeoutMs: 60_000 },
    )
    expect(refused.code).toBe(1)
    await scrapeUntil('server-0', ['phalanx_control_rejected_total'])
  })

  it('sets the drift ratio of a server whose model is far from the others, and its peers suspect it', async () => {
    const from = cluster.latestRound('server-0')
    const corrupted = await cluster.chaos('corrupt', 'server-0', '--attack', 'reversed')
    expect(corrupted.stdout.trim()).toBe('server-0 acknowledged corrupt')
    // −θ against θ: the distance is about twice the norm.
    await cluster.until(
      (seen) => seen.some((e) => e.nodeId === 'server-0' && e.round > from && (e.drift ?? 0) > 0),
      GUARD_MS,
    )
    await scrapeUntil('server-0', ['phalanx_model_drift_ratio'])
    await scrapeUntil('server-1', ['phalanx_suspicions_total'])
    const restored = await cluster.chaos('corrupt', 'server-0', '--attack', 'none')
    expect(restored.stdout.trim()).toBe('server-0 acknowledged corrupt')
  })

  it('counts the duplicates and the sync answers of a stalled round', async () => {
    const paused = await cluster.chaos('pause', 'worker-0')
    expect(paused.stdout.trim()).toBe('worker-0 acknowledged pause')
    // The servers wait for worker-0's gradient (f = 0): every 2 s they re-announce and pull.
    await scrapeUntil('server-1', ['phalanx_rejected_messages_total', 'phalanx_sync_served_bytes_total'])
    await scrapeUntil('worker-0', ['phalanx_rejected_messages_total'])
    const resumed = await cluster.chaos('resume', 'worker-0')
    expect(resumed.stdout.trim()).toBe('worker-0 acknowledged resume')
    const at = cluster.latestRound('server-1')
    await cluster.until(() => cluster.latestRound('server-1') > at + 1, GUARD_MS)
  })

  it('counts a NATS outage on every node, which trains on through it', async () => {
    await cluster.natsServer.kill()
    try {
      await scrapeUntil('server-1', ['phalanx_nats_disconnects_total'])
      await scrapeUntil('worker-0', ['phalanx_nats_disconnects_total'])
    } finally {
      await cluster.natsServer.start()
    }
    const at = cluster.latestRound('server-1')
    await cluster.until(() => cluster.latestRound('server-1') > at + 1, GUARD_MS)
  })

  it('has samples for every family it defines, on a node of every role that produces it', async () => {
    for (const nodeId of scraped) await scrape(nodeId)
    const seen = (nodeId: Scraped, definition: MetricDefinition) =>
      scrapes.get(nodeId)!.some((families) => produced(families.get(definition.name), definition.type))

    const missing: string[] = []
    for (const definition of definitions) {
      const trigger = triggered[definition.name]
      if (definition.when === undefined) {
        expect(trigger, `${definition.name} is produced unconditionally: nothing to trigger`).toBeUndefined()
        for (const role of definition.roles)
          if (!seen(ofRole[role], definition)) missing.push(`${definition.name} on ${ofRole[role]}`)
      } else if (trigger !== undefined) {
        for (const nodeId of trigger.on)
          if (!seen(nodeId, definition)) missing.push(`${definition.name} on ${nodeId} (${trigger.by})`)
      } else {
        // Not brought about here: the condition it waits for is documented instead.
        expect(definition.when.length, definition.name).toBeGreaterThan(10)
      }
    }
    expect(missing).toEqual([])
    // Nothing triggered that the definitions would not call conditional.
    for (const name of Object.keys(triggered))
      expect(definitions.find((d) => d.name === name)?.when, name).toBeDefined()

    // What the nodes export is exactly what is defined, with the defined type and help.
    const last = scrapes.get('server-1')!.at(-1)!
    const exported = [...last.keys()].filter((name) => name.startsWith('phalanx_')).sort()
    expect(exported).toEqual(definitions.map((d) => d.name).sort())
    for (const definition of definitions) {
      expect(last.get(definition.name)?.type, definition.name).toBe(definition.type)
      expect(last.get(definition.name)?.help, definition.name).toBe(definition.help)
    }
    // What each node runs: the same build as this checkout.
    for (const nodeId of ['server-1', 'worker-0'] as const) {
      const families = scrapes.get(nodeId)!.at(-1)!
      const build = buildInfo()
      expect(
        families.get('phalanx_build_info')!.samples.map((s) => [s.labels, s.value]),
        nodeId,
      ).toEqual([
        [
          {
            version: build.version,
            commit: sourceCommit(repo),
            nodejs_version: process.version,
            role: nodeId.split('-')[0],
          },
          1,
        ],
      ])
      expect(build.commit).toMatch(/^[0-9a-f]{40}$/)
    }
    for (const nodeId of ['server-1', 'worker-0'] as const) {
      // Telemetry arrives after the round: the gauge is at least one past the last round reported
      // before the scrape, and the node goes on to report the round before the gauge's.
      const reported = cluster.latestRound(nodeId)
      const current = (await scrape(nodeId)).get('phalanx_round_current')!.samples[0]!.value
      expect(current, nodeId).toBeGreaterThanOrEqual(reported + 1)
      await cluster.until(() => cluster.latestRound(nodeId) >= current - 1, GUARD_MS)
    }
    // Both planes carry bytes: libp2p's connections and the NATS client's.
    for (const family of ['phalanx_network_sent_bytes_total', 'phalanx_network_received_bytes_total']) {
      const planes = last
        .get(family)!
        .samples.filter((s) => s.value > 0)
        .map((s) => s.labels.plane)
      expect(planes.sort(), family).toEqual(['control', 'data'])
    }
    // The configured payload plane carries the payloads (the MLP's vectors are pulled), on
    // servers and workers alike: a plane that silently fell back everywhere would show here.
    for (const nodeId of ['server-1', 'worker-0'] as const) {
      const byPlane = Object.fromEntries(
        scrapes
          .get(nodeId)!
          .at(-1)!
          .get('phalanx_payload_fetched_bytes_total')!
          .samples.map((s) => [s.labels.payload_plane, s.value]),
      )
      expect(byPlane[netDefaults.payloadPlane], `${nodeId}: ${JSON.stringify(byPlane)}`).toBeGreaterThan(0)
    }
    // Servers wait for both inputs, workers for models only.
    const inputs = (families: Map<string, MetricFamily>) =>
      families
        .get('phalanx_quorum_wait_seconds')!
        .samples.filter((s) => s.name.endsWith('_count') && s.value > 0)
        .map((s) => s.labels.input)
        .sort()
    expect(inputs(last)).toEqual(['gradients', 'models'])
    expect(inputs(scrapes.get('worker-0')!.at(-1)!)).toEqual(['models'])
  })
})
