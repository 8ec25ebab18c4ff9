import { writeFileSync } from 'node:fs'
import { startNatsCluster, waitForJetStream } from './test/support/nats.js'
const c = await startNatsCluster({ size: 3 })
await waitForJetStream(c.urls)
writeFileSync('/tmp/smr-nats-urls', c.urls.join(','))
process.once('SIGTERM', async () => { await c.dispose(); process.exit(0) })
setInterval(() => {}, 1e9)
