/**
 * Failpoints for crash tests (in the manner of TiKV's fail-rs): named places on the
 * save-then-publish path where a test makes a real server process die with SIGKILL, so a
 * Jepsen-style test can put the crash exactly between two durable steps instead of hoping a
 * random kill lands there.
 *
 * TEST-ONLY. Read once at start-up from `PHALANX_FAILPOINTS` (not part of the config schema on
 * purpose: no config file, flag or manifest should ever be able to set it), e.g.
 * `PHALANX_FAILPOINTS=after-save:crash@7,after-publish:crash@12`: die on the 7th pass through
 * `after-save`, or the 12th through `after-publish`, whichever comes first. Unset (every real
 * deployment), every `hit` is a no-op.
 */
import { ConfigError } from './errors.js'

/** The points, in the order one round passes them. */
export const failpointNames = [
  /** The next round's model is computed; nothing of it is on disk yet. */
  'before-save',
  /** The state file holds the next round's model; no signature of it exists yet. */
  'after-save',
  /** The signed-round watermark names the round; the model is not yet published. */
  'after-watermark',
  /** The signed model is handed to the network. */
  'after-publish',
] as const
export type FailpointName = (typeof failpointNames)[number]

export interface Failpoints {
  /** Passes the point; SIGKILLs this process when a configured count is reached. */
  hit(name: FailpointName): void
}

export const noFailpoints: Failpoints = { hit: () => undefined }

/** Parses `PHALANX_FAILPOINTS`; throws a ConfigError naming the entry that is malformed. */
export function parseFailpoints(text: string | undefined): Failpoints {
  if (text === undefined || text.trim() === '') return noFailpoints
  const crashAt = new Map<FailpointName, number>()
  for (const entry of text.split(',')) {
    const match = /^([a-z-]+):crash@([1-9]\d{0,8})$/.exec(entry.trim())
    const name = match?.[1] as FailpointName | undefined
    if (match === null || name === undefined || !failpointNames.includes(name)) {
      throw new ConfigError('PHALANX_FAILPOINTS entry is malformed', {
        field: 'PHALANX_FAILPOINTS',
        value: entry,
        allowed: `<${failpointNames.join('|')}>:crash@<n ≥ 1>`,
      })
    }
    crashAt.set(name, Number(match[2]))
  }
  const passes = new Map<FailpointName, number>()
  return {
    hit(name) {
      const at = crashAt.get(name)
      if (at === undefined) return
      const count = (passes.get(name) ?? 0) + 1
      passes.set(name, count)
      // SIGKILL, not exit: no handler, no flush, no finally — what a power cut or OOM kill leaves.
      if (count === at) process.kill(process.pid, 'SIGKILL')
    },
  }
}
