/**
 * What a node does when it obeys a chaos command (the control plane decides whether it obeys at
 * all). Each action works through a seam the round protocol already has, so the protocol itself
 * knows nothing about chaos: the pause gate is awaited in `onRound`, `corrupt` swaps the
 * behaviour object the loops call, and `partition` makes the member set refuse everyone, which
 * the connection gater and the node's own hang-up-on-change already enforce.
 */
import type { ChaosCommand } from '@phalanx/control'
import type { MemberRole, Membership, NetNode } from '@phalanx/net'
import type { Logger } from 'pino'
import {
  attackStrengthFields,
  type ServerBehaviourName,
  serverBehaviourNames,
  serverBehaviours,
  type WorkerBehaviourName,
  workerBehaviourNames,
  workerBehaviours,
} from './byzantine.js'
import { type ClusterConfig, clusterConfigSchema } from './config.js'
import { ChaosActionError } from './errors.js'
import { honestServer, honestWorker, type ServerBehaviour, type WorkerBehaviour } from './protocol.js'
import { serverBehaviour, workerBehaviour } from './roles.js'

export interface ChaosActions {
  /** The member set the net node must use, so that a partition can empty it. */
  membership(inner: Membership): Membership
  /** Binds the started net node (hang-ups and redials need it). */
  attach(node: NetNode): void
  /** A server behaviour that follows `corrupt` commands; `base` is what the config asked for. */
  serverBehaviour(base: ServerBehaviour): ServerBehaviour
  workerBehaviour(base: WorkerBehaviour): WorkerBehaviour
  /** Awaited between rounds: resolves at once unless paused, else on resume or abort. */
  betweenRounds(signal: AbortSignal): Promise<void>
  execute(command: ChaosCommand): Promise<void>
  paused(): boolean
  partitioned(): boolean
  close(): void
}

export interface ChaosActionsInit {
  config: ClusterConfig
  log: Logger
  role: MemberRole
  /** Index that seeds a Byzantine behaviour (the node's `server-<i>`/`worker-<i>`). */
  index: number
  /**
   * Whether this worker receives the honest gradients of its round. Only workers configured
   * Byzantine subscribe to them; a worker corrupted at run time crafts from its own gradient
   * rather than wait every round for gradients that never come.
   */
  readsGradients: boolean
  /** How `kill` ends the process. */
  exit?: () => void
}

const CHAOS_ACTIONS_DEFAULTS = {
  // SIGKILL, not process.exit: a crash runs no clean-up, closes no libp2p stream politely and
  // leaves exit status 137 for the orchestrator, which is the fault the suite must survive.
  exit: () => process.kill(process.pid, 'SIGKILL'),
} as const

/** Worker behaviours a `corrupt` may switch on (label flipping poisons the shard before training
 * starts, so it cannot be switched on mid-run). */
const runtimeWorkerAttacks = workerBehaviourNames.filter((name) => workerBehaviours[name].runtime)

/**
 * The config a `corrupt` command's options ask for: `{ strength }` sets the attack's strength
 * field (`attackStrengthFields`), validated by the config schema as if it had been set at
 * start-up; no options keep the configured strength.
 */
function withStrength(
  config: ClusterConfig,
  attack: string,
  options: Record<string, unknown>,
): ClusterConfig {
  const unknown = Object.keys(options).find((key) => key !== 'strength')
  if (unknown !== undefined) {
    throw new ChaosActionError(`unknown corrupt option "${unknown}"`, {
      command: 'corrupt',
      reason: 'allowed: strength',
    })
  }
  if (options.strength === undefined) return config
  const field = (attackStrengthFields as Record<string, keyof ClusterConfig>)[attack]
  if (field === undefined) {
    throw new ChaosActionError(`attack "${attack}" has no strength to set`, {
      command: 'corrupt',
      reason: `attacks with a strength: ${Object.keys(attackStrengthFields).join(', ')}`,
    })
  }
  const parsed = clusterConfigSchema.shape[field].safeParse(options.strength)
  if (!parsed.success) {
    throw new ChaosActionError(
      `strength ${JSON.stringify(options.strength)} of "${attack}" is not a valid ${field}`,
      {
        command: 'corrupt',
        reason: parsed.error.issues[0]?.message ?? 'invalid',
      },
    )
  }
  return { ...config, [field]: parsed.data }
}

