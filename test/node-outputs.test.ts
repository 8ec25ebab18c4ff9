/**
 * What a deployment's nodes leave behind: real `phalanx server|worker` processes (4 servers, the
 * first Byzantine, 2 workers) on loopback, with a control plane of their own (a nats-server this
 * test owns: telemetry, membership, chaos commands, checkpoints) and each with `PHALANX_OUT`, the
 * way a pod gets it from the ConfigMap. Each node writes its own `summary.json`, `rounds.csv` and
 * `report.html` when its training is done, and — stopped by SIGTERM before that — with the rounds
 * it did. Every line any node logged is one JSON object with each key once (JSON.parse would keep
 * the last of two and hide the first, so the raw text is scanned). Needs the built CLI.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseRoundsCsv, roundColumns, roundRowSchema, runSummarySchema } from '@phalanx/lab'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { duplicateKeys } from './support/json-keys.js'
import { type NatsServerHandle, startNatsServer } from './support/nats.js'
import { forkNode } from './support/node-cluster.js'
import { logFileOf, type NodeHandle, peerIdsOf } from './support/node-process.js'

const servers = ['server-0', 'server-1', 'server-2', 'server-3']
const workers = ['worker-0', 'worker-1']
const nodeIds = [...servers, ...workers]
const ROUNDS = 6

describe('duplicateKeys (the scanner the log check relies on)', () => {
  it.each([
    ['{"a":1,"b":{"a":2}}', []],
    ['{"peer":"x","msg":"m","peer":"y"}', ['peer']],
    ['{"a":{"b":1,"b":[{"c":1,"c":2}]}}', ['a.b', 'a.b.0.c']],
    ['{"s":"a \\" , \\"s\\": 1","t":[1,2,{}]}', []],
    ['{"component":"nats","x":null,"component":"chaos","nodeId":"a","nodeId":"a"}', ['component', 'nodeId']],
  ])('%s repeats %j', (line, keys) => {
    expect(duplicateKeys(line)).toEqual(keys)
  })
})

describe('phalanx server and worker with out set', () => {
  let work: string
  let nats: NatsServerHandle
  const alive: NodeHandle[] = []
  const outOf = (nodeId: string, run: string) => join(work, run, nodeId)

  /** Servers one by one (each bootstraps from those before it), then the workers. */
  const startCluster = async (run: string, env: Record<string, string>): Promise<NodeHandle[]> => {
    const started: NodeHandle[] = []
    const addresses: string[] = []
    for (const nodeId of nodeIds) {
      const node = forkNode({
        work,
        nodeId,
        env: {
          ...env,
          PHALANX_CLUSTER: `outputs-${run}`,
          PHALANX_BOOTSTRAP: addresses.join(','),
          PHALANX_OUT: outOf(nodeId, run),
          ...(nodeId.startsWith('server') ? { PHALANX_STATE_DIR: join(work, run, `${nodeId}-state`) } : {}),
        },
      })
      alive.push(node)
      started.push(node)
      if (nodeId.startsWith('server')) addresses.push(...(await node.listening))
    }
    await Promise.all(started.map((node) => node.listening))
    return started
  }

  let env: Record<string, string>
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'phalanx-node-outputs-'))
    nats = await startNatsServer()
    const peerIds = await peerIdsOf(work, nodeIds)
    env = {
      PHALANX_SERVERS: String(servers.length),
      PHALANX_BYZANTINE_SERVERS: '1',
      PHALANX_SERVER_ATTACK: 'reversed',
      PHALANX_WORKERS: String(workers.length),
      PHALANX_BYZANTINE_WORKERS: '0',
      PHALANX_EVAL_EVERY: '2',
      PHALANX_CHECKPOINT_EVERY: '2',
      PHALANX_CHAOS: 'true',
      PHALANX_NATS_URL: nats.url,
      PHALANX_MEMBERS: [...peerIds].map(([nodeId, peerId]) => `${nodeId}:${peerId}`).join(','),
    }
  }, 60_000)

  afterAll(async () => {
    await Promise.all(alive.splice(0).map((node) => node.kill()))
    await nats?.dispose()
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  const artefacts = (nodeId: string, run: string) => {
    const dir = outOf(nodeId, run)
    const summary = runSummarySchema.parse(JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')))
    const csv = readFileSync(join(dir, 'rounds.csv'), 'utf8')
    expect(csv.split('\n')[0]).toBe(roundColumns.join(','))
    const rows = parseRoundsCsv(csv).map((row) => roundRowSchema.parse(row))
    expect(readFileSync(join(dir, 'report.html'), 'utf8')).toContain('<svg')
    return { summary, rows }
  }

  it('each node writes its own summary, rounds and report once its training is done', async () => {
    const nodes = await startCluster('done', { ...env, PHALANX_ROUNDS: String(ROUNDS) })
    // 'done' is reported after the files are written (lab/src/node-run.ts).
    await Promise.all(nodes.map((node) => node.reportUntil((report) => report.type === 'done')))
    for (const nodeId of nodeIds) {
      const { summary, rows } = artefacts(nodeId, 'done')
      const role = nodeId.startsWith('server') ? 'server' : 'worker'
      const honestServer = role === 'server' && nodeId !== 'server-0'
      expect(summary).toMatchObject({ mode: 'node-process', nodeId, role, byzantine: nodeId === 'server-0' })
      expect(summary.provenance.seed).toBe(summary.config.seed)
      expect(Date.parse(summary.provenance.startedAt)).not.toBeNaN()
      expect(summary.config.out).toBe(outOf(nodeId, 'done'))
      // A node that catches up from the median may skip a round; it never invents one.
      expect(summary.rounds).toBe(rows.length)
      expect(rows.length).toBeGreaterThanOrEqual(ROUNDS - 1)
      expect(rows.at(-1)?.round).toBe(ROUNDS - 1)
      for (const row of rows) expect(row.rejectedMessages).toBeTypeOf('number')
      if (honestServer) {
        // Its own evaluations (every second round) and its distances to the other honest servers.
        expect(summary.honestLoss).toBeTypeOf('number')
        expect(summary.finalModelSha256).toMatch(/^[0-9a-f]{64}$/)
        expect(rows.filter((row) => row.honestLoss !== undefined).length).toBeGreaterThanOrEqual(2)
        expect(rows.some((row) => row.maxHonestDrift !== undefined)).toBe(true)
        expect(summary.maxHonestDrift).toBeTypeOf('number')
      } else {
        // A worker and the Byzantine server evaluate nothing and measure no drift: empty, not 0.
        expect(summary.honestAccuracy).toBeNull()
        expect(summary.honestLoss).toBeNull()
        expect(summary.maxHonestDrift).toBeNull()
        for (const row of rows) {
          expect(row.honestLoss).toBeUndefined()
          expect(row.maxHonestDrift).toBeUndefined()
        }
      }
    }
    await Promise.all(alive.splice(0).map((node) => node.kill()))
  })

  it('a node stopped by SIGTERM before its training is done writes the rounds it did', async () => {
    const nodes = await startCluster('stopped', { ...env, PHALANX_ROUNDS: '100000' })
    await Promise.all(
      nodes.map((node) => node.reportUntil((report) => report.type === 'round' && report.round >= 3)),
    )
    for (const node of nodes)
      expect(existsSync(join(outOf(node.nodeId, 'stopped'), 'summary.json'))).toBe(false)
    for (const node of nodes) node.process.kill('SIGTERM')
    await Promise.all(nodes.map((node) => node.exited))
    for (const nodeId of nodeIds) {
      const { summary, rows } = artefacts(nodeId, 'stopped')
      expect(summary.nodeId).toBe(nodeId)
      expect(summary.rounds).toBe(rows.length)
      expect(rows.at(-1)!.round).toBeGreaterThanOrEqual(3)
      expect(rows.at(-1)!.round).toBeLessThan(100000)
    }
  })

  it('no line any node logged repeats a key', () => {
    const repeated: string[] = []
    let lines = 0
    for (const nodeId of nodeIds) {
      for (const line of readFileSync(logFileOf(work, nodeId), 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue
        lines++
        const keys = duplicateKeys(line)
        if (keys.length > 0) repeated.push(`${nodeId}: ${keys.join(', ')} in ${line.slice(0, 300)}`)
      }
    }
    // Both runs, every component: net, nats, telemetry, membership, chaos, checkpointing, server state.
    expect(lines).toBeGreaterThan(100)
    expect(repeated).toEqual([])
  })
})
