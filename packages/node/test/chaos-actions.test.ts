import { createMembership, type NetNode } from '@phalanx/net'
import pino from 'pino'
import { describe, expect, it } from 'vitest'
import { type ChaosActionsInit, createChaosActions } from '../src/chaos-actions.js'
import { resolveConfig } from '../src/config.js'
import { honestServer, honestWorker } from '../src/protocol.js'

const log = pino({ level: 'silent' })
// Real Ed25519 peer ids, as a node's `redial` takes them.
const PEER_A = '12D3KooWKpw5pKv66xHCWHrHn4ukbLC8UvC7HjRqYYPvoDycX2YS'
const PEER_B = '12D3KooWEmxWYkARgPVBAaqkZ1sGqNSbJiG82A3XYa6xa85Xf1Sv'

function actions(overrides: Partial<ChaosActionsInit> = {}) {
  return createChaosActions({
    config: resolveConfig({ servers: 4, byzantineServers: 1, workers: 7, byzantineWorkers: 1 }),
    log,
    role: 'server',
    index: 0,
    readsGradients: false,
    exit: () => {
      throw new Error('exit not expected')
    },
    ...overrides,
  })
}

/** Just enough of a started node for hang-ups and redials: remembers what was dialed. */
function fakeNode(peers: string[]) {
  const dialed: string[] = []
  const node = {
    connectedPeers: () => [...peers],
    redial: async (peer: string) => {
      dialed.push(peer)
    },
    dial: async (address: string) => {
      dialed.push(address)
    },
  } as unknown as NetNode
  return { node, dialed }
}

describe('chaos actions', () => {
  it.each([
    ['server', 'no-such-attack'],
    ['worker', 'no-such-attack'],
    // Label flipping poisons the shard before training; it cannot start mid-run.
    ['worker', 'label-flip'],
    ['worker', 'reversed'],
  ] as const)('a %s refuses corrupt --attack %s with ChaosActionError', async (role, attack) => {
    await expect(actions({ role }).execute({ kind: 'corrupt', attack, options: {} })).rejects.toMatchObject({
      name: 'ChaosActionError',
      command: 'corrupt',
    })
  })

  it('corrupt swaps the published model, and corrupt none restores the honest one', async () => {
    const chaos = actions()
    const behaviour = chaos.serverBehaviour(honestServer)
    const model = Float32Array.from([1, -2, 3])
    expect(behaviour.publishModel(0, model, [])).toEqual(model)
    await chaos.execute({ kind: 'corrupt', attack: 'reversed', options: {} })
    expect(Array.from(behaviour.publishModel(1, model, [])!)).toEqual([-1, 2, -3])
    await chaos.execute({ kind: 'corrupt', attack: 'crash', options: {} })
    expect(behaviour.publishModel(2, model, [])).toBeUndefined()
    await chaos.execute({ kind: 'corrupt', attack: 'none', options: {} })
    expect(behaviour.publishModel(3, model, [])).toEqual(model)
  })

  it('a corrupted worker that does not read honest gradients crafts from its own instead of waiting', async () => {
    const chaos = actions({ role: 'worker' })
    const behaviour = chaos.workerBehaviour(honestWorker)
    await chaos.execute({ kind: 'corrupt', attack: 'sign-flip', options: {} })
    const own = Float32Array.from([1, 2])
    const never = () => new Promise<Float32Array[]>(() => undefined)
    expect(Array.from((await behaviour.publishGradient(0, own, never))!)).toEqual([-1, -2])
  })

  it('corrupt with a strength sets the attack field it names', async () => {
    const chaos = actions({ role: 'worker' })
    const behaviour = chaos.workerBehaviour(honestWorker)
    const own = Float32Array.from([1, 2])
    const honest = async () => [own]
    await chaos.execute({ kind: 'corrupt', attack: 'sign-flip', options: { strength: 10 } })
    expect(Array.from((await behaviour.publishGradient(0, own, honest))!)).toEqual([-10, -20])
    // The next corrupt without a strength is back at the configured one.
    await chaos.execute({ kind: 'corrupt', attack: 'ipm', options: {} })
    expect(Array.from((await behaviour.publishGradient(1, own, honest))!)).toEqual([-0.5, -1])
  })

  it.each([
    ['worker', 'sign-flip', { strength: 0 }, /signFlipScale/],
    ['worker', 'gaussian', { strength: -1 }, /gaussianSigma/],
    ['worker', 'mimic', { strength: 2 }, /no strength/],
    ['worker', 'none', { strength: 2 }, /no strength/],
    ['worker', 'sign-flip', { scale: 2 }, /unknown corrupt option "scale"/],
    ['server', 'reversed', { strength: 2 }, /server attacks take no corrupt options/],
  ] as const)('a %s refuses corrupt --attack %s with %j', async (role, attack, options, message) => {
    const chaos = actions({ role })
    const refused = chaos.execute({ kind: 'corrupt', attack, options })
    await expect(refused).rejects.toMatchObject({ name: 'ChaosActionError', command: 'corrupt' })
    await expect(refused).rejects.toThrowError(message)
  })

  it('pause holds the next round until resume, and an abort releases it too', async () => {
    const chaos = actions()
    const running = new AbortController()
    await chaos.betweenRounds(running.signal)
    await chaos.execute({ kind: 'pause' })
    let released = false
    const held = chaos.betweenRounds(running.signal).then(() => {
      released = true
    })
    await Promise.resolve()
    expect(released).toBe(false)
    await chaos.execute({ kind: 'resume' })
    await held
    expect(released).toBe(true)

    await chaos.execute({ kind: 'pause' })
    const stopping = new AbortController()
    const heldUntilAbort = chaos.betweenRounds(stopping.signal)
    stopping.abort()
    await heldUntilAbort
    expect(chaos.paused()).toBe(true)
  })

  it('kill ends the process through the exit it was given', async () => {
    let exits = 0
    await actions({ exit: () => exits++ }).execute({ kind: 'kill' })
    expect(exits).toBe(1)
  })

  it('partition before the node is started is refused', async () => {
    await expect(actions().execute({ kind: 'partition', durationMs: 1000 })).rejects.toMatchObject({
      name: 'ChaosActionError',
      command: 'partition',
    })
  })

  it('partition empties a closed member set (so the node hangs up on everyone), heal restores it and redials', async () => {
    const chaos = actions({
      config: resolveConfig({ servers: 4, byzantineServers: 1, bootstrap: ['/ip4/127.0.0.1/tcp/9000'] }),
    })
    const inner = createMembership({
      members: [
        [PEER_A, 'server'],
        [PEER_B, 'worker'],
      ],
      closed: false,
    })
    const membership = chaos.membership(inner)
    let changes = 0
    membership.onChange(() => changes++)
    const { node, dialed } = fakeNode([PEER_A, PEER_B])
    chaos.attach(node)

    await chaos.execute({ kind: 'partition', durationMs: 60_000 })
    expect([membership.closed, membership.has(PEER_A), membership.roleOf(PEER_B), changes]).toEqual([
      true,
      false,
      undefined,
      1,
    ])
    await chaos.execute({ kind: 'heal' })
    expect([membership.closed, membership.has(PEER_A), membership.roleOf(PEER_B), changes]).toEqual([
      false,
      true,
      'worker',
      2,
    ])
    expect(dialed.sort()).toEqual([PEER_A, PEER_B, '/ip4/127.0.0.1/tcp/9000'].sort())
    chaos.close()
  })
})
