/**
 * Counts the bytes a node's libp2p connections carry, through the one hook libp2p has for it: a
 * `metrics` component, whose `trackMultiaddrConnection` sees every raw connection before the
 * upgrade (TLS or Noise, Yamux). The bytes counted are the TCP payload: every protocol's frames with
 * their encryption and multiplexing overhead, gossip, payload and sync streams, identify and ping
 * alike. Everything else of the interface is a no-op; Phalanx exports its own metrics.
 */
import type { Metrics, MultiaddrConnection } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { MutableNetCounters } from './counters.js'

type Chunk = Uint8Array | Uint8ArrayList

async function* counted(source: AsyncIterable<Chunk>, add: (bytes: number) => void): AsyncGenerator<Chunk> {
  for await (const chunk of source) {
    add(chunk.byteLength)
    yield chunk
  }
}

const noopMetric = {
  update() {},
  increment() {},
  decrement() {},
  reset() {},
  observe() {},
  timer: () => () => {},
}

/** A libp2p `metrics` component that adds every connection's bytes to `counters`. */
export function wireByteMetrics(counters: MutableNetCounters): () => Metrics {
  const register = (_name: string, options?: { calculate?: unknown }) =>
    options?.calculate === undefined ? noopMetric : undefined
  const metrics = {
    trackMultiaddrConnection(connection: MultiaddrConnection): void {
      const { sink, source } = connection
      connection.source = counted(source, (bytes) => {
        counters.wire_received_bytes_total += bytes
      })
      connection.sink = (outgoing) =>
        sink(
          counted(outgoing, (bytes) => {
            counters.wire_sent_bytes_total += bytes
          }),
        )
    },
    trackProtocolStream() {},
    registerMetric: register,
    registerMetricGroup: register,
    registerCounter: register,
    registerCounterGroup: register,
    registerHistogram: register,
    registerHistogramGroup: register,
    registerSummary: register,
    registerSummaryGroup: register,
    traceFunction: <F>(_name: string, fn: F): F => fn,
    createTrace: () => undefined,
  }
  return () => metrics as unknown as Metrics
}
