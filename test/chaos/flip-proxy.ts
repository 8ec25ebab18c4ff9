/**
 * A TCP proxy on loopback that sits on one libp2p connection and, while corrupting, flips one
 * byte of every chunk it forwards. The connection is encrypted with an AEAD (TLS 1.3 records by
 * default, Noise's ChaCha20-Poly1305 frames with `encrypter: noise`): a flipped byte must fail the
 * receiver's authentication tag, so the record is dropped and the connection
 * closed instead of a corrupted vector reaching the protocol. The proxy records what it did to
 * each connection so the suite can show every corrupted connection was closed.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net'

export interface ProxiedConnection {
  id: number
  bytesForwarded: number
  bytesFlipped: number
  /** Set once either side closed it. */
  closed: boolean
}

export interface FlipProxy {
  readonly port: number
  readonly connections: readonly ProxiedConnection[]
  corrupt(on: boolean): void
  /** Called on every connection open, flip and close. */
  onChange(listener: () => void): void
  close(): Promise<void>
}

export async function startFlipProxy(init: { targetPort: number; seed: number }): Promise<FlipProxy> {
  const connections: ProxiedConnection[] = []
  const sockets = new Set<Socket>()
  const listeners = new Set<() => void>()
  let corrupting = false
  // A seeded position inside each chunk: deterministic per run, different per chunk.
  let state = init.seed >>> 0 || 1
  const nextOffset = (length: number) => {
    state ^= state << 13
    state ^= state >>> 17
    state ^= state << 5
    return (state >>> 0) % length
  }
  const changed = () => {
    for (const listener of listeners) listener()
  }

  const pipe = (from: Socket, to: Socket, record: ProxiedConnection) => {
    from.on('data', (chunk: Buffer) => {
      let out = chunk
      if (corrupting && chunk.length > 0) {
        out = Buffer.from(chunk)
        const offset = nextOffset(out.length)
        out[offset] = out[offset]! ^ 0xff
        record.bytesFlipped++
        changed()
      }
      record.bytesForwarded += out.length
      to.write(out)
    })
  }

  const server: Server = createServer((inbound) => {
    const record: ProxiedConnection = {
      id: connections.length,
      bytesForwarded: 0,
      bytesFlipped: 0,
      closed: false,
    }
    connections.push(record)
    const outbound = createConnection({ host: '127.0.0.1', port: init.targetPort })
    sockets.add(inbound)
    sockets.add(outbound)
    const close = () => {
      inbound.destroy()
      outbound.destroy()
      sockets.delete(inbound)
      sockets.delete(outbound)
      if (!record.closed) {
        record.closed = true
        changed()
      }
    }
    for (const socket of [inbound, outbound]) {
      socket.on('close', close)
      socket.on('error', close)
    }
    pipe(inbound, outbound, record)
    pipe(outbound, inbound, record)
    changed()
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('proxy has no port')

  return {
    port: address.port,
    connections,
    corrupt(on) {
      corrupting = on
    },
    onChange(listener) {
      listeners.add(listener)
    },
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
