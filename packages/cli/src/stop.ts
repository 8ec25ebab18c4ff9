/** SIGINT and SIGTERM: a run command ends cleanly on the first, at once on the second. */
import { type StopSignal, signalExitCodes } from './exit-codes.js'

/**
 * How a run command stops on SIGINT or SIGTERM: the first one aborts the run, which then ends
 * cleanly (a summary of the rounds done, exit code 130 or 143); a second one exits at once.
 */
export interface StopSignals {
  readonly signal: AbortSignal
  /** The signal received, if any. */
  received(): StopSignal | undefined
}

let processStop: StopSignals | undefined

/** The signal that stopped this process's run, if one did. */
export const stoppedBy = (): StopSignal | undefined => processStop?.received()

/** The process's one `StopSignals`, its handlers installed on first use. */
export function stopOnSignals(): StopSignals {
  processStop ??= listenForStop()
  return processStop
}

function listenForStop(): StopSignals {
  const controller = new AbortController()
  let received: StopSignal | undefined
  for (const name of Object.keys(signalExitCodes) as StopSignal[]) {
    process.on(name, () => {
      if (received !== undefined) process.exit(signalExitCodes[name])
      received = name
      controller.abort(new Error(`received ${name}`))
    })
  }
  return { signal: controller.signal, received: () => received }
}