export function createChaosActions(init: ChaosActionsInit): ChaosActions {
  const exit = init.exit ?? CHAOS_ACTIONS_DEFAULTS.exit
  const log = init.log.child({ component: 'chaos-actions' })
  let node: NetNode | undefined
  let serverOverride: ServerBehaviour | undefined
  let workerOverride: WorkerBehaviour | undefined
  let resumeWaiters: (() => void)[] = []
  let isPaused = false
  let isPartitioned = false
  let healTimer: NodeJS.Timeout | undefined
  let peersBeforePartition: string[] = []
  const partitionListeners = new Set<() => void>()

  const notifyPartition = () => {
    for (const listener of partitionListeners) listener()
  }

  const heal = async (): Promise<void> => {
    clearTimeout(healTimer)
    healTimer = undefined
    if (!isPartitioned) return
    isPartitioned = false
    notifyPartition()
    const bound = node
    if (bound === undefined) return
    // Gossip only reaches connected peers, and neither side redials on its own: dial everyone we
    // were connected to (addresses are in the peer store) and the bootstrap list again.
    const dials = [
      // A peer that already redialed us is left alone (`redial` dials only the unconnected).
      ...peersBeforePartition.map((peer) => bound.redial(peer)),
      ...init.config.bootstrap.map((address) => bound.dial(address)),
    ]
    const results = await Promise.allSettled(dials)
    const failed = results.filter((result) => result.status === 'rejected').length
    log.warn({ redialed: dials.length, failed }, 'partition healed')
  }

  const partition = (durationMs: number): void => {
    const bound = node
    if (bound === undefined) {
      throw new ChaosActionError('partition needs a started node', {
        command: 'partition',
        reason: 'not started',
      })
    }
    if (!isPartitioned) peersBeforePartition = bound.connectedPeers()
    isPartitioned = true
    // The node closes every connection whose peer left a closed member set.
    notifyPartition()
    clearTimeout(healTimer)
    healTimer = setTimeout(() => void heal(), durationMs)
    healTimer.unref()
    log.warn({ durationMs, peers: peersBeforePartition.length }, 'partitioned: refusing every peer')
  }

  const corrupt = (attack: string, options: Record<string, unknown>): void => {
    if (init.role === 'server') {
      if (Object.keys(options).length > 0) {
        throw new ChaosActionError('server attacks take no corrupt options', {
          command: 'corrupt',
          reason: `got ${Object.keys(options).join(', ')}`,
        })
      }
      if (!Object.hasOwn(serverBehaviours, attack)) {
        throw new ChaosActionError(`unknown server attack "${attack}"`, {
          command: 'corrupt',
          reason: `allowed: ${serverBehaviourNames.join(', ')}`,
        })
      }
      serverOverride =
        attack === 'none'
          ? honestServer
          : serverBehaviour({ ...init.config, serverAttack: attack as ServerBehaviourName }, init.index)
    } else {
      if (!(runtimeWorkerAttacks as readonly string[]).includes(attack)) {
        throw new ChaosActionError(`worker attack "${attack}" cannot be switched on at run time`, {
          command: 'corrupt',
          reason: `allowed: ${runtimeWorkerAttacks.join(', ')}`,
        })
      }
      const config = withStrength(init.config, attack, options)
      workerOverride =
        attack === 'none'
          ? honestWorker
          : workerBehaviour({ ...config, workerAttack: attack as WorkerBehaviourName }, init.index)
    }
    log.warn({ attack, ...options }, attack === 'none' ? 'corruption lifted: behaving honestly' : 'corrupted')
  }

  const resume = (): void => {
    isPaused = false
    const waiters = resumeWaiters
    resumeWaiters = []
    for (const wake of waiters) wake()
  }

  return {
    membership(inner) {
      return {
        get closed() {
          return isPartitioned || inner.closed
        },
        roleOf: (peerId) => (isPartitioned ? undefined : inner.roleOf(peerId)),
        has: (peerId) => !isPartitioned && inner.has(peerId),
        members: () => inner.members(),
        count: (role) => inner.count(role),
        replace: (members) => inner.replace(members),
        add: (peerId, role) => inner.add(peerId, role),
        remove: (peerId) => inner.remove(peerId),
        setClosed: (closed) => inner.setClosed(closed),
        onChange(listener) {
          partitionListeners.add(listener)
          const off = inner.onChange(listener)
          return () => {
            partitionListeners.delete(listener)
            off()
          }
        },
      }
    },
    attach(bound) {
      node = bound
    },
    serverBehaviour(base) {
      return {
        publishModel: (round, model, history) => (serverOverride ?? base).publishModel(round, model, history),
        // A getter: the loop checks whether `perReceiver` exists before every publish.
        get perReceiver() {
          return (serverOverride ?? base).perReceiver
        },
      }
    },
    workerBehaviour(base) {
      const ownOnly = (own: Float32Array) => async () => [own]
      const honestSource = (own: Float32Array, honestOfRound: () => Promise<Float32Array[]>) =>
        workerOverride !== undefined && !init.readsGradients ? ownOnly(own) : honestOfRound
      return {
        publishGradient: (round, own, honestOfRound) =>
          (workerOverride ?? base).publishGradient(round, own, honestSource(own, honestOfRound)),
        get perReceiver() {
          const current = (workerOverride ?? base).perReceiver
          if (current === undefined) return undefined
          return (round: number, own: Float32Array, honestOfRound: () => Promise<Float32Array[]>) =>
            current(round, own, honestSource(own, honestOfRound))
        },
      }
    },
    betweenRounds(signal) {
      if (!isPaused || signal.aborted) return Promise.resolve()
      return new Promise((resolve) => {
        const onAbort = () => resolve()
        signal.addEventListener('abort', onAbort, { once: true })
        resumeWaiters.push(() => {
          signal.removeEventListener('abort', onAbort)
          resolve()
        })
      })
    },
    async execute(command) {
      switch (command.kind) {
        case 'kill':
          log.warn('killed by chaos command')
          exit()
          return
        case 'pause':
          isPaused = true
          log.warn('paused: the next round waits for resume')
          return
        case 'resume':
          resume()
          log.warn('resumed')
          return
        case 'corrupt':
          corrupt(command.attack, command.options)
          return
        case 'partition':
          partition(command.durationMs)
          return
        case 'heal':
          await heal()
          return
      }
    },
    paused: () => isPaused,
    partitioned: () => isPartitioned,
    close() {
      clearTimeout(healTimer)
      resume()
    },
  }
}
