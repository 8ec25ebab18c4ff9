/**
 * `phalanx local`: a whole cluster on this machine, one OS process per server and worker,
 * real libp2p over TCP on loopback. The parent generates every peer key up front (so the
 * member set is known and closed before anyone starts), starts the servers one by one (each
 * dials the ones before it), then the workers (they dial every server), and follows progress
 * over IPC to draw the per-round view and write the report.
 *
 * The run has its own operator key (`operator.pem` in the out dir, or in the work dir without one):
 * every node is pinned to its public key, so the operator's commands of this run (`phalanx chaos
 * --operator-key out/…/operator.pem`) work and nobody else's do. With `natsUrl` every node really
 * connects to that control plane (telemetry, chaos, membership KV, checkpoints), so `phalanx
 * watch`, `chaos` and `admit` work on a local cluster.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreateOperatorKey } from '@phalanx/control'
import { loadOrCreatePeerKey } from '@phalanx/net'
import {
  type ClusterConfig,
  checkClusterBounds,
  envName,
  isByzantine,
  listFields,
  medianOf,
  type NodeReport,
  replicationMode,
} from '@phalanx/node'
import type { Logger } from 'pino'
import { LocalClusterError } from './errors.js'
import { maxMeasured, type RoundRow, type RunSummary } from './outputs.js'
import { runProvenance } from './provenance.js'
import type { ReportDetail, RunEvent } from './report-html.js'

export interface LocalClusterInit {
  config: ClusterConfig
  log: Logger
  /** How to start one node: `[node, cli.js]`; the role (`server`/`worker`) is appended. */
  command: readonly [string, ...string[]]
  /** Called once per completed round with the cluster-wide view. */
  onRound?: (row: RoundRow) => void
  /** Start-up progress: called with 0 before the first node starts, then as each one listens. */
  onStartup?: (ready: number, total: number) => void
  /**
   * Stops the run (kills every child). What it did so far is still the result: the summary of the
   * rounds completed, `interrupted: 'aborted'` (the CLI writes the signal's name instead).
   */
  signal?: AbortSignal
  /** Every report of every node, with the node's process id (a benchmark kills a server by it). */
  onNodeReport?: (nodeId: string, message: NodeReport, pid: number | undefined) => void
  /** A round that makes no progress for this long fails the run (default: 4 quorum timeouts). */
  stallTimeoutMs?: number
}

export interface LocalClusterResult {
  summary: RunSummary
  rows: RoundRow[]
  /** Where each node's log went. */
  logDir: string
  /** For the report: each honest server's accuracy and loss per round, and the nodes' exits. */
  detail: ReportDetail
}

interface Child {
  nodeId: string
  process: ChildProcess
  peerId: string
  byzantine: boolean
  /** Where it listens, from its 'listening' report. */
  multiaddrs: string[]
}

/** Rounds whose CPU is left out of `cpuSecondsPerRound`: the first ones carry the start-up. */
const cpuSkipRounds = 3

/** The config as `PHALANX_*` variables: how `phalanx local` hands a node its settings. */
export function configEnv(config: ClusterConfig, overrides: Partial<ClusterConfig>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [field, value] of Object.entries({ ...config, ...overrides })) {
    if (value === undefined || field === 'out') continue
    env[envName(field)] = listFields.has(field) ? (value as string[]).join(',') : String(value)
  }
  return env
}

