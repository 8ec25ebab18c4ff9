/**
 * The one definition of a run's files (outputs.ts) and what fills it: provenance, the node
 * recorder behind `phalanx server|worker --out`, and `rounds.csv` written in the registry's order
 * with empty cells for what was not measured.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type NodeReport, resolveConfig } from '@phalanx/node'
import fc from 'fast-check'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parseRoundsCsv } from '../src/experiment.js'
import { createNodeRecorder } from '../src/node-run.js'
import { maxMeasured, type RoundRow, roundColumns, roundRowSchema, runSummarySchema } from '../src/outputs.js'
import { gitProvenance, runProvenance, withoutCredentials } from '../src/provenance.js'
import { roundsCsv } from '../src/report.js'

describe('provenance', () => {
  it('names the version, the start time in ISO, host, command line and seed, and passes the schema', () => {
    const startedAt = new Date('2026-01-02T03:04:05.678Z')
    const provenance = runProvenance({ seed: 42, startedAt })
    expect(provenance).toMatchObject({ startedAt: '2026-01-02T03:04:05.678Z', seed: 42 })
    expect(provenance.phalanxVersion).toMatch(/^\d+\.\d+\.\d+/)
    expect(provenance.host).not.toBe('')
    expect(provenance.commandLine[0]).toBe(process.argv[0])
    expect(runSummarySchema.shape.provenance.parse(provenance)).toEqual(provenance)
  })

  it('gives the commit of the phalanx checkout this test runs from (it is one)', () => {
    const git = gitProvenance(fileURLToPath(new URL('.', import.meta.url)))
    expect(git.gitCommit).toMatch(/^[0-9a-f]{40}$/)
    expect(typeof git.gitDirty).toBe('boolean')
  })

  it('leaves the commit out, without failing, outside a git checkout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'phalanx-no-git-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    expect(gitProvenance(dir)).toEqual({})
    expect(gitProvenance(join(dir, 'missing'))).toEqual({})
  })

  it.each([
    ['nats://user:secret@nats.example:4222', 'nats://***@nats.example:4222'],
    ['--nats-url=nats://token@10.0.0.1:4222', '--nats-url=nats://***@10.0.0.1:4222'],
    ['nats://a:b@h1:4222,nats://c:d@h2:4222', 'nats://***@h1:4222,nats://***@h2:4222'],
    ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4222'],
    ['out/user@host', 'out/user@host'],
    ['--rounds', '--rounds'],
  ])('masks credentials in %s', (arg, masked) => {
    expect(withoutCredentials(arg)).toBe(masked)
  })
})

describe('rounds.csv', () => {
  const row = fc.record(
    {
      round: fc.nat(10_000),
      honestAccuracy: fc.double({ min: 0, max: 1, noNaN: true }),
      honestLoss: fc.double({ min: 0, max: 100, noNaN: true }),
      maxHonestDrift: fc.double({ min: 0, max: 100, noNaN: true }),
      rejectedMessages: fc.nat(1000),
      roundSeconds: fc.double({ min: 0, max: 100, noNaN: true }),
    },
    { requiredKeys: ['round'] },
  )

  it('has the registry columns in order, and an empty cell exactly where a value was not measured', () => {
    fc.assert(
      fc.property(fc.array(row, { maxLength: 20 }), (rows) => {
        const [header, ...lines] = roundsCsv(rows).trimEnd().split('\n')
        expect(header).toBe(roundColumns.join(','))
        expect(lines).toHaveLength(rows.length)
        lines.forEach((line, i) => {
          const cells = line.split(',')
          expect(cells).toHaveLength(roundColumns.length)
          roundColumns.forEach((column, c) => {
            expect(cells[c] === '', `${column} of row ${i}`).toBe(rows[i]![column] === undefined)
          })
        })
        // What is read back is a row of the schema, with the same columns measured.
        for (const [i, back] of parseRoundsCsv(roundsCsv(rows)).entries()) {
          expect(Object.keys(roundRowSchema.parse(back)).sort()).toEqual(Object.keys(rows[i]!).sort())
        }
      }),
    )
  })

  it.each<[readonly (number | undefined)[], number | null]>([
    [[], null],
    [[undefined, undefined], null],
    [[0, undefined], 0],
    [[0.5, 2, undefined, 1], 2],
  ])('the largest measured of %j is %s (null: none measured, never 0)', (values, max) => {
    expect(maxMeasured(values)).toBe(max)
  })
})

describe('a node process records its own rounds', () => {
  // Peer ids in the config's form (base58, at least 20 characters); nothing here checks keys.
  const peers = {
    s0: '12D3KooWserverZero111111',
    s1: '12D3KooWserverUno1111111',
    s2: '12D3KooWserverTwo1111111',
    s3: '12D3KooWserverThree11111',
  }
  const configOf = (nodeId: string) =>
    resolveConfig({
      nodeId,
      servers: 4,
      byzantineServers: 1,
      workers: 2,
      byzantineWorkers: 0,
      rounds: 3,
      members: Object.entries(peers).map(([id, peer]) => `server-${id.slice(1)}:${peer}`),
    })
  const round = (
    roundIndex: number,
    rejected: Record<string, number>,
    sinceStart: Record<string, number>,
    extra: Partial<Extract<NodeReport, { type: 'round' }>> = {},
  ): NodeReport => ({
    type: 'round',
    nodeId: 'x',
    role: 'server',
    round: roundIndex,
    quorumWaitSeconds: 0.1,
    quorumWaitByInputSeconds: {},
    roundDurationSeconds: 0.5,
    cpuSeconds: 0.2,
    rejected,
    rejectedSinceStart: sinceStart,
    suspicions: [],
    ...extra,
  })
  // server-0 is the Byzantine one (F = 1): its distance is not a drift between honest servers.
  const distances = { [peers.s0]: 9, [peers.s2]: 0.25, [peers.s3]: 0.5 }
  const reports: NodeReport[] = [
    { type: 'started', nodeId: 'x', round: 0, backend: 'cpu' },
    round(0, { duplicate: 2 }, { duplicate: 2 }, { modelDistances: distances }),
    round(1, {}, { duplicate: 2 }, { accuracy: 0.5, loss: 1.5, modelDistances: distances }),
    round(2, { duplicate: 1, stale_round: 3 }, { duplicate: 3, stale_round: 3 }, { modelDistances: {} }),
    { type: 'done', nodeId: 'x', round: 3, accuracy: 0.75, loss: 0.5, modelSha256: 'ab'.repeat(32) },
  ]

  it.each<[string, Partial<RoundRow>[], Record<string, unknown>]>([
    [
      'server-1',
      [
        { maxHonestDrift: 0.5, rejectedMessages: 2, honestAccuracy: undefined },
        { maxHonestDrift: 0.5, rejectedMessages: 0, honestAccuracy: 0.5, honestLoss: 1.5 },
        { maxHonestDrift: undefined, rejectedMessages: 4 },
      ],
      {
        byzantine: false,
        role: 'server',
        honestAccuracy: 0.75,
        maxHonestDrift: 0.5,
        finalModelSha256: 'ab'.repeat(32),
      },
    ],
    [
      'server-0',
      [
        { maxHonestDrift: undefined, rejectedMessages: 2, honestAccuracy: undefined },
        { maxHonestDrift: undefined, rejectedMessages: 0, honestAccuracy: undefined },
        { maxHonestDrift: undefined, rejectedMessages: 4 },
      ],
      { byzantine: true, role: 'server', honestAccuracy: null, honestLoss: null, maxHonestDrift: null },
    ],
    [
      'worker-0',
      [
        { maxHonestDrift: undefined, rejectedMessages: 2 },
        { maxHonestDrift: undefined, rejectedMessages: 0, honestAccuracy: undefined },
        { maxHonestDrift: undefined, rejectedMessages: 4 },
      ],
      { byzantine: false, role: 'worker', honestAccuracy: null, maxHonestDrift: null },
    ],
  ])(
    '%s: per-round rejections, drift to honest servers only, nothing it did not measure',
    (nodeId, rows, summary) => {
      const recorder = createNodeRecorder(configOf(nodeId), new Date())
      for (const report of reports) recorder.add(report)
      const written = recorder.rows()
      expect(written).toHaveLength(3)
      written.forEach((row, i) => {
        expect(row).toMatchObject(rows[i]!)
        for (const [key, value] of Object.entries(rows[i]!))
          if (value === undefined) expect(row[key as keyof RoundRow]).toBeUndefined()
      })
      const result = runSummarySchema.parse(recorder.summary())
      expect(result).toMatchObject({
        mode: 'node-process',
        nodeId,
        rounds: 3,
        backend: 'cpu',
        rejectedMessages: { duplicate: 3, stale_round: 3 },
        ...summary,
      })
      if (nodeId !== 'server-1') expect(result.finalModelSha256).toBeUndefined()
    },
  )

  it('knows no honest peer without members, and measures no drift then', () => {
    const recorder = createNodeRecorder({ ...configOf('server-1'), members: [] }, new Date())
    for (const report of reports) recorder.add(report)
    expect(recorder.rows().map((row) => row.maxHonestDrift)).toEqual([undefined, undefined, undefined])
    expect(recorder.summary().maxHonestDrift).toBeNull()
  })
})
