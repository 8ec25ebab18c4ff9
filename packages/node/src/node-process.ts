/**
 * One server or worker as a long-running process (what `phalanx server` / `phalanx worker`
 * and a container run), phase by phase: start-up (`node-startup.ts`: data plane up, model and
 * data loaded, control plane attached), where to start (`node-resume.ts`: saved state, or the
 * replication mode's join), the server or worker loop (`server-role.ts`, `worker-role.ts`,
 * through the mode), then serving its last vectors until stopped. Progress goes to the logger
 * and, when the process was started by `phalanx local`, to the parent over IPC.
 */
import { roleOfNodeId } from './control-plane.js'
import { startingPoint } from './node-resume.js'
import { type NodeProcessInit, startNode } from './node-startup.js'
import { retransmitEveryMs } from './protocol.js'
import { runServerRole } from './server-role.js'
import { runWorkerRole } from './worker-role.js'

export type { NodeReport } from './node-report.js'
export type { NodeProcessInit } from './node-startup.js'

/** A node's role is its id's prefix (one definition, in control-plane.ts, where members are parsed). */
export const roleOf = roleOfNodeId

export async function runNodeProcess(init: NodeProcessInit): Promise<void> {
  const started = await startNode(init)
  const { config, node, log, signal, role } = started
  try {
    const start = await startingPoint(started)
    if (role === 'server') await runServerRole(started, start)
    else await runWorkerRole(started, start)
    // Peers pull payloads from whoever announced them: a node that left right after its last
    // publish would take its last vector with it. It keeps serving until it is told to stop.
    // It also keeps re-announcing its last two rounds, so a straggler can still finish them.
    log.info({ rounds: config.rounds }, 'training finished; serving until stopped')
    const lastKind = role === 'server' ? 'model' : 'gradient'
    const linger = setInterval(() => {
      for (const round of [config.rounds - 2, config.rounds - 1]) {
        node
          .republish(lastKind, round)
          .catch((error: unknown) => log.debug({ err: error }, 'republish failed'))
      }
    }, retransmitEveryMs)
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve()
      signal.addEventListener('abort', () => resolve(), { once: true })
    })
    clearInterval(linger)
  } finally {
    await started.close()
  }
}
