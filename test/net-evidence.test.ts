/**
 * Equivocation evidence bounded (issue 13, item 2): kept compact (hashes and signatures, never a
 * payload, never a view into a received frame), bounded per sender and in total, published once
 * on the control plane, signed by the reporter, and then forgotten by the data plane.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { connect } from '@nats-io/transport-node'
import {
  clusterSubjects,
  decode,
  type EquivocationRecord,
  evidenceStatement,
  renderNatsServerConfig,
} from '@phalanx/control'
import {
  createMembership,
  createNetNode,
  type EquivocationEvidence,
  type NetNode,
  netDefaults,
  verifyPeerSignature,
} from '@phalanx/net'
import { attachControlPlane, clusterConfigSchema } from '@phalanx/node'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { startNatsServer } from './support/nats.js'

const run = promisify(execFile)
const fixture = fileURLToPath(new URL('./fixtures/net-evidence-heap.mjs', import.meta.url))
const logger = pino({ level: 'silent' })
const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

interface HeapReport {
  equivocations: number
  taken: number
  held: number
  retainedBytes: number
  entries: number
  start: number
  atWarmUp: number
  end: number
}

async function equivocatorRun(mode: 'keep' | 'take'): Promise<HeapReport> {
  const { stdout } = await run(process.execPath, ['--expose-gc', fixture, '10000', '1000', mode], {
    timeout: 120_000,
  })
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as HeapReport
}

const MiB = 1024 * 1024

describe('a 10,000-round equivocator', () => {
  it.each(['keep', 'take'] as const)('leaves the heap flat (evidence %s)', async (mode) => {
    const report = await equivocatorRun(mode)
    expect(report.equivocations).toBe(10_000)
    if (mode === 'take') {
      // Handed to the control plane every round, and nothing held afterwards.
      expect(report.taken).toBe(10_000)
      expect(report.held).toBe(0)
    } else {
      // One sender keeps its newest few, whatever the total budget.
      expect(report.held).toBe(netDefaults.maxEvidencePerSender)
    }
    // Hashes and signatures (an announcement's bytes at most): under 2 KiB a pair, never a frame.
    expect(report.retainedBytes).toBeLessThanOrEqual(report.held * 2 * 1200)
    // Ledger entries: the window's rounds only.
    expect(report.entries).toBeLessThanOrEqual(netDefaults.roundWindowAhead + 2)
    // Each equivocation made two 16 KiB messages inside 256 KiB frames (5 GiB in all): the heap
    // after warm-up stays within a few MiB of the heap before the run (GC noise, not a trend).
    expect(report.end - report.atWarmUp).toBeLessThan(4 * MiB)
    expect(report.end - report.start).toBeLessThan(8 * MiB)
  })
})

describe('evidence in the data plane', () => {
  it('holds an equivocator’s newest pairs, compact, until taken', async () => {
    const keys = (await Promise.all([0, 1].map(() => generateKeyPair('Ed25519')))) as unknown as PrivateKey[]
    const ids = keys.map((key) => peerIdFromPrivateKey(key).toString())
    const members = () =>
      createMembership({
        members: [
          [ids[0]!, 'server'],
          [ids[1]!, 'worker'],
        ],
      })
    const nodes: NetNode[] = []
    for (const [index, privateKey] of keys.entries()) {
      const node = await createNetNode({
        cluster: 'evidence',
        role: index === 0 ? 'server' : 'worker',
        // Inline: the kind of message whose bytes the evidence must not keep.
        dimension: 4096,
        membership: members(),
        logger,
        privateKey,
        roundWindowAhead: 8,
        adversary: index === 0,
      })
      cleanups.push(() => node.stop())
      await node.start()
      nodes.push(node)
    }
    const [equivocator, receiver] = nodes as [NetNode, NetNode]
    await receiver.dial(equivocator.multiaddrs()[0]!)
    await equivocator.waitForSubscribers('model', 1)
    const rounds = 6
    const caught = new Promise<void>((resolve) => {
      let seen = 0
      const off = receiver.on('equivocation', () => {
        if (++seen < rounds) return
        off()
        resolve()
      })
    })
    for (let round = 0; round < rounds; round++) {
      await equivocator.adversary!.publishConflicting('model', round, [
        new Float32Array(4096).fill(round),
        new Float32Array(4096).fill(round + 0.5),
      ])
    }
    await caught
    const held = receiver.evidence()
    expect(held.map((e) => e.round)).toEqual([2, 3, 4, 5])
    for (const pair of held) {
      expect(pair.first.hash).not.toBe(pair.second.hash)
      expect(pair.first.data).toBeUndefined()
      expect(pair.second.signature?.byteLength).toBe(64)
    }
    expect(receiver.takeEvidence()).toHaveLength(4)
    expect(receiver.evidence()).toHaveLength(0)
    expect(receiver.counters.equivocations_total).toBe(rounds)
  })
})

describe('evidence on the control plane', () => {
  it('is published once per pair under the server’s own NATS permissions, signed, with no payload', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'phalanx-evidence-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    const cluster = 'evidence'
    const users = [
      { role: 'server' as const, nodeId: 'server-0', user: 'server-0', password: 's0-secret' },
      { role: 'observer' as const, user: 'observer', password: 'obs-secret' },
    ]
    const configFile = join(dir, 'nats.conf')
    await writeFile(configFile, renderNatsServerConfig({ cluster, users }))
    const nats = await startNatsServer({ jetstream: true, extraArgs: ['-c', configFile] })
    cleanups.push(() => nats.dispose())
    const observer = await connect({ servers: nats.url, user: 'observer', pass: 'obs-secret' })
    cleanups.push(() => observer.close())
    const subscription = observer.subscribe(clusterSubjects(cluster).evidenceAll)
    await observer.flush()

    const key = (await generateKeyPair('Ed25519')) as unknown as PrivateKey
    const peerId = peerIdFromPrivateKey(key).toString()
    const signed = (hash: string): EquivocationEvidence['first'] => ({
      topic: 't',
      from: 'equivocator',
      data: new Uint8Array(150).fill(1),
      sequenceNumber: 42n,
      signature: new Uint8Array(64).fill(2),
      hash,
    })
    // The data plane's store, drained by the control plane as the node's takeEvidence does.
    let held: EquivocationEvidence[] = [
      {
        kind: 'model',
        round: 7,
        sender: 'equivocator',
        first: signed('a'.repeat(64)),
        second: signed('b'.repeat(64)),
      },
    ]
    let takes = 0
    const url = new URL(nats.url)
    url.username = 'server-0'
    url.password = 's0-secret'
    const control = await attachControlPlane({
      config: clusterConfigSchema.parse({ cluster, natsUrl: url.toString() }),
      log: logger,
      nodeId: 'server-0',
      role: 'server',
      onChaos: () => {},
      self: { peerId, multiaddrs: [], sign: async (statement) => key.sign(statement) },
      takeEvidence: () => {
        takes++
        const taken = held
        held = []
        return taken
      },
    })
    cleanups.push(() => control.close())
    await control.connection!.connected()
    const round = (n: number) =>
      control.roundCompleted({
        nodeId: 'server-0',
        role: 'server',
        round: n,
        roundDurationSeconds: 0.1,
        quorumWaitSeconds: 0,
        cpuSeconds: 0.01,
        rejected: {},
        suspicions: [],
      })
    round(0)
    round(1)
    expect(takes).toBe(2)
    expect(held).toEqual([])
    const messages = subscription[Symbol.asyncIterator]()
    const first = await withGuard(messages.next(), 20_000, 'no evidence reached the observer')
    const decoded = decode('evidence', first.value!.data)
    expect(decoded.ok).toBe(true)
    const records: EquivocationRecord[] = decoded.ok ? [decoded.value] : []
    // Nothing else arrives: a probe published after the rounds is the next message seen.
    const probe = await connect({ servers: nats.url, user: 'server-0', pass: 's0-secret' })
    cleanups.push(() => probe.close())
    probe.publish(clusterSubjects(cluster).evidence('server-0'), 'probe')
    await probe.flush()
    expect((await withGuard(messages.next(), 20_000, 'the probe did not arrive')).value!.string()).toBe(
      'probe',
    )
    const record = records[0]!
    expect(record).toMatchObject({
      nodeId: 'server-0',
      peerId,
      kind: 'model',
      round: 7,
      sender: 'equivocator',
    })
    expect(record.first.seqno).toBe('42')
    const signature = Buffer.from(record.signature, 'base64url')
    expect(await verifyPeerSignature(peerId, evidenceStatement(record), signature)).toBe(true)
    // A record altered in transit does not verify.
    expect(await verifyPeerSignature(peerId, evidenceStatement({ ...record, round: 8 }), signature)).toBe(
      false,
    )
  })
})

/** A failure guard for an awaited message, never a measurement. */
function withGuard<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer))
}
