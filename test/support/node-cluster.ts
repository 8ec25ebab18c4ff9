/**
 * A small, fast cluster of real `phalanx server|worker` processes for system tests that start and
 * kill nodes themselves: every node trains linear regression on the CPU backend unless its `env`
 * says otherwise. Waits are on reports and log lines, never on fixed delays.
 */
import { readFileSync } from 'node:fs'
import { type ForkNodeProcessInit, forkNodeProcess, logFileOf, type NodeHandle } from './node-process.js'

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

/** A node with `fastTrainingEnv` under its own `env`. */
export function forkNode(init: Pick<ForkNodeProcessInit, 'work' | 'nodeId' | 'env'>): NodeHandle {
  return forkNodeProcess({ ...init, env: { ...fastTrainingEnv, ...init.env } })
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
 * The log entries with message `msg` (or any of several) once `enough` holds over them; pino
 * writes asynchronously, so a line may land a moment after the event. Rejects after `timeoutMs`.
 */
export async function logUntil(
  work: string,
  nodeId: string,
  msg: string | readonly string[],
  enough: (entries: Record<string, unknown>[]) => boolean = (entries) => entries.length > 0,
  timeoutMs = 120_000,
): Promise<Record<string, unknown>[]> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const entries = logEntries(work, nodeId).filter((entry) =>
      typeof msg === 'string' ? entry.msg === msg : msg.includes(String(entry.msg)),
    )
    if (enough(entries)) return entries
    if (Date.now() > deadline) {
      throw new Error(
        `${nodeId}: "${msg}" not logged as expected within ${timeoutMs} ms (${entries.length} seen)`,
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}
