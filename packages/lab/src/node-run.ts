/**
 * One `phalanx server` or `phalanx worker` with its own artefacts: with `out` set, the node's
 * `summary.json`, `rounds.csv` and `report.html` (the schemas of `outputs.ts`, from this node's
 * own view: its evaluations, its distances to the honest servers it knows, its rejections), written
 * once its training is done and again, with the rounds it did, when it stops before that. Without
 * `out` it is `runNodeProcess` itself. The node package holds no report writer (a node process
 * never imports lab), so the wrapper is here, fed by the reports the node already makes.
 */
import { mkdirSync } from 'node:fs'
import {
  type ClusterConfig,
  configuredMembers,
  isByzantine,
  medianOf,
  type NodeProcessInit,
  type NodeReport,
  roleOf,
  runNodeProcess,
} from '@phalanx/node'
import { maxMeasured, type RoundRow, type RunSummary } from './outputs.js'
import { runProvenance } from './provenance.js'
import { writeRunReport } from './run-report.js'

/** Rounds whose CPU is left out of `cpuSecondsPerRound` (as `phalanx local`): the first ones carry the start-up. */
const cpuSkipRounds = 3

type RoundReport = Extract<NodeReport, { type: 'round' }>

/** What a node's reports add up to: its rows and its summary so far. */
export interface NodeRecorder {
  add(message: NodeReport): void
  rows(): RoundRow[]
  summary(): RunSummary
}

export function createNodeRecorder(config: ClusterConfig, startedAt: Date): NodeRecorder {
  const nodeId = config.nodeId ?? 'unknown'
  const role = roleOf(nodeId)
  const byzantine = isByzantine(config, nodeId)
  // The honest servers this node knows by peer id: drift is measured to those only.
  const honestPeers = new Set(
    configuredMembers(config)
      .filter(
        (member) =>
          member.role === 'server' && member.nodeId !== nodeId && !isByzantine(config, member.nodeId),
      )
      .map((member) => member.peerId),
  )
  const started = performance.now()
  const rows = new Map<number, RoundRow>()
  const cpu: number[] = []
  let last: RoundReport | undefined
  let done: Extract<NodeReport, { type: 'done' }> | undefined
  let backend = 'unknown'
  const evaluates = role === 'server' && !byzantine

  const rowOf = (message: RoundReport): RoundRow => {
    const distances = Object.entries(message.modelDistances ?? {})
      .filter(([peer]) => honestPeers.has(peer))
      .map(([, distance]) => distance)
    return {
      round: message.round,
      honestAccuracy: evaluates ? message.accuracy : undefined,
      honestLoss: evaluates ? message.loss : undefined,
      maxHonestDrift: evaluates && distances.length > 0 ? Math.max(...distances) : undefined,
      rejectedMessages: Object.values(message.rejected).reduce((a, b) => a + b, 0),
      roundSeconds: message.roundDurationSeconds,
    }
  }

  return {
    add(message) {
      if (message.type === 'started' && message.backend !== undefined) backend = message.backend
      if (message.type === 'done') done = message
      if (message.type !== 'round') return
      rows.set(message.round, rowOf(message))
      last = message
      if (message.round >= cpuSkipRounds) cpu.push(message.cpuSeconds)
    },
    rows: () => [...rows.values()].sort((a, b) => a.round - b.round),
    summary() {
      const ordered = [...rows.values()]
      const finalAccuracy = evaluates ? (done?.accuracy ?? null) : null
      return {
        mode: 'node-process',
        provenance: runProvenance({ seed: config.seed, startedAt }),
        nodeId,
        role,
        byzantine,
        honestAccuracy: finalAccuracy,
        honestLoss: evaluates ? (done?.loss ?? null) : null,
        ...(role === 'server' && evaluates && done?.modelSha256 !== undefined
          ? { finalModelSha256: done.modelSha256, finalModelSha256ByServer: { [nodeId]: done.modelSha256 } }
          : {}),
        rounds: ordered.length,
        wallSeconds: (performance.now() - started) / 1000,
        maxHonestDrift: maxMeasured(ordered.map((row) => row.maxHonestDrift)),
        rejectedMessages: { ...(last?.rejectedSinceStart ?? {}) },
        backend,
        cpuSecondsPerRound: { [role]: medianOf(cpu) ?? null },
        config: { ...config },
      }
    },
  }
}

/** The title of a node's report page. */
function nodeTitle(config: ClusterConfig): string {
  const nodeId = config.nodeId ?? 'unknown'
  const role = roleOf(nodeId)
  const attack = role === 'server' ? config.serverAttack : config.workerAttack
  const kind = isByzantine(config, nodeId) ? `Byzantine, ${attack}` : 'honest'
  return `phalanx ${role} ${nodeId} (${kind}): N=${config.servers}, n=${config.workers}, ${config.rule}, ${config.model}/${config.dataset}`
}

/**
 * `runNodeProcess`, writing the node's artefacts into `config.out` when it is set: when training is
 * done (the node then serves until stopped) and, if it stops before, with the rounds it did.
 */
export async function runNodeWithOutputs(init: NodeProcessInit): Promise<void> {
  const { config, log } = init
  const out = config.out
  if (out === undefined) return runNodeProcess(init)
  // Before any work: an out dir that cannot be made fails the start, not the end.
  mkdirSync(out, { recursive: true })
  const recorder = createNodeRecorder(config, new Date())
  let written = false
  const write = () => {
    writeRunReport(out, nodeTitle(config), recorder.summary(), recorder.rows())
    written = true
    log.info({ out }, 'wrote summary.json, rounds.csv, report.html')
  }
  try {
    await runNodeProcess({
      ...init,
      report: (message) => {
        recorder.add(message)
        // Written before 'done' goes on, so whoever hears it finds the files.
        if (message.type === 'done') {
          try {
            write()
          } catch (error) {
            // The node still serves its last vectors to its peers; the final write below retries.
            written = false
            log.error({ err: error, out }, 'could not write the node report')
          }
        }
        return init.report?.(message)
      },
    })
  } finally {
    // Stopped before its training was done (or the write then failed): what it did, if anything.
    if (!written && recorder.rows().length > 0) write()
  }
}
