/**
 * Real `phalanx server|worker` processes for system tests, configured through `PHALANX_*` the way a
 * container is: each forked with an IPC channel (the node's reports arrive as messages) and its log
 * in a file of the test's work dir. Waits are on reports and log lines, never on fixed delays.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreatePeerKey } from '@phalanx/net'
import type { NodeReport } from '@phalanx/node'
import { cliPath } from './cli.js'

/** A small, fast cluster's settings shared by every node (linear regression, CPU backend). */
export const fastTrainingEnv: Readonly<Record<string, string>> = {
  PHALANX_LOG_LEVEL: 'info',
  PHALANX_RULE: 'average',
  PHALANX_MODEL: 'linear',
  PHALANX_DATASET: 'synthetic',
  PHALANX_BACKEND: 'cpu',
  PHALANX_MOMENTUM: '0',
  // Half squared error on x ~ N(0, I_100) with batch 32 has curvature up to ~7.6 per batch:
  // η = 1 (the classification default) diverges near round 376, which CI once reached.
  PHALANX_LEARNING_RATE: '0.1',
  // Enough rounds to outlast every check; the nodes then serve until killed.
  PHALANX_ROUNDS: '100000',
  PHALANX_LISTEN: '/ip4/127.0.0.1/tcp/0',
}

export interface NodeHandle {
  readonly nodeId: string
  readonly process: ChildProcess
  /** Every report received so far, in order. */
  readonly reports: NodeReport[]
  /** Resolves with the node's dialable addresses once it listens; rejects if it exits first. */
  readonly listening: Promise<string[]>
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** The first report (already received or to come) that matches; rejects after `timeoutMs`. */
  reportUntil<R extends NodeReport>(
    predicate: (report: NodeReport) => report is R,
    timeoutMs?: number,
  ): Promise<R>
  reportUntil(predicate: (report: NodeReport) => boolean, timeoutMs?: number): Promise<NodeReport>
  /** Round reports of this node so far. */
  rounds(): Extract<NodeReport, { type: 'round' }>[]
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>
}

export interface ForkNodeInit {
  work: string
  nodeId: string
  env: Record<string, string>
}

/** Writes (or reads) `<nodeId>.key` in `work` and returns the peer id of each node. */
export async function peerIdsOf(work: string, nodeIds: readonly string[]): Promise<Map<string, string>> {
  const peerIds = new Map<string, string>()
  for (const nodeId of nodeIds) {
    const { key } = await loadOrCreatePeerKey(keyFileOf(work, nodeId))
    peerIds.set(nodeId, peerIdFromPrivateKey(key).toString())
  }
  return peerIds
}

export const keyFileOf = (work: string, nodeId: string): string => join(work, `${nodeId}.key`)
export const logFileOf = (work: string, nodeId: string): string => join(work, `${nodeId}.log`)

export function forkNode(init: ForkNodeInit): NodeHandle {
  const { work, nodeId } = init
  // Appended to: a restarted node's log follows its first life's.
  const log = openSync(logFileOf(work, nodeId), 'a')
  const child = fork(cliPath, [nodeId.split('-')[0]!], {
    stdio: ['ignore', log, log, 'ipc'],
    env: {
      ...process.env,
      ...fastTrainingEnv,
      PHALANX_NODE_ID: nodeId,
      PHALANX_KEY_FILE: keyFileOf(work, nodeId),
      ...init.env,
    },
  })
  // The child holds its own copy of the descriptor.
  closeSync(log)
  const reports: NodeReport[] = []
  const waiters = new Set<() => void>()
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      resolve({ code, signal })
      for (const wake of [...waiters]) wake()
    }),
  )
  child.on('message', (message: NodeReport) => {
    reports.push(message)
    for (const wake of [...waiters]) wake()
  })

  const reportUntil = (predicate: (report: NodeReport) => boolean, timeoutMs = 120_000) =>
    new Promise<NodeReport>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(
          new Error(`${nodeId}: no matching report within ${timeoutMs} ms; see ${logFileOf(work, nodeId)}`),
        )
      }, timeoutMs)
      function check() {
        const found = reports.find(predicate)
        const dead = child.exitCode !== null || child.signalCode !== null
        if (found === undefined && !dead) return
        waiters.delete(check)
        clearTimeout(timer)
        if (found !== undefined) resolve(found)
        else reject(new Error(`${nodeId} exited (${child.exitCode ?? child.signalCode}); see its log`))
      }
      waiters.add(check)
      check()
    })

  const listening = reportUntil((report) => report.type === 'listening').then((report) => {
    const { peerId, multiaddrs } = report as Extract<NodeReport, { type: 'listening' }>
    return multiaddrs.map((address) => (address.includes('/p2p/') ? address : `${address}/p2p/${peerId}`))
  })
  // A test that never awaits `listening` (it kills first) must not see an unhandled rejection.
  listening.catch(() => undefined)

  return {
    nodeId,
    process: child,
    reports,
    listening,
    exited,
    reportUntil: reportUntil as NodeHandle['reportUntil'],
    rounds: () => reports.filter((report) => report.type === 'round'),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    },
  }
}

/** The node's log lines as JSON objects (pino), skipping anything that is not JSON. */
export function logEntries(work: string, nodeId: string): Record<string, unknown>[] {
  return readFileSync(logFileOf(work, nodeId), 'utf8')
    .split('\n')
    .flatMap((line) => {
      if (!line.startsWith('{')) return []
      try {
        return [JSON.parse(line) as Record<string, unknown>]
      } catch {
        return []
      }
    })
}

/**
 * The log entries with message `msg` once `enough` holds over them; pino writes asynchronously, so
 * a line may land a moment after the event. Rejects after `timeoutMs`.
 */
export async function logUntil(
  work: string,
  nodeId: string,
  msg: string,
  enough: (entries: Record<string, unknown>[]) => boolean = (entries) => entries.length > 0,
  timeoutMs = 120_000,
): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const entries = logEntries(work, nodeId).filter((entry) => entry.msg === msg)
    if (enough(entries)) return entries
    if (Date.now() > deadline) {
      throw new Error(
        `${nodeId}: "${msg}" not logged as expected within ${timeoutMs} ms (${entries.length} seen)`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
