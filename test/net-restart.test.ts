/**
 * A server that restarts from its key file keeps its peer id, finds the cluster again through
 * a DNS bootstrap address (`/dns4/localhost/…`) and its models are delivered as before.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreatePeerKey, type MemberRole } from '@phalanx/net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PeerProcess } from './fixtures/net-harness.js'

const cluster = 'rs'
const dimension = 1000
let dir: string
const running: PeerProcess[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phalanx-net-restart-'))
})

afterAll(async () => {
  await Promise.all(running.map((peer) => peer.kill()))
  await rm(dir, { recursive: true, force: true })
})

async function spawn(name: string): Promise<PeerProcess> {
  const peer = await PeerProcess.spawn(name)
  running.push(peer)
  return peer
}

describe('restart with a key file', () => {
  it('keeps the peer id and rejoins the topics', async () => {
    const serverKey = join(dir, 'server.key')
    const workerKey = join(dir, 'worker.key')
    // The worker's id must be known up front for a closed member set; the server's key file is
    // created by the server process itself on first start.
    const workerId = peerIdFromPrivateKey((await loadOrCreatePeerKey(workerKey)).key).toString()
    const worker = await spawn('worker')
    const firstServer = await spawn('server-1')
    // Open membership lets the server connect before the worker admits it by id.
    const workerStart = await worker.request<{ addrs: string[]; peerId: string }>('start', {
      cluster,
      role: 'worker',
      dimension,
      members: [[workerId, 'worker']],
      closed: false,
      keyFile: workerKey,
    })
    const port = workerStart.addrs[0]!.split('/')[4]
    const dnsBootstrap = `/dns4/localhost/tcp/${port}/p2p/${workerId}`
    const startServer = (peer: PeerProcess) =>
      peer.request<{ peerId: string; addrs: string[] }>('start', {
        cluster,
        role: 'server',
        dimension,
        members: [[workerId, 'worker']] as Array<[string, MemberRole]>,
        closed: false,
        keyFile: serverKey,
        bootstrap: [dnsBootstrap],
      })
    const first = await startServer(firstServer)
    expect((await stat(serverKey)).mode & 0o777).toBe(0o600)
    await worker.request('addMember', { peerId: first.peerId, role: 'server' })
    await firstServer.request('waitForSubscribers', { kind: 'model', count: 1 })
    const sent0 = await firstServer.request<{ hash: string }>('publish', {
      kind: 'model',
      round: 0,
      vector: { dimension, base: 1 },
    })
    await worker.waitFor((e) => e.event === 'vector' && e.sender === first.peerId && e.hash === sent0.hash)

    await firstServer.kill('SIGKILL')
    const secondServer = await spawn('server-2')
    const second = await startServer(secondServer)
    expect(second.peerId).toBe(first.peerId)
    // Rejoined: the worker sees the restarted server subscribed again, and its next model arrives.
    await secondServer.request('waitForSubscribers', { kind: 'model', count: 1 })
    await worker.request('waitForSubscribers', { kind: 'model', count: 1 })
    await secondServer.request('announce')
    await worker.waitFor((e) => e.event === 'member' && e.peerId === first.peerId && e.role === 'server')
    const sent1 = await secondServer.request<{ hash: string }>('publish', {
      kind: 'model',
      round: 1,
      vector: { dimension, base: 2 },
    })
    await worker.waitFor((e) => e.event === 'vector' && e.sender === first.peerId && e.hash === sent1.hash)
    expect(await worker.request('received', { kind: 'model', round: 1 })).toEqual([
      { sender: first.peerId, hash: sent1.hash, self: false },
    ])
  })
})
