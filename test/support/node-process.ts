/**
 * One real `phalanx server|worker` process, the piece every multi-process harness is built from:
 * forked from the built CLI with an IPC channel (the node's reports arrive as messages, the same
 * ones `phalanx local` reads), configured through `PHALANX_*` the way a container is, with its peer
 * key and log in the test's work dir. Waits are on reports and exits, never on fixed delays.
 */

import { type ChildProcess, fork } from 'node:child_process'
import { closeSync, openSync } from 'node:fs'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PhalanxError } from '@phalanx/errors'
import { loadOrCreatePeerKey } from '@phalanx/net'
import type { NodeReport } from '@phalanx/node'
import { cliPath } from './cli.js'

export type RoundReport = Extract<NodeReport, { type: 'round' }>
type ListeningReport = Extract<NodeReport, { type: 'listening' }>

const nodeProcessDefaults = {
  // Wasm and data loading take several seconds per node on a loaded 2-core machine, and a
  // joining node listens 2.5 s for announcements before it asks for models.
  listenTimeoutMs: 120_000,
  reportTimeoutMs: 120_000,
} as const

export interface NodeExit {
  code: number | null
  signal: NodeJS.Signals | null
}

/**
 * Conditions re-checked whenever `wake` is called, so a wait ends on the event that satisfies it
 * rather than on a polling interval.
 */
export class Waiters {
  readonly #checks = new Set<() => void>()

  /** Re-runs every pending check: call it whenever something a check looks at has changed. */
  wake(): void {
    for (const check of [...this.#checks]) check()
  }

  /** Resolves once `predicate` holds (checked now and on every `wake`); see `first`. */
  async until(predicate: () => boolean, timeoutMs: number, timeoutError: () => Error): Promise<void> {
    await this.first(() => predicate() || undefined, timeoutMs, timeoutError)
  }

  /**
   * Resolves with the first value other than `undefined` that `probe` returns (probed now and on
   * every `wake`); rejects with what `probe` throws, or with `timeoutError()` after `timeoutMs`.
   */
  first<T>(probe: () => T | undefined, timeoutMs: number, timeoutError: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const settle = (settleWith: () => void) => {
        this.#checks.delete(check)
        clearTimeout(timer)
        settleWith()
      }
      const timer = setTimeout(() => settle(() => reject(timeoutError())), timeoutMs)
      const check = () => {
        let found: T | undefined
        try {
          found = probe()
        } catch (error) {
          settle(() => reject(error))
          return
        }
        if (found !== undefined) settle(() => resolve(found))
      }
      this.#checks.add(check)
      check()
    })
  }
}

export class NodeStartError extends PhalanxError<
  'node_start_failed',
  { nodeId: string; exit?: { code: number | null; signal: string | null }; logFile: string }
> {
  override readonly name = 'NodeStartError'
  declare readonly nodeId: string
  /** How the process ended; undefined when it is still running but never listened. */
  declare readonly exit: NodeExit | undefined
  declare readonly logFile: string
  constructor(nodeId: string, exit: NodeExit | undefined, logFile: string) {
    super(
      'node_start_failed',
      { nodeId, logFile, ...(exit === undefined ? {} : { exit: { code: exit.code, signal: exit.signal } }) },
      {
        message:
          exit === undefined
            ? `${nodeId} did not listen within ${nodeProcessDefaults.listenTimeoutMs} ms; see ${logFile}`
            : `${nodeId} exited before listening (${exit.code ?? exit.signal}); see ${logFile}`,
      },
    )
  }
}

export interface NodeHandle {
  readonly nodeId: string
  readonly process: ChildProcess
  /** Every report received so far, in order. */
  readonly reports: readonly NodeReport[]
  /** The round reports among them, kept as they arrive: progress checks read them on every event. */
  readonly rounds: readonly RoundReport[]
  /** Resolves with the node's dialable addresses once it listens; rejects if it exits first. */
  readonly listening: Promise<string[]>
  readonly exited: Promise<NodeExit>
  /** The first report (already received or to come) that matches; rejects after `timeoutMs`. */
  reportUntil<R extends NodeReport>(
    predicate: (report: NodeReport) => report is R,
    timeoutMs?: number,
  ): Promise<R>
  reportUntil(predicate: (report: NodeReport) => boolean, timeoutMs?: number): Promise<NodeReport>
  running(): boolean
  /** SIGKILL (unless it already ended), then waits for the exit. */
  kill(): Promise<void>
}