export async function runLocalCluster(init: LocalClusterInit): Promise<LocalClusterResult> {
  const { config, log } = init
  checkClusterBounds(config)
  const started = performance.now()
  const startedAt = new Date()
  const work = mkdtempSync(join(tmpdir(), 'phalanx-local-'))
  const logDir = config.out === undefined ? join(work, 'logs') : join(config.out, 'logs')
  mkdirSync(logDir, { recursive: true })
  const serverIds = Array.from({ length: config.servers }, (_, i) => `server-${i}`)
  const workerIds = Array.from({ length: config.workers }, (_, i) => `worker-${i}`)
  const nodeIds = [...serverIds, ...workerIds]

  const peerIds = new Map<string, string>()
  for (const nodeId of nodeIds) {
    const { key } = await loadOrCreatePeerKey(join(work, `${nodeId}.key`))
    peerIds.set(nodeId, peerIdFromPrivateKey(key).toString())
  }
  const members = nodeIds.map((nodeId) => `${nodeId}:${peerIds.get(nodeId)}`)
  // A run pinned to a key it was given (`operatorPublicKey`) keeps it: the operator holds the
  // private half elsewhere. Otherwise the run makes its own and keeps it with its artefacts.
  const operatorKeyFile = join(config.out ?? work, 'operator.pem')
  const operatorPublicKey =
    config.operatorPublicKey ?? (await loadOrCreateOperatorKey(operatorKeyFile)).publicKey
  if (config.operatorPublicKey === undefined) {
    log.info(
      { operatorKeyFile, operatorPublicKey },
      'operator key of this run (signs chaos and admit commands)',
    )
  }
  const honestServerPeers = new Set(
    serverIds.filter((id) => !isByzantine(config, id)).map((id) => peerIds.get(id)!),
  )

  const children: Child[] = []
  const rows = new Map<number, RoundRow>()
  const accuracies = new Map<number, number[]>()
  const losses = new Map<number, number[]>()
  const drifts = new Map<number, number>()
  // Rejections in each round, every node's (its record of round r says what it rejected in r).
  const rejectedInRound = new Map<number, number>()
  const rejectedByNode = new Map<string, Record<string, number>>()
  const perServer = new Map<string, { round: number; accuracy?: number; loss?: number }[]>()
  const events: RunEvent[] = []
  // CPU seconds per round of the honest nodes, by role, past the first rounds (which carry the
  // start-up: module loading, first compilation, connection set-up).
  const cpuByRole: Record<'server' | 'worker', number[]> = { server: [], worker: [] }
  const doneServers = new Map<
    string,
    { accuracy?: number | undefined; loss?: number | undefined; modelSha256?: string | undefined }
  >()
  // When each honest server last reported a round: an honest straggler that the others left
  // behind (they need only N−F models) must not hold the whole run forever.
  const lastReportAt = new Map<string, number>()
  let backend = 'unknown'
  let lastProgress = performance.now()
  let emittedRound = -1
  const honestServerCount = [...honestServerPeers].length

  const rejectedTotal = (): Record<string, number> => {
    const total: Record<string, number> = {}
    for (const counts of rejectedByNode.values()) {
      for (const [reason, count] of Object.entries(counts)) total[reason] = (total[reason] ?? 0) + count
    }
    return total
  }

  // A round is complete when every honest server has reported it.
  const serverRoundsSeen = new Map<number, number>()
  let newestReported = -1
  const stragglers: string[] = []
  const onServerRound = (message: Extract<NodeReport, { type: 'round' }>, child: Child) => {
    if (child.byzantine) return
    lastReportAt.set(child.nodeId, performance.now())
    const { round } = message
    if (message.accuracy !== undefined)
      accuracies.set(round, [...(accuracies.get(round) ?? []), message.accuracy])
    if (message.loss !== undefined) losses.set(round, [...(losses.get(round) ?? []), message.loss])
    if (message.accuracy !== undefined || message.loss !== undefined) {
      const points = perServer.get(child.nodeId) ?? []
      perServer.set(child.nodeId, points)
      points.push({
        round,
        ...(message.accuracy === undefined ? {} : { accuracy: message.accuracy }),
        ...(message.loss === undefined ? {} : { loss: message.loss }),
      })
    }
    for (const [peer, distance] of Object.entries(message.modelDistances ?? {})) {
      if (!honestServerPeers.has(peer)) continue
      drifts.set(round, Math.max(drifts.get(round) ?? 0, distance))
    }
    serverRoundsSeen.set(round, (serverRoundsSeen.get(round) ?? 0) + 1)
    newestReported = Math.max(newestReported, round)
    // A round is complete once every honest server reported it, or once the cluster is two
    // rounds past it (an honest straggler that caught up from the median skipped it).
    emitCompleteRounds(message.roundDurationSeconds)
  }
  let flushing = false
  const emitCompleteRounds = (roundSeconds: number | undefined) => {
    while (
      (serverRoundsSeen.get(emittedRound + 1) ?? 0) >= honestServerCount ||
      ((flushing || emittedRound + 1 <= newestReported - 2) && serverRoundsSeen.has(emittedRound + 1))
    ) {
      emittedRound++
      const accuracy = accuracies.get(emittedRound)
      const loss = losses.get(emittedRound)
      const row: RoundRow = {
        round: emittedRound,
        honestAccuracy: accuracy ? accuracy.reduce((a, b) => a + b, 0) / accuracy.length : undefined,
        honestLoss: loss ? loss.reduce((a, b) => a + b, 0) / loss.length : undefined,
        // One honest server has no other to be distant from, and a round whose honest servers
        // reported no distance to each other measured none: unmeasured, not 0.
        maxHonestDrift: honestServerCount >= 2 ? drifts.get(emittedRound) : undefined,
        // A record of this round that comes after the row still counts: it is added to the row
        // (below), which the report is written from.
        rejectedMessages: rejectedInRound.get(emittedRound) ?? 0,
        roundSeconds,
      }
      rows.set(emittedRound, row)
      lastProgress = performance.now()
      init.onRound?.(row)
    }
  }

  const failure = new AbortController()
  let listening = 0
  const spawnNode = (nodeId: string, bootstrap: string[]): Promise<Child> =>
    new Promise((resolve, reject) => {
      if (init.signal?.aborted) {
        reject(init.signal.reason)
        return
      }
      const logFile = openSync(join(logDir, `${nodeId}.log`), 'a')
      const env = {
        ...process.env,
        ...configEnv(config, {
          nodeId,
          members,
          bootstrap,
          keyFile: join(work, `${nodeId}.key`),
          listen: ['/ip4/127.0.0.1/tcp/0'],
          operatorPublicKey,
          // Every child would bind the same port; local runs report over IPC instead.
          opsPort: 0,
        }),
      }
      const [execPath, ...args] = init.command
      const role = nodeId.startsWith('server') ? 'server' : 'worker'
      const child = fork(args[0]!, [...args.slice(1), role], {
        execPath,
        env,
        stdio: ['ignore', logFile, logFile, 'ipc'],
      })
      const entry: Child = {
        nodeId,
        process: child,
        peerId: peerIds.get(nodeId)!,
        byzantine: isByzantine(config, nodeId),
        multiaddrs: [],
      }
      children.push(entry)
      child.on('message', (raw) => {
        const message = raw as NodeReport
        init.onNodeReport?.(nodeId, message, child.pid)
        switch (message.type) {
          case 'listening':
            entry.multiaddrs = message.multiaddrs.map((address) =>
              address.includes('/p2p/') ? address : `${address}/p2p/${message.peerId}`,
            )
            listening++
            init.onStartup?.(listening, nodeIds.length)
            resolve(entry)
            break
          case 'started':
            if (message.backend !== undefined) backend = message.backend
            break
          case 'round': {
            rejectedByNode.set(nodeId, message.rejectedSinceStart)
            const rejected = Object.values(message.rejected).reduce((a, b) => a + b, 0)
            rejectedInRound.set(message.round, (rejectedInRound.get(message.round) ?? 0) + rejected)
            const row = rows.get(message.round)
            if (row !== undefined) row.rejectedMessages = (row.rejectedMessages ?? 0) + rejected
            if (!entry.byzantine && message.round >= cpuSkipRounds) cpuByRole[role].push(message.cpuSeconds)
            if (role === 'server') onServerRound(message, entry)
            break
          }
          case 'done':
            if (role === 'server' && !entry.byzantine) doneServers.set(nodeId, message)
            break
          case 'chaos':
            events.push({ round: message.round, kind: 'chaos', label: `${nodeId}: ${message.command}` })
            break
        }
      })
      child.on('exit', (code, signal) => {
        // Stopped by the caller: whoever awaits this node's start-up stops waiting.
        if (init.signal?.aborted) reject(init.signal.reason)
        const expected = stopping || doneServers.has(nodeId) || failure.signal.aborted || init.signal?.aborted
        // A Byzantine node may crash on purpose once running, but every node must start.
        const started = entry.multiaddrs.length > 0
        if (!expected && started) {
          events.push({
            round: emittedRound + 1,
            kind: 'node',
            label: `${nodeId}${entry.byzantine ? ' (Byzantine)' : ''} exited (code ${code}, signal ${signal})`,
          })
        }
        if (code !== 0 && !expected && (!entry.byzantine || !started)) {
          const error = new LocalClusterError(
            `${nodeId} exited (code ${code}, signal ${signal}); see ${join(logDir, `${nodeId}.log`)}`,
            {
              nodeId,
              exitCode: code,
            },
          )
          reject(error)
          failure.abort(error)
        }
      })
    })

  let stopping = false
  const killAll = () => {
    stopping = true
    for (const child of children) if (child.process.exitCode === null) child.process.kill('SIGKILL')
  }
  const onAbort = () => {
    killAll()
    failure.abort(init.signal?.reason)
  }
  init.signal?.addEventListener('abort', onAbort, { once: true })
  // However this process ends (a second Ctrl-C exits at once), no node outlives it.
  process.once('exit', killAll)

  try {
    init.onStartup?.(0, nodeIds.length)
    await replicationMode(config.replication).beforeRun?.(config, log)
    const serverAddresses: string[] = []
    for (const nodeId of serverIds) {
      const child = await spawnNode(nodeId, [...serverAddresses])
      serverAddresses.push(...child.multiaddrs)
    }
    log.info({ servers: serverIds.length }, 'servers listening; starting workers')
    await Promise.all(workerIds.map((nodeId) => spawnNode(nodeId, serverAddresses)))
    log.info({ workers: workerIds.length }, 'all nodes started')
    // Start-up (sequential servers, tfjs loading) is not a stalled round: on a loaded machine
    // it alone can outlast a short stall timeout.
    lastProgress = performance.now()

    const stallTimeoutMs = init.stallTimeoutMs ?? 4 * config.quorumTimeoutMs
    const stragglerGraceMs = Math.min(stallTimeoutMs / 2, 20_000)
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const now = performance.now()
        const straggling = serverIds.filter(
          (id) =>
            !isByzantine(config, id) &&
            !doneServers.has(id) &&
            now - (lastReportAt.get(id) ?? 0) > stragglerGraceMs,
        )
        if (doneServers.size > 0 && doneServers.size + straggling.length >= honestServerCount) {
          stragglers.push(...straggling)
          // What the finished servers reported is complete without the stragglers.
          flushing = true
          emitCompleteRounds(undefined)
          if (straggling.length > 0)
            log.warn({ stragglers: straggling }, 'finishing without honest stragglers')
          clearInterval(timer)
          resolve()
        } else if (performance.now() - lastProgress > stallTimeoutMs) {
          clearInterval(timer)
          reject(
            new LocalClusterError(
              `no round completed for ${stallTimeoutMs} ms (last complete round ${emittedRound})`,
              {
                nodeId: 'cluster',
                exitCode: null,
              },
            ),
          )
        }
      }, 200)
      failure.signal.addEventListener('abort', () => {
        clearInterval(timer)
        reject(failure.signal.reason)
      })
    })
  } catch (error) {
    // Stopped by the caller: the rounds done so far are the result.
    if (!init.signal?.aborted) throw error
    log.warn({ rounds: rows.size }, 'run interrupted; summarising the rounds done')
  } finally {
    init.signal?.removeEventListener('abort', onAbort)
    process.removeListener('exit', killAll)
    killAll()
    // The work dir holds the nodes' private peer keys (and, without `out`, their logs): none of it
    // outlives the run (it was left in the temp dir whenever `out` was set).
    rmSync(work, { recursive: true, force: true })
  }

  const finals = [...doneServers.values()]
  const finalAccuracies = finals.map((f) => f.accuracy).filter((a): a is number => a !== undefined)
  const finalLosses = finals.map((f) => f.loss).filter((l): l is number => l !== undefined)
  const mean = (values: number[]) =>
    values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length
  const orderedRows = [...rows.values()].sort((a, b) => a.round - b.round)
  const interrupted = init.signal?.aborted === true
  // Interrupted before any server finished: the last accuracy and loss the honest servers measured.
  const lastMeasured = (key: 'honestAccuracy' | 'honestLoss') =>
    orderedRows.findLast((row) => row[key] !== undefined)?.[key] ?? null
  const finalModelSha256ByServer = Object.fromEntries(
    [...doneServers].flatMap(([nodeId, done]) =>
      done.modelSha256 === undefined ? [] : [[nodeId, done.modelSha256] as const],
    ),
  )
  const finalHashes = new Set(Object.values(finalModelSha256ByServer))
  for (const nodeId of stragglers) {
    events.push({
      round: emittedRound,
      kind: 'node',
      label: `${nodeId} straggling: the run finished without it`,
    })
  }
  return {
    rows: orderedRows,
    logDir,
    detail: {
      servers: [...perServer]
        .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
        .map(([nodeId, points]) => ({ nodeId, byzantine: false, points })),
      events,
    },
    summary: {
      mode: 'local-cluster',
      provenance: runProvenance({ seed: config.seed, startedAt }),
      honestAccuracy: mean(finalAccuracies) ?? (interrupted ? lastMeasured('honestAccuracy') : null),
      honestLoss: mean(finalLosses) ?? (interrupted ? lastMeasured('honestLoss') : null),
      finalModelSha256: finalHashes.size === 1 ? [...finalHashes][0]! : null,
      /** Each honest server's final model that finished, as `modelSha256`. */
      finalModelSha256ByServer,
      rounds: orderedRows.length,
      wallSeconds: (performance.now() - started) / 1000,
      maxHonestDrift: maxMeasured(orderedRows.map((row) => row.maxHonestDrift)),
      rejectedMessages: rejectedTotal(),
      backend,
      // Present only when the caller stopped it: the summary is that of the rounds completed.
      ...(interrupted ? { interrupted: 'aborted' as const } : {}),
      /** Honest servers still behind when the others had finished (reported, not hidden). */
      stragglers,
      /**
       * (Lower) median CPU seconds an honest node of each role used per round (`null`: no round past the
       * start-up): the cost a node would put on a machine of its own.
       */
      cpuSecondsPerRound: {
        server: medianOf(cpuByRole.server) ?? null,
        worker: medianOf(cpuByRole.worker) ?? null,
      },
      config: { ...config },
    },
  }
}
