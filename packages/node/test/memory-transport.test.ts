import { MemoryBus } from '../src/memory-transport.js'
import { contractDimension, describeRoundTransport } from './transport-contract.js'

describeRoundTransport(
  'memory bus',
  async () => {
    const bus = new MemoryBus(contractDimension)
    return {
      servers: ['s0', 's1', 's2'].map((id) => bus.join(id)),
      workers: ['w0', 'w1'].map((id) => bus.join(id)),
      close: async () => {},
    }
  },
  // Nothing here is in flight: a wait that must time out can be short.
  { shortTimeoutMs: 20, longTimeoutMs: 5_000 },
)
