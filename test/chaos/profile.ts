/**
 * The two chaos profiles. `short` runs under `npm test` (one seed, a few rounds per fault, one
 * cluster for every scenario to pay start-up once); `long` is `npm run chaos` (more seeds, more
 * rounds, repeated kills). Selected by `PHALANX_CHAOS_PROFILE`.
 */
export interface ChaosProfile {
  name: 'short' | 'long'
  /** One fresh cluster per seed; every random choice of a run derives from its seed. */
  seeds: number[]
  /** Fault-free rounds first: their drift and accuracy are the yardstick the faults are held to. */
  baselineRounds: number
  /** Rounds each attack or fault phase lasts once in effect; at least PHALANX_EVAL_EVERY (5), so
   * every phase ends with an evaluated accuracy. */
  phaseRounds: number
  /** How many times a random server (up to F at once) is SIGKILLed and restarted. */
  kills: number
  /** Where the table goes as JSON and markdown. */
  out: string | undefined
  /** Keep the node logs after a pass too (`PHALANX_CHAOS_KEEP_LOGS=1`), to trace what the table shows. */
  keepLogs: boolean
}

export const chaosProfiles: Record<ChaosProfile['name'], ChaosProfile> = {
  short: {
    name: 'short',
    seeds: [1],
    baselineRounds: 10,
    phaseRounds: 5,
    kills: 1,
    out: undefined,
    keepLogs: false,
  },
  long: {
    name: 'long',
    seeds: [1, 2],
    baselineRounds: 30,
    phaseRounds: 20,
    kills: 3,
    out: 'out/chaos',
    keepLogs: false,
  },
}

export function chaosProfile(env: NodeJS.ProcessEnv = process.env): ChaosProfile {
  const name = env.PHALANX_CHAOS_PROFILE ?? 'short'
  if (name !== 'short' && name !== 'long') {
    throw new Error(`PHALANX_CHAOS_PROFILE must be short or long, got ${JSON.stringify(name)}`)
  }
  const profile = chaosProfiles[name]
  const out = env.PHALANX_CHAOS_OUT ?? profile.out
  return {
    ...profile,
    ...(out === undefined ? {} : { out }),
    keepLogs: env.PHALANX_CHAOS_KEEP_LOGS === '1',
  }
}
