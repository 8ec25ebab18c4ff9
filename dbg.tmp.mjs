import { readFileSync } from 'node:fs'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
const nc = await connect({ servers: readFileSync('/tmp/smr-nats-urls','utf8').split(',') })
const jsm = await jetstreamManager(nc)
for await (const s of jsm.streams.list()) console.log(s.config.name, s.state.messages, s.cluster)
await nc.close()