export interface ForkNodeProcessInit {
  work: string
  nodeId: string
  /** `PHALANX_*` settings; the node id and key file are set here, but `env` overrides them. */
  env: Readonly<Record<string, string>>
  /** The environment underneath `env`; this process's when left out. */
  inherited?: NodeJS.ProcessEnv
  /** Called after every report and on exit, for a harness whose own waits look at its nodes. */
  onChange?: () => void
}

export const keyFileOf = (work: string, nodeId: string): string => join(work, `${nodeId}.key`)
export const logFileOf = (work: string, nodeId: string): string => join(work, `${nodeId}.log`)

/**
 * Writes (or reads) `<nodeId>.key` in `work` and returns the peer id of each node: generated up
 * front, the member set is closed and known to every node, late joiners included.
 */
export async function peerIdsOf(work: string, nodeIds: readonly string[]): Promise<Map<string, string>> {
  const peerIds = new Map<string, string>()
  for (const nodeId of nodeIds) {
    const { key } = await loadOrCreatePeerKey(keyFileOf(work, nodeId))
    peerIds.set(nodeId, peerIdFromPrivateKey(key).toString())
  }
  return peerIds
}

/** Forks `phalanx server` or `phalanx worker` (from the id's prefix) as node `nodeId`. */
export function forkNodeProcess(init: ForkNodeProcessInit): NodeHandle {
  const { work, nodeId } = init
  const logFile = logFileOf(work, nodeId)
  // Appended to: a restarted node's log follows its first life's.
  const log = openSync(logFile, 'a')
  const child = fork(cliPath, [nodeId.split('-')[0]!], {
    // Not vitest's own flags (`--conditions development`, its warning filter): a node runs the
    // command as a container does.
    execArgv: [],
    stdio: ['ignore', log, log, 'ipc'],
    env: {
      ...(init.inherited ?? process.env),
      PHALANX_NODE_ID: nodeId,
      PHALANX_KEY_FILE: keyFileOf(work, nodeId),
      ...init.env,
    },
  })
  // The child holds its own copy of the descriptor.
  closeSync(log)
  const reports: NodeReport[] = []
  const rounds: RoundReport[] = []
  const waiters = new Waiters()
  const changed = () => {
    waiters.wake()
    init.onChange?.()
  }
  const exited = new Promise<NodeExit>((resolve) =>
    child.once('exit', (code, signal) => {
      resolve({ code, signal })
      changed()
    }),
  )
  child.on('message', (message: NodeReport) => {
    reports.push(message)
    if (message.type === 'round') rounds.push(message)
    changed()
  })
  const running = () => child.exitCode === null && child.signalCode === null

  const reportUntil = (
    predicate: (report: NodeReport) => boolean,
    timeoutMs: number = nodeProcessDefaults.reportTimeoutMs,
  ) =>
    waiters.first(
      () => {
        const found = reports.find(predicate)
        if (found !== undefined || running()) return found
        throw new Error(`${nodeId} exited (${child.exitCode ?? child.signalCode}); see ${logFile}`)
      },
      timeoutMs,
      () => new Error(`${nodeId}: no matching report within ${timeoutMs} ms; see ${logFile}`),
    )

  const listening = waiters
    .first(
      () => {
        const report = reports.find((report): report is ListeningReport => report.type === 'listening')
        if (report !== undefined || running()) return report
        throw new NodeStartError(nodeId, { code: child.exitCode, signal: child.signalCode }, logFile)
      },
      nodeProcessDefaults.listenTimeoutMs,
      () => new NodeStartError(nodeId, undefined, logFile),
    )
    .then(({ peerId, multiaddrs }) =>
      multiaddrs.map((address) => (address.includes('/p2p/') ? address : `${address}/p2p/${peerId}`)),
    )
  // A caller that never awaits `listening` (it kills first) must not see an unhandled rejection.
  listening.catch(() => undefined)

  return {
    nodeId,
    process: child,
    reports,
    rounds,
    listening,
    exited,
    reportUntil: reportUntil as NodeHandle['reportUntil'],
    running,
    async kill() {
      if (running()) child.kill('SIGKILL')
      await exited
    },
  }
}
